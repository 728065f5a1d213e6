package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

func TestEnsureEventStream(t *testing.T) {
	srv := testenv.NATS(t)
	js, err := jetstream.New(srv.Conn(t, messages.RoleBridge))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	subj := messages.DefaultSubjects()

	// Idempotent: a second call with the same config changes nothing.
	for range 2 {
		if _, err := natsx.EnsureEventStream(ctx, js, subj, natsx.StreamConfig{}); err != nil {
			t.Fatalf("ensure: %v", err)
		}
	}
	s, err := js.Stream(ctx, messages.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.Discard != jetstream.DiscardNew || c.Retention != jetstream.WorkQueuePolicy || c.Storage != jetstream.FileStorage ||
		c.MaxBytes != natsx.DefaultStreamMaxBytes || c.Duplicates != 2*time.Minute || c.Replicas != 1 ||
		len(c.Subjects) != 1 || c.Subjects[0] != subj.Events() {
		t.Fatalf("stream config: %+v", c)
	}
	// The embedded server (2.15) has atomic batch publish: the stream
	// allows it, and says so.
	if !c.AllowAtomicPublish || !natsx.AtomicPublish(s) {
		t.Fatalf("stream without atomic publish on a server that has it: %+v", c)
	}
	// Opting out turns it off again, as a server before 2.12 leaves it.
	s, err = natsx.EnsureEventStream(ctx, js, subj, natsx.StreamConfig{NoAtomicPublish: true})
	if err != nil {
		t.Fatalf("ensure without atomic publish: %v", err)
	}
	if natsx.AtomicPublish(s) {
		t.Fatalf("stream with atomic publish after opting out: %+v", s.CachedInfo().Config)
	}

	// A new config is applied to the existing stream.
	if _, err := natsx.EnsureEventStream(ctx, js, subj, natsx.StreamConfig{MaxBytes: 1 << 20, DuplicateWindow: time.Minute}); err != nil {
		t.Fatalf("update: %v", err)
	}
	s, _ = js.Stream(ctx, messages.StreamEvents)
	if c := s.CachedInfo().Config; c.MaxBytes != 1<<20 || c.Duplicates != time.Minute {
		t.Fatalf("updated config: %+v", c)
	}
}

// A full event stream refuses new events with an error and keeps the old
// ones: never a silent deletion of unrelayed events.
func TestEventStreamFullIsAnError(t *testing.T) {
	srv := testenv.NATS(t)
	js, err := jetstream.New(srv.Conn(t, messages.RoleSensor))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	subj := messages.DefaultSubjects()
	if _, err := natsx.EnsureEventStream(ctx, js, subj, natsx.StreamConfig{MaxBytes: 8 << 10}); err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("x", 1000))
	var pubErr error
	published := 0
	for i := range 100 {
		if _, pubErr = js.Publish(ctx, subj.Event("temperature", "completed"), payload, jetstream.WithMsgID(fmt.Sprint(i))); pubErr != nil {
			break
		}
		published++
	}
	var apiErr *jetstream.APIError
	if pubErr == nil || !errors.As(pubErr, &apiErr) {
		t.Fatalf("publishing into a full stream: %v, want a JetStream error", pubErr)
	}
	s, _ := js.Stream(ctx, messages.StreamEvents)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq != 1 || info.State.Msgs != uint64(published) {
		t.Fatalf("stream state %+v after %d publishes: old events were dropped", info.State, published)
	}
}

func TestEnsureDeadLetterStream(t *testing.T) {
	srv := testenv.NATS(t)
	js, err := jetstream.New(srv.Conn(t, messages.RoleBridge))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	subj, _ := messages.NewSubjects("acme.hub")
	if _, err := natsx.EnsureEventStream(ctx, js, subj, natsx.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := natsx.EnsureDeadLetterStream(ctx, js, subj, natsx.StreamConfig{}); err != nil {
			t.Fatalf("ensure: %v", err)
		}
	}
	if got := subj.DeadLetter(); got != "acme.hub.deadletter.events" {
		t.Fatalf("dead-letter subject %q", got)
	}
	s, err := js.Stream(ctx, messages.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.Discard != jetstream.DiscardNew || c.Retention != jetstream.LimitsPolicy || c.Subjects[0] != subj.DeadLetter() {
		t.Fatalf("dead-letter stream config: %+v", c)
	}
}
