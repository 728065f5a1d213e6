package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// startChaosDev runs dev with --chaos on its embedded NATS and Kafka, with
// the attack table's users (alice is no admin).
func startChaosDev(t *testing.T) DevAddrs {
	t.Helper()
	testenv.SkipIfShort(t)
	dir := t.TempDir()
	ready := make(chan DevAddrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &testenv.Buffer{}
	go func() {
		done <- RunDev(ctx, DevConfig{
			Common:      Common{SubjectPrefix: messages.DefaultPrefix, Chaos: true},
			HTTP:        "127.0.0.1:0",
			DataDir:     dir,
			NATSListen:  "127.0.0.1:0",
			KafkaListen: "127.0.0.1:0",
			Ready:       ready,
		}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
		if t.Failed() {
			t.Logf("dev logs:\n%s", tail(logs.String(), 100))
		}
	})
	var addrs DevAddrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("dev stopped: %v", err)
	case <-time.After(testenv.Wait(t)):
		t.Fatal("dev did not start")
	}
	addUsers(t, "sqlite:"+filepath.Join(dir, "sensorhub.db"))
	return addrs
}

// Admin stops and starts dev's embedded Kafka over sensorhub.chaos.control:
// the broker refuses connections while stopped and takes them again after,
// every reply tells the state of every target, and an unknown target or a
// person who is no admin changes nothing.
func TestChaosControlStopsAndStartsKafka(t *testing.T) {
	addrs := startChaosDev(t)
	tg := target{natsURL: addrs.NATS}
	admin := person(t, tg, "admin", DefaultPassword)
	subj := messages.DefaultSubjects().ChaosControl()
	control := func(nc *nats.Conn, target, action string) (messages.ChaosControlReply, error) {
		var r messages.ChaosControlReply
		_, err := natsx.Request(waitCtx(t), nc, subj, messages.ChaosControl{Target: target, Action: action}, nil, &r)
		return r, err
	}
	kafkaUp := func() bool {
		c, err := net.DialTimeout("tcp", addrs.Kafka, 2*time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}
	want := func(r messages.ChaosControlReply, err error, state string) {
		t.Helper()
		if err != nil {
			t.Fatalf("chaos control: %v", err)
		}
		if got := r.States[messages.ChaosTargetKafka]; got != state {
			t.Fatalf("kafka %q after %s, want %q (%+v)", got, r.Action, state, r)
		}
	}

	r, err := control(admin, messages.ChaosTargetKafka, messages.ChaosActionStatus)
	want(r, err, messages.ChaosStateRunning)
	if !kafkaUp() {
		t.Fatal("kafka refuses connections before any stop")
	}
	r, err = control(admin, messages.ChaosTargetKafka, messages.ChaosActionStop)
	want(r, err, messages.ChaosStateStopped)
	if kafkaUp() {
		t.Fatal("kafka takes connections after stop")
	}
	r, err = control(admin, messages.ChaosTargetKafka, messages.ChaosActionStop) // twice: still stopped
	want(r, err, messages.ChaosStateStopped)

	// alice may not publish there: her request is never answered, and
	// Kafka stays down.
	alice := person(t, tg, "alice", alicePW)
	short, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := natsx.Request(short, alice, subj, messages.ChaosControl{Target: messages.ChaosTargetKafka, Action: messages.ChaosActionStart}, nil, nil); err == nil {
		t.Fatal("alice's chaos control was answered")
	}
	if kafkaUp() {
		t.Fatal("kafka came back on alice's request")
	}

	_, err = control(admin, "toaster", messages.ChaosActionStop)
	if messages.CodeOf(err) != messages.CodeUnknownActor {
		t.Fatalf("unknown target: %v, want %s", err, messages.CodeUnknownActor)
	}
	_, err = control(admin, messages.ChaosTargetKafka, "explode")
	if messages.CodeOf(err) != messages.CodeBadRequest {
		t.Fatalf("unknown action: %v, want %s", err, messages.CodeBadRequest)
	}

	r, err = control(admin, messages.ChaosTargetKafka, messages.ChaosActionStart)
	want(r, err, messages.ChaosStateRunning)
	if !kafkaUp() {
		t.Fatal("kafka refuses connections after start")
	}
}

// Without --chaos nobody answers the control subject.
func TestChaosControlNeedsTheFlag(t *testing.T) {
	testenv.SkipIfShort(t)
	dir := t.TempDir()
	ready := make(chan DevAddrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunDev(ctx, DevConfig{Common: Common{SubjectPrefix: messages.DefaultPrefix}, HTTP: "127.0.0.1:0",
			DataDir: dir, NATSListen: "127.0.0.1:0", KafkaListen: "127.0.0.1:0", Ready: ready}, discardLogger())
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	var addrs DevAddrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("dev stopped: %v", err)
	}
	admin := person(t, target{natsURL: addrs.NATS}, "admin", DefaultPassword)
	_, err := natsx.Request(waitCtx(t), admin, messages.DefaultSubjects().ChaosControl(),
		messages.ChaosControl{Target: messages.ChaosTargetKafka, Action: messages.ChaosActionStop}, nil, nil)
	if !errors.Is(err, natsx.ErrNoResponders) {
		t.Fatalf("chaos control without --chaos: %v, want no responders", err)
	}
}
