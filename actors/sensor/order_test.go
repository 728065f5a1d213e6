package sensor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/store/sqlite"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// fullStream is a small SENSOR_EVENTS held full by one filler event, and
// the bridge's consumer that can take the filler out again.
type fullStream struct {
	h    *harness
	cfg  natsx.StreamConfig
	cons jetstream.Consumer
}

// smallStreamBytes bounds the test's stream: the filler (about 2.5 KB
// stored) leaves room for three small events (about 0.6 KB each) but not
// for a large one (as large as the filler); without the filler a large
// one and three small ones fit.
const (
	smallStreamBytes = 4700
	largePad         = 2000
)

// fillStream creates SENSOR_EVENTS with room for about smallStreamBytes
// and stores one large filler event in it, as the sensor role would.
func fillStream(t *testing.T, h *harness) *fullStream {
	t.Helper()
	return fillStreamWith(t, h, natsx.StreamConfig{MaxBytes: smallStreamBytes})
}

// fillStreamWith is fillStream with the stream configured as cfg.
func fillStreamWith(t *testing.T, h *harness, cfg natsx.StreamConfig) *fullStream {
	t.Helper()
	ctx := testenv.Deadline(t)
	f := &fullStream{h: h, cfg: cfg}
	js, err := jetstream.New(h.events)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.EnsureEventStream(ctx, js, h.subj, f.cfg); err != nil {
		t.Fatal(err)
	}
	filler := orderEvent("filler", "filler", largePad)
	payload, err := filler.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, natsx.EventMsg(h.subj.Event(filler.SensorType, filler.Kind()),
		natsx.EventHeaders{EventID: filler.EventID, SensorID: filler.SensorID, TestID: filler.TestID, Time: filler.CompletedAt}, payload)); err != nil {
		t.Fatalf("publish the filler: %v", err)
	}
	// The bridge's identity and durable consumer take the filler out.
	f.cons = bridgeConsumer(t, h)
	return f
}

// bridgeConsumer is the bridge's durable consumer of SENSOR_EVENTS, under
// the bridge's identity.
func bridgeConsumer(t *testing.T, h *harness) jetstream.Consumer {
	t.Helper()
	bjs, err := jetstream.New(h.ns.Conn(t, messages.RoleBridge))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := bjs.CreateOrUpdateConsumer(testenv.Deadline(t), messages.StreamEvents, jetstream.ConsumerConfig{
		Durable: messages.ConsumerBridge, AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1,
	})
	if err != nil {
		t.Fatalf("create the bridge's consumer: %v", err)
	}
	return cons
}

// makeRoom removes the filler, as a bridge that relayed it would.
func (f *fullStream) makeRoom(t *testing.T) {
	t.Helper()
	ctx := testenv.Deadline(t)
	batch, err := f.cons.Fetch(1, jetstream.FetchContext(ctx))
	if err != nil {
		t.Fatalf("fetch the filler: %v", err)
	}
	m, ok := <-batch.Messages()
	if !ok {
		t.Fatalf("no filler to fetch: %v", batch.Error())
	}
	if id := m.Headers().Get(messages.HeaderMsgID); id != "filler" {
		t.Fatalf("first message %q, want the filler", id)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatalf("ack the filler: %v", err)
	}
}

// relay takes out whatever the stream holds now (up to 100 events), as a
// bridge would, and returns their event ids in stream order.
func (f *fullStream) relay(t *testing.T) []string {
	t.Helper()
	ctx := testenv.Deadline(t)
	batch, err := f.cons.FetchNoWait(100)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var ids []string
	for m := range batch.Messages() {
		ids = append(ids, m.Headers().Get(messages.HeaderMsgID))
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	return ids
}

// orderEvent is an event of sensor with a reason of pad bytes.
func orderEvent(id, sensor string, pad int) messages.TestCompleted {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return messages.TestCompleted{
		Schema: messages.EventSchema, EventID: id, Type: messages.EventTypeFailed, TestID: "test-" + id,
		SensorType: "co2", SensorID: sensor, Owner: "alice", Status: messages.StatusFailed,
		Reason: strings.Repeat("x", pad), CreatedAt: now, CompletedAt: now,
	}
}

// sqliteWithOutbox opens an SQLite store whose outbox holds evs, in order.
func sqliteWithOutbox(t *testing.T, h *harness, evs ...messages.TestCompleted) store.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sensorhub.db")
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// One transaction: some tests fill the outbox with over a thousand rows.
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, ev := range evs {
		payload, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(t.Context(),
			`INSERT INTO outbox (event_id, test_id, subject, payload, created_at, sensor_id) VALUES (?, ?, ?, ?, ?, ?)`,
			ev.EventID, ev.TestID, h.subj.Event(ev.SensorType, ev.Kind()), payload, ev.CreatedAt.UnixMicro(), ev.SensorID); err != nil {
			t.Fatalf("insert outbox row: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit the outbox rows: %v", err)
	}
	return st
}

// TestOutboxRelayOrderWhenStreamFull: the stream refuses a sensor's first
// event for want of room while it has room for the smaller ones after it.
// The relay stores nothing of that sensor past the refusal; once room is
// made, the stream holds every sensor's events in outbox order. While the
// stream is full the relay backs off: the sensor.jetstream breaker does
// not move, the health report shows event_stream down, and the log has
// one line for entering the state and one for leaving it.
//
// It runs with atomic batches (the refused batch holds a1 and b1 both, so
// nothing is stored until the relay, backing off, publishes in waves while
// the stream is full) and without (a stream without allow_atomic, as on a
// server before 2.12: waves throughout).
func TestOutboxRelayOrderWhenStreamFull(t *testing.T) {
	for _, mode := range []struct {
		name     string
		noAtomic bool
	}{{"atomic", false}, {"waves", true}} {
		t.Run(mode.name, func(t *testing.T) { testOutboxRelayOrderWhenStreamFull(t, mode.noAtomic) })
	}
}

func testOutboxRelayOrderWhenStreamFull(t *testing.T, noAtomic bool) {
	h := newHarness(t)
	fs := fillStreamWith(t, h, natsx.StreamConfig{MaxBytes: smallStreamBytes, NoAtomicPublish: noAtomic})
	outbox := []messages.TestCompleted{
		orderEvent("a1", "sensor-a", largePad), // does not fit next to the filler
		orderEvent("a2", "sensor-a", 10),       // would fit
		orderEvent("b1", "sensor-b", 10),       // fits: another sensor
		orderEvent("a3", "sensor-a", 10),
	}
	st := sqliteWithOutbox(t, h, outbox...)
	svc := h.start(st, func(c *Config) { c.Stream = fs.cfg })

	testenv.EventuallyState(t, "the health report to show the stream full", func() (bool, string) {
		d := svc.Health(context.Background()).Dependencies[depEventStream]
		return d.Status == messages.HealthDown && strings.Contains(d.LastError, "stream_full"), fmt.Sprintf("%+v", d)
	})
	testenv.Eventually(t, "sensor-b's event stored beside the filler", func() bool { return streamCount(t, h.events) >= 2 })
	for _, e := range readStream(t, h.events) {
		if e.event.SensorID == "sensor-a" {
			t.Fatalf("event %s of sensor-a stored while its first event a1 was refused", e.event.EventID)
		}
	}
	// Stay full long enough for a relay that retries every round
	// (relayInterval) to open and re-open its breaker several times.
	testenv.Eventually(t, "the stream to stay full for 3 s", func() bool {
		d := svc.Health(context.Background()).Dependencies[depEventStream]
		return d.Status == messages.HealthDown && d.Since != nil && time.Since(*d.Since) > 3*time.Second
	})
	if b := svc.Health(context.Background()).CircuitBreakers["sensor.jetstream"]; b.State != messages.BreakerClosed || b.TotalFailures != 0 {
		t.Errorf("sensor.jetstream breaker %+v while the stream is full, want closed without failures", b)
	}

	fs.makeRoom(t)
	testenv.EventuallyState(t, "the outbox to drain", func() (bool, string) {
		n := backlog(t, st)
		return n == 0, fmt.Sprintf("backlog %d, stream %d, %+v", n, streamCount(t, h.events), svc.Health(context.Background()).Dependencies)
	})
	testenv.Eventually(t, "the health report to show the stream with room", func() bool {
		return svc.Health(context.Background()).Dependencies[depEventStream].Status == messages.HealthUp
	})
	perSensor := map[string][]string{}
	for _, e := range readStream(t, h.events) {
		perSensor[e.event.SensorID] = append(perSensor[e.event.SensorID], e.event.EventID)
	}
	if got := strings.Join(perSensor["sensor-a"], ","); got != "a1,a2,a3" {
		t.Errorf("sensor-a's events in the stream: %s, want a1,a2,a3", got)
	}
	if got := strings.Join(perSensor["sensor-b"], ","); got != "b1" {
		t.Errorf("sensor-b's events in the stream: %s, want b1", got)
	}
	if n := len(h.logs.lines("dependency lost", "dependency="+depEventStream)); n != 1 {
		t.Errorf("%d lines for the stream filling, want 1:\n%s", n, h.logs.String())
	}
	if n := len(h.logs.lines("dependency regained", "dependency="+depEventStream)); n != 1 {
		t.Errorf("%d lines for the stream having room again, want 1:\n%s", n, h.logs.String())
	}
	if n := len(h.logs.lines("sensor.jetstream")); n != 0 {
		t.Errorf("%d breaker lines while the stream was full, want none:\n%s", n, h.logs.String())
	}
	if got := svc.atomicPublish.Load(); got == noAtomic {
		t.Errorf("relay with atomic publish %v on a stream with allow_atomic %v", got, !noAtomic)
	}
}

// TestBacklogFull: once the outbox holds MaxOutboxBacklog events (the
// stream is full, so they cannot leave), a submission is refused with 503
// backlog_full and stores nothing; the health report says so; once the
// stream has room and the outbox drains, submissions are accepted again.
func TestBacklogFull(t *testing.T) {
	h := newHarness(t)
	fs := fillStream(t, h)
	// Nothing else fits beside the filler.
	fs.cfg.MaxBytes = 2800
	ensureCtx := testenv.Deadline(t)
	js, err := jetstream.New(h.events)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.EnsureEventStream(ensureCtx, js, h.subj, fs.cfg); err != nil {
		t.Fatal(err)
	}
	st := openSQLite(t)
	const bound = 3
	svc := h.start(st, func(c *Config) {
		c.Stream = fs.cfg
		c.MaxOutboxBacklog = bound
	})
	for range bound {
		h.waitDone(tokAlice, h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "co2"}).TestID)
	}
	testenv.Eventually(t, "the events to wait in the outbox", func() bool { return backlog(t, st) == bound })

	testenv.Eventually(t, "the health report to show the backlog at its bound", func() bool {
		return svc.Health(context.Background()).Dependencies[depOutboxBacklog].Status == messages.HealthDown
	})
	stored := total(counts(t, st))
	_, err = h.submit(tokAlice, messages.SubmitTest{SensorType: "co2"}, nil)
	var refused *messages.Error
	if !errors.As(err, &refused) || refused.Code != messages.CodeBacklogFull {
		t.Fatalf("submission past the bound: %v, want %s", err, messages.CodeBacklogFull)
	}
	if refused.Code.HTTPStatus() != 503 || refused.RetryAfter <= 0 {
		t.Errorf("refusal %+v: want HTTP 503 with a retry-after", refused)
	}
	if got := total(counts(t, st)); got != stored {
		t.Errorf("a refused submission stored a test: %d tests, want %d", got, stored)
	}
	if d := svc.Health(context.Background()).Dependencies[depOutboxBacklog]; d.Status != messages.HealthDown || !strings.Contains(d.LastError, string(messages.CodeBacklogFull)) {
		t.Errorf("health of the outbox backlog %+v, want down with %s", d, messages.CodeBacklogFull)
	}

	// A bridge relays the events from now on.
	testenv.EventuallyState(t, "the outbox to drain", func() (bool, string) {
		fs.relay(t)
		n := backlog(t, st)
		return n == 0, fmt.Sprintf("backlog %d", n)
	})
	testenv.EventuallyState(t, "a submission accepted again", func() (bool, string) {
		_, err := h.submit(tokAlice, messages.SubmitTest{SensorType: "co2"}, nil)
		return err == nil, fmt.Sprint(err)
	})
	testenv.Eventually(t, "the health report to show the backlog below its bound", func() bool {
		return svc.Health(context.Background()).Dependencies[depOutboxBacklog].Status == messages.HealthUp
	})
}
