package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sensorhub/bridge"
	"sensorhub/internal/kafkadev"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

func TestRelayHappyPath(t *testing.T) {
	e := newEnv(t)
	b := e.start(t, e.config())
	evs := events(1000, 10)
	e.publish(t, evs)

	recs, got := kafkaEvents(t, e, len(evs))
	if len(recs) != len(evs) {
		t.Fatalf("kafka holds %d records, want %d (no duplicates on the happy path)", len(recs), len(evs))
	}
	want := map[string]messages.TestCompleted{}
	for _, ev := range evs {
		want[ev.EventID] = ev
	}
	seqs := map[string]bool{}
	for i, r := range recs {
		ev, ok := want[got[i].EventID]
		if !ok {
			t.Fatalf("record %d: unknown event %s", i, got[i].EventID)
		}
		body, _ := ev.Encode()
		if !bytes.Equal(r.Value, body) {
			t.Fatalf("record %d: body %s, want the published payload %s", i, r.Value, body)
		}
		for h, v := range map[string]string{
			messages.KafkaHeaderEventType:   messages.EventTypeCompleted,
			messages.KafkaHeaderStream:      messages.StreamEvents,
			messages.KafkaHeaderContentType: messages.ContentTypeJSON,
		} {
			if g := testenv.KafkaHeader(r, h); g != v {
				t.Fatalf("record %d: header %s = %q, want %q", i, h, g, v)
			}
		}
		seq := testenv.KafkaHeader(r, messages.KafkaHeaderSequence)
		if n, err := strconv.ParseUint(seq, 10, 64); err != nil || n == 0 || seqs[seq] {
			t.Fatalf("record %d: nats-sequence %q is not a fresh stream sequence", i, seq)
		}
		seqs[seq] = true
	}
	checkOrderPerSensor(t, got)

	testenv.Eventually(t, "stats: all successful, nothing queued", func() bool {
		s := stats(t, b)
		return s.Successful == uint64(len(evs)) && s.Queued == 0
	})
	s := stats(t, b)
	if s.Failed != 0 || s.DeadLettered != 0 || s.Breaker != messages.BreakerClosed || !s.KafkaReachable || s.OutboxBacklog != -1 {
		t.Fatalf("stats after a clean run: %+v", s)
	}
}

// While Kafka refuses writes or is gone, events wait in JetStream (the
// bridge holds one batch and fetches nothing more), the breaker opens, and
// nothing is redelivered however long the outage lasts; when Kafka is back
// everything arrives, in order per sensor.
func TestRelayKafkaDown(t *testing.T) {
	testenv.SkipIfShort(t) // a failure drill: the full suite runs it
	cases := []struct {
		name     string
		down, up func(t *testing.T, k *kafkadev.Broker)
	}{
		{
			name: "refuses produce",
			down: func(_ *testing.T, k *kafkadev.Broker) { k.RefuseProduce(true) },
			up:   func(_ *testing.T, k *kafkadev.Broker) { k.RefuseProduce(false) },
		},
		{
			name: "broker gone",
			down: func(_ *testing.T, k *kafkadev.Broker) { k.Stop() },
			up: func(t *testing.T, k *kafkadev.Broker) {
				if err := k.Start(); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := e.config()
			cfg.Breaker.CallTimeout = 500 * time.Millisecond
			cfg.AckWait = time.Second
			tc.down(t, e.kafka)
			evs := events(300, 7)
			// Published before the bridge starts, so that its first fetch
			// takes a whole batch (100 events).
			e.publish(t, evs)
			b := e.start(t, cfg)

			testenv.Eventually(t, "breaker open", func() bool { return stats(t, b).Breaker == messages.BreakerOpen })
			// Let the outage outlast AckWait several times over: every
			// open period lasts at least OpenFor (200ms) and ends with one
			// failed trial write of the held batch, 100 failed events.
			failedBefore := stats(t, b).Failed
			testenv.Eventually(t, "a long outage", func() bool { return stats(t, b).Failed >= failedBefore+1500 })

			s := stats(t, b)
			if s.Successful != 0 || s.Queued != uint64(len(evs)) || s.KafkaReachable || s.LastError == "" || s.LastErrorAt == nil {
				t.Fatalf("stats during the outage: %+v", s)
			}
			ci := consumerInfo(t, e)
			if ci.NumAckPending > cfg.BatchSize {
				t.Fatalf("%d events delivered during the outage, want at most one batch (%d)", ci.NumAckPending, cfg.BatchSize)
			}
			if ci.NumRedelivered != 0 {
				t.Fatalf("%d events redelivered during the outage, want 0", ci.NumRedelivered)
			}
			h := b.Health(context.Background())
			if h.Status != messages.HealthDegraded || h.Dependencies[bridge.DepKafka].Status != messages.HealthDown {
				t.Fatalf("health during the outage: %+v", h)
			}

			tc.up(t, e.kafka)
			records, ids := waitDistinct(t, e, evs)
			if len(ids) != len(evs) {
				t.Fatalf("kafka holds %d distinct events, want exactly the %d published", len(ids), len(evs))
			}
			_, got := kafkaEvents(t, e, records)
			checkOrderPerSensor(t, got)
			testenv.Eventually(t, "drained", func() bool {
				s := stats(t, b)
				return s.Queued == 0 && s.Successful >= uint64(len(evs)) && s.Breaker == messages.BreakerClosed && s.KafkaReachable
			})
			if ci := consumerInfo(t, e); ci.NumRedelivered != 0 {
				t.Fatalf("%d events redelivered, want 0", ci.NumRedelivered)
			}
			t.Logf("%d records for %d events", records, len(evs))
		})
	}
}

// A bridge that dies mid-batch (its connection gone while Kafka is
// writing a batch, so the acks cannot be sent) loses nothing: a new bridge
// relays what was not acknowledged, and the duplicates carry the same
// event id.
func TestRelayCrashMidBatch(t *testing.T) {
	testenv.SkipIfShort(t) // a failure drill: the full suite runs it
	e := newEnv(t)
	slowProduce(e.kafka, 5*time.Millisecond)
	var armed atomic.Bool
	hit, gate := make(chan struct{}, 1), make(chan struct{})
	e.kafka.Cluster().ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if armed.CompareAndSwap(true, false) {
			hit <- struct{}{}
			<-gate // hold this produce request until the bridge is dead
		}
		return nil, nil, false
	})
	cfg := e.config()
	evs := events(2000, 10)
	e.publish(t, evs)

	b1 := e.start(t, cfg)
	testenv.Eventually(t, "first bridge under way", func() bool { return stats(t, b1).Successful >= 300 })
	armed.Store(true)
	select {
	case <-hit:
	case <-time.After(10 * time.Second):
		t.Fatal("no produce request while the first bridge had events left")
	}
	b1.nc.Close() // the process dies: no more acks, no goodbye
	close(gate)
	_ = b1.Stop(5 * time.Second)
	if s := stats(t, b1); s.Successful >= uint64(len(evs)) {
		t.Fatalf("first bridge relayed everything (%d) before the crash", s.Successful)
	}

	b2 := e.start(t, cfg)
	waitDistinct(t, e, evs)
	// The batch Kafka took while the first bridge died is redelivered
	// once AckWait has passed, and written again.
	testenv.Eventually(t, "second bridge drained", func() bool { return stats(t, b2).Queued == 0 })
	recs, got := kafkaEvents(t, e, 0)
	records, ids := len(recs), map[string]bool{}
	for _, ev := range got {
		ids[ev.EventID] = true
	}
	if len(ids) != len(evs) {
		t.Fatalf("kafka holds %d distinct events, want %d", len(ids), len(evs))
	}
	if records <= len(evs) {
		t.Fatalf("kafka holds %d records for %d events: the batch written while the bridge died should be there twice", records, len(evs))
	}
	// kafkaEvents has checked that each record's event-id header is its
	// body's event_id, so every duplicate names its event.
	t.Logf("%d records for %d events: %d duplicates", records, len(evs), records-len(evs))
}

// The bridge relays by the NATS headers alone: a payload it could not
// parse (not even JSON) still goes to Kafka unchanged, keyed by the
// sensor id header, with the event id, test id and time from the headers
// and the type from the subject.
func TestRelayByHeadersOnly(t *testing.T) {
	if messages.HeaderMsgID != jetstream.MsgIDHeader {
		t.Fatalf("messages.HeaderMsgID %q is not JetStream's %q", messages.HeaderMsgID, jetstream.MsgIDHeader)
	}
	e := newEnv(t)
	b := e.start(t, e.config())
	msg := &nats.Msg{
		Subject: e.subj.Event("temperature", messages.EventKindFailed),
		Data:    []byte("\x00 not json {"),
		Header:  nats.Header{},
	}
	msg.Header.Set(messages.HeaderMsgID, "evt-opaque")
	msg.Header.Set(messages.HeaderSensorID, "sensor-opaque")
	msg.Header.Set(messages.HeaderTestID, "test-opaque")
	msg.Header.Set(messages.HeaderEventTime, "2025-06-07T08:09:10.123456Z")
	e.publishRaw(t, msg)
	e.waitPublished(t)

	recs := testenv.ReadAll(t, e.kafka.Addr(), messages.DefaultKafkaTopic, 1)
	if len(recs) != 1 {
		t.Fatalf("kafka holds %d records, want 1", len(recs))
	}
	r := recs[0]
	if string(r.Key) != "sensor-opaque" || !bytes.Equal(r.Value, msg.Data) {
		t.Fatalf("record key %q value %q, want the sensor id header and the payload unchanged", r.Key, r.Value)
	}
	for h, v := range map[string]string{
		messages.KafkaHeaderEventID:   "evt-opaque",
		messages.KafkaHeaderEventType: messages.EventTypeFailed,
		messages.KafkaHeaderStream:    messages.StreamEvents,
		messages.KafkaHeaderCEID:      "evt-opaque",
		messages.KafkaHeaderCEType:    messages.EventTypeFailed,
		messages.KafkaHeaderCESubject: "test-opaque",
		messages.KafkaHeaderCETime:    "2025-06-07T08:09:10.123456Z",
	} {
		if g := testenv.KafkaHeader(r, h); g != v {
			t.Fatalf("header %s = %q, want %q", h, g, v)
		}
	}
	testenv.Eventually(t, "one successful, nothing dead-lettered", func() bool {
		s := stats(t, b)
		return s.Successful == 1 && s.DeadLettered == 0 && s.Queued == 0
	})
}

// A poison event (too large for Kafka, or without the headers the bridge
// relays by) goes to the dead-letter stream with the reason and is
// counted; the rest flows.
func TestRelayPoison(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.MaxMessageBytes = 4096
	b := e.start(t, cfg)

	evs := events(20, 3)
	big := evs[7]
	big.Reason = strings.Repeat("x", 10_000)
	good := append(append([]messages.TestCompleted{}, evs[:7]...), evs[8:]...)
	e.publish(t, evs[:7])
	e.publish(t, []messages.TestCompleted{big})

	// Each case is a valid event with some headers taken away, or on a
	// subject that names no event type; the reason must name what is
	// missing.
	noType := e.subj.Event("temperature", "finished")
	// What the outbox relay before the sensor id and CloudEvents set none of.
	oldRelay := []string{messages.HeaderSensorID, messages.HeaderTestID, messages.HeaderEventTime}
	poison := []struct {
		name    string
		drop    []string
		subject string // "": the event's
		payload []byte // nil: the event's
		reason  []string
	}{
		{"published by the old relay: only Nats-Msg-Id", oldRelay, "", nil, oldRelay},
		{"no headers at all, not json, no type", append([]string{messages.HeaderMsgID}, oldRelay...), noType, []byte("not json"),
			append([]string{messages.HeaderMsgID, noType}, oldRelay...)},
		{"no sensor id", []string{messages.HeaderSensorID}, "", nil, []string{messages.HeaderSensorID}},
		{"no event type in the subject", nil, noType, nil, []string{noType, "names no event type"}},
		{"no test id", []string{messages.HeaderTestID}, "", nil, []string{messages.HeaderTestID}},
		{"no completion time", []string{messages.HeaderEventTime}, "", nil, []string{messages.HeaderEventTime}},
		{"a completion time that is not RFC 3339", nil, "", nil, []string{messages.HeaderEventTime, "yesterday", "RFC 3339"}},
	}
	for i, p := range poison {
		ev := evs[0]
		ev.EventID = fmt.Sprintf("poison-%d", i)
		msg := eventMsg(t, e.subj, ev)
		for _, h := range p.drop {
			msg.Header.Del(h)
		}
		if p.subject != "" {
			msg.Subject = p.subject
		}
		if p.payload != nil {
			msg.Data = p.payload
		}
		if slices.Contains(p.reason, "yesterday") {
			msg.Header.Set(messages.HeaderEventTime, "yesterday")
		}
		e.publishRaw(t, msg)
		e.waitPublished(t)
	}
	e.publish(t, evs[8:])

	_, ids := waitDistinct(t, e, good)
	for i := range poison {
		if id := fmt.Sprintf("poison-%d", i); ids[id] != 0 {
			t.Fatalf("poison event %s reached kafka", id)
		}
	}
	dead := 1 + len(poison)
	testenv.Eventually(t, "the dead letters counted", func() bool {
		s := stats(t, b)
		return s.DeadLettered == uint64(dead) && s.Queued == 0
	})

	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	dlq, err := e.bridgeJS.Stream(ctx, messages.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[uint64]string{} // original stream sequence -> reason
	for seq := uint64(1); seq <= uint64(dead); seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("dead letter %d: %v", seq, err)
		}
		if m.Subject != e.subj.DeadLetter() {
			t.Fatalf("dead letter %d on %s", seq, m.Subject)
		}
		reason := m.Header.Get(messages.HeaderDeadLetterReason)
		orig, err := strconv.ParseUint(m.Header.Get(messages.HeaderOriginalSequence), 10, 64)
		if reason == "" || err != nil || m.Header.Get(messages.HeaderOriginalSubject) == "" {
			t.Fatalf("dead letter %d without reason or origin: %v", seq, m.Header)
		}
		reasons[orig] = reason
	}
	// Stream order: evs[:7] are 1 to 7, big is 8, the poison cases follow.
	if r := reasons[8]; !strings.Contains(r, "exceeds") {
		t.Errorf("reason for the oversize event: %q", r)
	}
	for i, p := range poison {
		r := reasons[uint64(9+i)]
		for _, h := range p.reason {
			if !strings.Contains(r, h) {
				t.Errorf("%s: reason %q does not name %s", p.name, r, h)
			}
		}
		if len(p.reason) < 3 && strings.Contains(r, messages.HeaderMsgID) {
			t.Errorf("%s: reason %q names %s, which was there", p.name, r, messages.HeaderMsgID)
		}
	}
}

// When the broker refuses as too large a batch it would take record by
// record, the bridge writes the records one at a time, and dead-letters
// only the one the broker refuses on its own.
func TestRelayBrokerRefusesLargeBatch(t *testing.T) {
	e := newEnvWith(t, kafkadev.Config{BrokerConfigs: map[string]string{"message.max.bytes": "3000"}})
	b := e.start(t, e.config())
	evs := events(30, 2)
	big := evs[5]
	big.Reason = strings.Repeat("y", 4000)
	good := append(append([]messages.TestCompleted{}, evs[:5]...), evs[6:]...)
	e.publish(t, evs[:5])
	e.publish(t, []messages.TestCompleted{big})
	e.publish(t, evs[6:])

	recs, ids := waitDistinct(t, e, good)
	if ids[big.EventID] != 0 {
		t.Fatalf("the record the broker refuses reached kafka")
	}
	_, got := kafkaEvents(t, e, recs)
	checkOrderPerSensor(t, got)
	testenv.Eventually(t, "one dead letter", func() bool {
		s := stats(t, b)
		return s.DeadLettered == 1 && s.Queued == 0
	})
}

// Two bridges sharing the durable consumer relay every event at least
// once between them.
func TestRelayTwoBridges(t *testing.T) {
	e := newEnv(t)
	slowProduce(e.kafka, 2*time.Millisecond)
	cfg := e.config()
	b1 := e.start(t, cfg)
	b2 := e.start(t, cfg)
	evs := events(2000, 10)
	e.publish(t, evs)

	_, ids := waitDistinct(t, e, evs)
	if len(ids) != len(evs) {
		t.Fatalf("kafka holds %d distinct events, want %d", len(ids), len(evs))
	}
	testenv.Eventually(t, "both drained", func() bool { return stats(t, b1).Queued == 0 })
	s1, s2 := stats(t, b1).Successful, stats(t, b2).Successful
	if s1+s2 < uint64(len(evs)) {
		t.Fatalf("bridges relayed %d + %d events, want at least %d", s1, s2, len(evs))
	}
	if s1 == 0 || s2 == 0 {
		t.Fatalf("one bridge did all the work (%d, %d): the consumer is not shared", s1, s2)
	}
	t.Logf("split: %d / %d", s1, s2)
}

// The bridge rides out a NATS restart (same store directory) by itself.
func TestRelayNATSRestart(t *testing.T) {
	e := newEnv(t)
	b := e.start(t, e.config())
	evs := events(400, 5)
	e.publish(t, evs[:200])
	waitDistinct(t, e, evs[:200])

	e.nats.Restart()
	e.publishSync(t, evs[200:])
	waitDistinct(t, e, evs)
	testenv.Eventually(t, "healthy again", func() bool {
		h := b.Health(context.Background())
		return h.Status == messages.HealthOK
	})
	testenv.Eventually(t, "drained", func() bool { return stats(t, b).Queued == 0 })
}
