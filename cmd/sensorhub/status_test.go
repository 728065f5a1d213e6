package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/app"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// sensorhub runs one command line as main does (flags, environment, exit
// code) and returns its exit code and output.
func sensorhub(ctx context.Context, args ...string) (int, string, string) {
	var out, errb testenv.Buffer
	code := run(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// adminPasswordFile holds dev's admin password, for --nats-password-file.
func adminPasswordFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "admin.pw")
	if err := os.WriteFile(f, []byte(app.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// devAdmin is a NATS connection as dev's admin, through the callout.
func devAdmin(t *testing.T, natsURL string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.UserInfo("admin", app.DefaultPassword),
		nats.CustomInboxPrefix(messages.InboxPrefix("admin")), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// chaosKafka stops or starts dev's embedded Kafka (dev --chaos) as admin.
func chaosKafka(t *testing.T, admin *nats.Conn, action string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	var r messages.ChaosControlReply
	if _, err := natsx.Request(ctx, admin, messages.DefaultSubjects().ChaosControl(),
		messages.ChaosControl{Target: messages.ChaosTargetKafka, Action: action}, nil, &r); err != nil {
		t.Fatalf("chaos %s kafka: %v", action, err)
	}
}

// closedAddr is a local address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// sensorhub status exits 0 while every role is ok, 1 once Kafka is stopped
// (the bridge degraded), 2 when the edge or NATS cannot be reached at all,
// from the edge's view and from NATS'; --json is the same picture for
// scripts, and --watch redraws until it is interrupted, then exits 0.
func TestStatusExitCodes(t *testing.T) {
	addrs := startDev(t, "--chaos")
	edge := []string{"status", "--url", "http://" + addrs.HTTP}
	viaNATS := []string{"status", "--nats-url", addrs.NATS, "--nats-user", "admin", "--nats-password-file", adminPasswordFile(t)}
	ctx := t.Context()

	var out, errs string
	for _, args := range [][]string{edge, viaNATS} {
		testenv.Eventually(t, "status ok: "+strings.Join(args, " "), func() bool {
			var code int
			code, out, errs = sensorhub(ctx, args...)
			return code == 0
		})
		for _, want := range []string{"sensorhub OK", "auth", "sensor", "bridge", "bridge.kafka", "SENSOR_EVENTS queued", "delivered to Kafka", "dead letters"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", args[1], want, out)
			}
		}
	}
	if errs != "" {
		t.Errorf("a healthy status wrote on stderr: %s", errs)
	}
	// The NATS view found the instances by micro discovery.
	code, out, _ := sensorhub(ctx, append(viaNATS, "--json")...)
	var rep app.StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v: %s", err, out)
	}
	if code != 0 || rep.Status != messages.HealthOK || rep.Flow == nil || len(rep.Instances[messages.RoleBridge]) != 1 ||
		len(rep.Instances[messages.RoleEdge]) != 1 ||
		rep.Roles[messages.RoleSensor].Status != messages.HealthOK {
		t.Fatalf("status --json (exit %d): %+v", code, rep)
	}

	// Kafka stopped: the bridge is degraded, and so is the system.
	admin := devAdmin(t, addrs.NATS)
	chaosKafka(t, admin, messages.ChaosActionStop)
	for _, args := range [][]string{edge, viaNATS} {
		testenv.Eventually(t, "status degraded: "+strings.Join(args, " "), func() bool {
			var code int
			code, out, errs = sensorhub(ctx, args...)
			return code == 1
		})
		if !strings.Contains(out, "sensorhub DEGRADED") || !strings.Contains(errs, "degraded: bridge degraded") {
			t.Errorf("%s degraded: stdout:\n%s\nstderr: %s", args[1], out, errs)
		}
	}
	code, out, _ = sensorhub(ctx, append(edge, "--json")...)
	rep = app.StatusReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Status != messages.HealthDegraded ||
		rep.Roles[messages.RoleBridge].Status != messages.HealthDegraded || rep.Roles[messages.RoleSensor].Status != messages.HealthOK {
		t.Fatalf("status --json with kafka stopped (exit %d, %v): %s", code, err, out)
	}
	chaosKafka(t, admin, messages.ChaosActionStart)

	// A supervised restart (a chaos panic of the sensor role's intake) is
	// among the latest supervision events, in both views; the sensor
	// role's pipeline gauges are there too.
	var cr messages.ChaosReply
	pctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	if _, err := natsx.Request(pctx, admin, messages.DefaultSubjects().ChaosPanic(), messages.ChaosPanic{Actor: "sensor"}, nil, &cr); err != nil || !cr.Panicked {
		t.Fatalf("chaos panic: %+v, %v", cr, err)
	}
	for _, args := range [][]string{edge, viaNATS} {
		testenv.EventuallyState(t, "the restart in "+args[1]+"'s view", func() (bool, string) {
			_, out, _ := sensorhub(ctx, append(args, "--json")...)
			var rep app.StatusReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				return false, err.Error() + ": " + out
			}
			ok := len(rep.Supervision) > 0 && rep.Supervision[0].Role == messages.RoleSensor &&
				rep.Supervision[0].Actor == "sensor/intake" && rep.Supervision[0].Directive == "restart" && rep.Pipeline != nil
			return ok, fmt.Sprintf("supervision %+v, pipeline %+v", rep.Supervision, rep.Pipeline)
		})
		_, out, _ := sensorhub(ctx, args...)
		for _, want := range []string{"LATEST SUPERVISION EVENTS", "sensor/intake", "sensor in flight, queued"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", args[1], want, out)
			}
		}
	}

	// A dead end: nothing answers where the edge or NATS should be.
	code, out, errs = sensorhub(ctx, "status", "--url", "http://"+closedAddr(t), "--timeout", "2s")
	if code != 2 || !strings.Contains(errs, "down: the edge at http://") || !strings.Contains(out, "sensorhub DOWN") {
		t.Fatalf("edge unreachable: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	dead := "nats://" + closedAddr(t)
	code, _, errs = sensorhub(ctx, "status", "--nats-url", dead, "--nats-user", "admin", "--nats-password-file", adminPasswordFile(t), "--timeout", "1s")
	if code != 2 || !strings.Contains(errs, "down: NATS at "+dead+" cannot be reached") {
		t.Fatalf("NATS unreachable: exit %d, stderr: %s", code, errs)
	}

	// --watch redraws until interrupted, then exits 0.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wout, werr testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(wctx, append(edge, "--watch", "--interval", "10ms", "--json"), strings.NewReader(""), &wout, &werr)
	}()
	testenv.Eventually(t, "two pictures from --watch", func() bool { return strings.Count(wout.String(), "\n") >= 2 })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("status --watch exited %d on interrupt: %s", code, werr.String())
		}
	case <-time.After(testenv.Wait(t)):
		t.Fatal("status --watch did not end on interrupt")
	}
	for i, line := range strings.Split(strings.TrimSpace(wout.String()), "\n") {
		var r app.StatusReport
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Status == "" {
			t.Fatalf("--watch --json line %d is not a report: %v: %s", i, err, line)
		}
	}
}
