package sensor

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"sensorhub/internal/store"
	"sensorhub/internal/store/sqlite"
	"sensorhub/messages"

	"sensorhub/internal/testenv"
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
	testenv.Eventually(t, "the first event in the stream", func() bool {
		return streamCount(t, h.events) == 1 && backlog(t, st) == 0
	})
	ev := readStream(t, h.events)[0]
	if ev.event.TestID != first.TestID || ev.msgID != ev.event.EventID || ev.event.Schema != messages.EventSchema ||
		ev.event.Type != messages.EventTypeCompleted || ev.event.Owner != "alice" || ev.event.Stats == nil {
		t.Fatalf("event %+v (msg id %q) does not describe test %s", ev.event, ev.msgID, first.TestID)
	}
	checkEventHeaders(t, ev)

	// Accept tests, then take NATS away before they complete.
	const late = 5
	ids := map[string]bool{first.TestID: true}
	for i := 0; i < late; i++ {
		ids[h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "co2", SensorID: "late"}).TestID] = true
	}
	h.ns.Shutdown()
	releaseOnce.Do(func() { close(release) })
	testenv.Eventually(t, "the completions to wait in the outbox", func() bool {
		return counts(t, st)[messages.StatusCompleted] == late+1 && backlog(t, st) == late
	})
	testenv.Eventually(t, "the health report to show NATS down", func() bool {
		hr := svc.Health(context.Background())
		return hr.Status == messages.HealthDegraded && hr.Dependencies["nats"].Status == messages.HealthDown
	})
	if n := backlog(t, st); n != late {
		t.Fatalf("backlog %d while NATS is down, want %d", n, late)
	}

	h.ns.Start()
	testenv.Eventually(t, "the waiting events to be relayed", func() bool {
		return backlog(t, st) == 0 && streamCount(t, h.events) == late+1
	})
	events := readStream(t, h.events)
	for _, e := range events {
		if !ids[e.event.TestID] || e.msgID != e.event.EventID {
			t.Fatalf("unexpected event %+v (msg id %q)", e.event, e.msgID)
		}
		checkEventHeaders(t, e)
		delete(ids, e.event.TestID)
	}
	if len(ids) != 0 {
		t.Fatalf("tests without an event: %v", ids)
	}
	testenv.Eventually(t, "the health report to recover", func() bool {
		return svc.Health(context.Background()).Status == messages.HealthOK
	})
}

// checkEventHeaders checks that the event carries in its NATS headers and
// its subject what the bridge relays it by, the same as in its payload.
func checkEventHeaders(t *testing.T, e streamEvent) {
	t.Helper()
	for name, want := range map[string]string{
		messages.HeaderMsgID:    e.event.EventID,
		messages.HeaderSensorID: e.event.SensorID,
		messages.HeaderTestID:   e.event.TestID,
	} {
		if got := e.header.Get(name); got != want || want == "" {
			t.Errorf("event %s: header %s = %q, want %q", e.event.EventID, name, got, want)
		}
	}
	// The completion time, as the outbox row keeps it: the payload's.
	at, err := time.Parse(time.RFC3339Nano, e.header.Get(messages.HeaderEventTime))
	if err != nil || !at.Equal(e.event.CompletedAt) {
		t.Errorf("event %s: header %s = %q (%v), want the payload's completed_at %v", e.event.EventID,
			messages.HeaderEventTime, e.header.Get(messages.HeaderEventTime), err, e.event.CompletedAt)
	}
	if got := messages.EventTypeOfSubject(e.subject); got != e.event.Type {
		t.Errorf("event %s on %s: the subject names type %q, the payload %q", e.event.EventID, e.subject, got, e.event.Type)
	}
}

// TestOutboxRelayOldRow: a row written as the schema before the sensor_id
// column wrote it is relayed with the sensor id taken from its payload,
// and its test id and completion time from the columns it always had.
func TestOutboxRelayOldRow(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "sensorhub.db")
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path}) // the current schema
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	old := messages.TestCompleted{
		Schema: messages.EventSchema, EventID: "evt-old", Type: messages.EventTypeFailed, TestID: "test-old",
		SensorType: "co2", SensorID: "sensor-old", Owner: "alice", Status: messages.StatusFailed, Reason: "from before",
		CreatedAt: now, CompletedAt: now,
	}
	payload, err := old.Encode()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(t.Context(), `INSERT INTO outbox (event_id, test_id, subject, payload, created_at) VALUES (?, ?, ?, ?, ?)`,
		old.EventID, old.TestID, h.subj.Event(old.SensorType, old.Kind()), payload, now.UnixMicro())
	_ = db.Close()
	if err != nil {
		t.Fatalf("insert a row as the old schema did: %v", err)
	}

	st, err = sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("reopen sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h.start(st, nil)
	testenv.Eventually(t, "the old row in the stream", func() bool {
		return streamCount(t, h.events) == 1 && backlog(t, st) == 0
	})
	ev := readStream(t, h.events)[0]
	if ev.event.EventID != old.EventID || ev.event.Reason != old.Reason {
		t.Fatalf("event %+v, want the old row's", ev.event)
	}
	checkEventHeaders(t, ev)
}
