package sensor

import (
	"context"
	"sync"
	"testing"
	"time"

	"sensorhub/internal/store"
	"sensorhub/messages"
)

// TestOutboxRelay: completed tests' events reach SENSOR_EVENTS with
// Nats-Msg-Id = event id and leave the outbox; while NATS is down they wait
// in the database, and they are relayed once it is back.
func TestOutboxRelay(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	svc := h.start(st, func(c *Config) {
		c.hooks = &testHooks{beforeProcess: func(tt store.Test) {
			if tt.SensorID == "late" {
				<-release
			}
		}}
	})
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	first := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "co2"})
	h.waitDone(tokAlice, first.TestID)
	eventually(t, 10*time.Second, "the first event in the stream", func() bool {
		return streamCount(t, h.events) == 1 && backlog(t, st) == 0
	})
	ev := readStream(t, h.events)[0]
	if ev.event.TestID != first.TestID || ev.msgID != ev.event.EventID || ev.event.Schema != messages.EventSchema ||
		ev.event.Type != messages.EventTypeCompleted || ev.event.Owner != "alice" || ev.event.Stats == nil {
		t.Fatalf("event %+v (msg id %q) does not describe test %s", ev.event, ev.msgID, first.TestID)
	}

	// Accept tests, then take NATS away before they complete.
	const late = 5
	ids := map[string]bool{first.TestID: true}
	for i := 0; i < late; i++ {
		ids[h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "co2", SensorID: "late"}).TestID] = true
	}
	h.ns.Shutdown()
	releaseOnce.Do(func() { close(release) })
	eventually(t, 10*time.Second, "the completions to wait in the outbox", func() bool {
		return counts(t, st)[messages.StatusCompleted] == late+1 && backlog(t, st) == late
	})
	eventually(t, 5*time.Second, "the health report to show NATS down", func() bool {
		hr := svc.Health(context.Background())
		return hr.Status == messages.HealthDegraded && hr.Dependencies["nats"].Status == messages.HealthDown
	})
	if n := backlog(t, st); n != late {
		t.Fatalf("backlog %d while NATS is down, want %d", n, late)
	}

	h.ns.Start()
	eventually(t, 20*time.Second, "the waiting events to be relayed", func() bool {
		return backlog(t, st) == 0 && streamCount(t, h.events) == late+1
	})
	events := readStream(t, h.events)
	for _, e := range events {
		if !ids[e.event.TestID] || e.msgID != e.event.EventID {
			t.Fatalf("unexpected event %+v (msg id %q)", e.event, e.msgID)
		}
		delete(ids, e.event.TestID)
	}
	if len(ids) != 0 {
		t.Fatalf("tests without an event: %v", ids)
	}
	eventually(t, 10*time.Second, "the health report to recover", func() bool {
		return svc.Health(context.Background()).Status == messages.HealthOK
	})
}
