package sensor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// oneSensor is n small events of one sensor, named prefix0000 on.
func oneSensor(prefix, sensor string, n, pad int) []messages.TestCompleted {
	evs := make([]messages.TestCompleted, n)
	for i := range evs {
		evs[i] = orderEvent(fmt.Sprintf("%s%04d", prefix, i), sensor, pad)
	}
	return evs
}

func eventIDs(evs []messages.TestCompleted) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.EventID
	}
	return ids
}

// batchesOf checks that every event came in an atomic batch (the server
// stores the batch headers with it), none over the server's bound, and
// returns how many batches there were (each one commit, one PubAck).
func batchesOf(t *testing.T, events []streamEvent) int {
	t.Helper()
	sizes := map[string]int{}
	commits := 0
	for _, e := range events {
		id := e.header.Get(hdrBatchID)
		if id == "" {
			t.Fatalf("event %s stored without a batch id: published on its own", e.event.EventID)
		}
		sizes[id]++
		if e.header.Get(hdrBatchCommit) != "" {
			commits++
		}
	}
	for id, n := range sizes {
		if n > atomicBatchSize {
			t.Errorf("batch %s of %d events, over the server's bound %d", id, n, atomicBatchSize)
		}
	}
	if commits != len(sizes) {
		t.Errorf("%d commits for %d batches", commits, len(sizes))
	}
	return len(sizes)
}

// TestOutboxRelayAtomicBatches: one busy sensor's 2,100 events, over two
// relay rounds and the server's bound on an atomic batch, are stored in
// outbox order in a few atomic batches (one commit and one PubAck each),
// not one round trip per event; each keeps its headers.
func TestOutboxRelayAtomicBatches(t *testing.T) {
	h := newHarness(t)
	evs := oneSensor("a", "sensor-a", 2100, 10)
	st := sqliteWithOutbox(t, h, evs...)
	svc := h.start(st, nil)

	testenv.EventuallyState(t, "the outbox relayed", func() (bool, string) {
		n, m := backlog(t, st), streamCount(t, h.events)
		return n == 0 && m == uint64(len(evs)), fmt.Sprintf("backlog %d, stream %d", n, m)
	})
	events := readStream(t, h.events)
	got := make([]string, len(events))
	for i, e := range events {
		got[i] = e.event.EventID
		checkEventHeaders(t, e)
	}
	if !slices.Equal(got, eventIDs(evs)) {
		t.Fatalf("stream order differs from the outbox's:\n%v", got)
	}
	// Rounds of DefaultOutboxBatch (1024) rows, each in batches of at most
	// 1000: 1000+24, 1000+24, 52.
	if n := batchesOf(t, events); n > 5 {
		t.Errorf("%d atomic batches for %d events, want at most 5", n, len(evs))
	}
	if !svc.atomicPublish.Load() {
		t.Error("relay without atomic publish on a server that has it")
	}
}

// storedSize is what the file store counts for ev against MaxBytes,
// published by the relay in an atomic batch with a sequence of up to four
// digits (nats-server's fileStoreMsgSize: a 34-byte record around the
// subject, the header block and the payload).
func storedSize(t *testing.T, h *harness, ev messages.TestCompleted) int64 {
	t.Helper()
	payload, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	subject := h.subj.Event(ev.SensorType, ev.Kind())
	msg := natsx.EventMsg(subject, natsx.EventHeaders{EventID: ev.EventID, SensorID: ev.SensorID, TestID: ev.TestID, Time: ev.CreatedAt}, payload)
	msg.Header.Set(hdrBatchID, "00000000-0000-0000-0000-000000000000")
	msg.Header.Set(hdrBatchSeq, "1000")
	hdr := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range msg.Header {
		for _, v := range vs {
			hdr += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return int64(34 + len(subject) + hdr + len(payload))
}

// TestOutboxRelayAtomicFullMidRound: the stream fills in the middle of a
// round of one sensor's events: its first atomic batch (1000 small events)
// fits, the second (24 large ones) does not. The acknowledged batch leaves
// the outbox, the refused one is stored not at all, and while the stream is
// full it holds a prefix of the outbox order and the outbox the rest. As
// the bridge makes room the rest follows, and the bridge gets every event
// once, in outbox order.
func TestOutboxRelayAtomicFullMidRound(t *testing.T) {
	h := newHarness(t)
	evs := append(oneSensor("a", "sensor-a", atomicBatchSize, 10), oneSensor("b", "sensor-a", 100, largePad)...)
	// Room for the first batch, the second batch's commit header, and ten
	// large events: not for the 24 of the second batch.
	room := int64(len("Nats-Batch-Commit: 1\r\n"))
	for _, ev := range evs[:atomicBatchSize] {
		room += storedSize(t, h, ev)
	}
	room += 10 * storedSize(t, h, evs[atomicBatchSize])
	cfg := natsx.StreamConfig{MaxBytes: room}
	js, err := jetstream.New(h.events)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.EnsureEventStream(testenv.Deadline(t), js, h.subj, cfg); err != nil {
		t.Fatal(err)
	}
	fs := &fullStream{h: h, cfg: cfg, cons: bridgeConsumer(t, h)}
	st := sqliteWithOutbox(t, h, evs...)
	svc := h.start(st, func(c *Config) { c.Stream = cfg })

	// Full, and settled: the stream and the outbox together hold every
	// event once (a wave in progress may have stored a row it has not
	// deleted yet).
	testenv.EventuallyState(t, "the stream to be full and settled", func() (bool, string) {
		d := svc.Health(context.Background()).Dependencies[depEventStream]
		n, left, n2 := streamCount(t, h.events), backlog(t, st), streamCount(t, h.events)
		return d.Status == messages.HealthDown && strings.Contains(d.LastError, "stream_full") &&
				n == n2 && int(n)+int(left) == len(evs),
			fmt.Sprintf("%+v; stream %d..%d, outbox %d, of %d", d, n, n2, left, len(evs))
	})
	stored := readStream(t, h.events)
	if len(stored) < atomicBatchSize || len(stored) > atomicBatchSize+15 {
		t.Fatalf("%d events stored, want the first batch of %d and up to about ten more", len(stored), atomicBatchSize)
	}
	for i, e := range stored {
		if e.event.EventID != evs[i].EventID {
			t.Fatalf("stream event %d is %s, want %s: not a prefix of the outbox", i, e.event.EventID, evs[i].EventID)
		}
	}
	if n := batchesOf(t, stored[:atomicBatchSize]); n != 1 {
		t.Errorf("the first %d events in %d batches, want 1", atomicBatchSize, n)
	}

	var relayed []string
	testenv.EventuallyState(t, "the outbox to drain through the bridge", func() (bool, string) {
		relayed = append(relayed, fs.relay(t)...)
		n := backlog(t, st)
		return n == 0 && len(relayed) >= len(evs), fmt.Sprintf("backlog %d, relayed %d", n, len(relayed))
	})
	relayed = append(relayed, fs.relay(t)...)
	if !slices.Equal(relayed, eventIDs(evs)) {
		t.Fatalf("the bridge got %d events, not the outbox's %d in order:\n%v", len(relayed), len(evs), relayed)
	}
}

// TestOutboxRelayAtomicDuplicate: an outbox row whose event is already in
// the stream (stored, but its row not deleted: a lost ack or a failed
// delete) makes the server refuse the whole atomic batch as a duplicate.
// The relay publishes that batch in waves instead, whose duplicate ack
// counts as stored: the outbox drains and every event is stored once.
func TestOutboxRelayAtomicDuplicate(t *testing.T) {
	h := newHarness(t)
	js, err := jetstream.New(h.events)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Deadline(t)
	if _, err := natsx.EnsureEventStream(ctx, js, h.subj, natsx.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	evs := oneSensor("a", "sensor-a", 20, 10)
	dup := evs[5]
	payload, err := dup.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, natsx.EventMsg(h.subj.Event(dup.SensorType, dup.Kind()),
		natsx.EventHeaders{EventID: dup.EventID, SensorID: dup.SensorID, TestID: dup.TestID, Time: dup.CompletedAt}, payload)); err != nil {
		t.Fatalf("store the event before the relay: %v", err)
	}
	st := sqliteWithOutbox(t, h, evs...)
	h.start(st, nil)

	testenv.EventuallyState(t, "the outbox relayed", func() (bool, string) {
		n, m := backlog(t, st), streamCount(t, h.events)
		return n == 0, fmt.Sprintf("backlog %d, stream %d", n, m)
	})
	var got []string
	for _, e := range readStream(t, h.events) {
		got = append(got, e.event.EventID)
	}
	want := append([]string{dup.EventID}, slices.Delete(eventIDs(evs), 5, 6)...)
	if !slices.Equal(got, want) {
		t.Fatalf("stream %v, want %v (each event once, in order)", got, want)
	}
}

// TestOutboxRelayWithoutAtomicPublish: on a stream without allow_atomic
// (a server before 2.12 returns it so) the relay publishes in waves: all
// events stored, in order per sensor, none in a batch.
func TestOutboxRelayWithoutAtomicPublish(t *testing.T) {
	h := newHarness(t)
	cfg := natsx.StreamConfig{NoAtomicPublish: true}
	var evs []messages.TestCompleted
	a, b := oneSensor("a", "sensor-a", 30, 10), oneSensor("b", "sensor-b", 30, 10)
	for i := range a {
		evs = append(evs, a[i], b[i])
	}
	st := sqliteWithOutbox(t, h, evs...)
	svc := h.start(st, func(c *Config) { c.Stream = cfg })

	testenv.EventuallyState(t, "the outbox relayed", func() (bool, string) {
		n, m := backlog(t, st), streamCount(t, h.events)
		return n == 0 && m == uint64(len(evs)), fmt.Sprintf("backlog %d, stream %d", n, m)
	})
	perSensor := map[string][]string{}
	for _, e := range readStream(t, h.events) {
		if id := e.header.Get(hdrBatchID); id != "" {
			t.Fatalf("event %s stored in batch %s on a stream without atomic publish", e.event.EventID, id)
		}
		perSensor[e.event.SensorID] = append(perSensor[e.event.SensorID], e.event.EventID)
	}
	if !slices.Equal(perSensor["sensor-a"], eventIDs(a)) || !slices.Equal(perSensor["sensor-b"], eventIDs(b)) {
		t.Fatalf("per sensor: %v", perSensor)
	}
	if svc.atomicPublish.Load() {
		t.Error("relay with atomic publish on a stream without allow_atomic")
	}
}
