package bridge_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sensorhub/actors/supervise"
	"sensorhub/bridge"
	"sensorhub/internal/breaker"
	"sensorhub/internal/kafkadev"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

var verbose = flag.Bool("bridge.log", false, "log the bridges under test to stderr")

func logger() *slog.Logger {
	if *verbose {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// env is one test's world: embedded NATS with JetStream on disk, an
// in-process Kafka broker, and a publisher connection playing the sensor
// role's outbox relay.
type env struct {
	nats  *testenv.NATSServer
	kafka *kafkadev.Broker
	pub   *nats.Conn // the sensor role's identity
	js    jetstream.JetStream
	// bridgeJS is JetStream as the bridge; client is the edge's identity.
	bridgeJS jetstream.JetStream
	client   *nats.Conn
	subj     messages.Subjects
	// kafkaAuth is how the test itself reads a broker that requires TLS
	// or SASL (zero: plain).
	kafkaAuth testenv.KafkaAuth
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, kafkadev.Config{})
}

func newEnvWith(t testing.TB, kcfg kafkadev.Config) *env {
	t.Helper()
	e := &env{nats: testenv.NATS(t), kafka: testenv.KafkaWith(t, kcfg), subj: messages.DefaultSubjects()}
	// Events come from the sensor role's identity, as in production; the
	// bridge's identity reads its consumer and dead letters; the edge's
	// asks for the stats.
	e.pub = e.nats.Conn(t, messages.RoleSensor)
	js, err := jetstream.New(e.pub)
	if err != nil {
		t.Fatal(err)
	}
	e.js = js
	if e.bridgeJS, err = jetstream.New(e.nats.Conn(t, messages.RoleBridge)); err != nil {
		t.Fatal(err)
	}
	e.client = e.nats.Conn(t, messages.RoleEdge)
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	if _, err := natsx.EnsureEventStream(ctx, js, e.subj, natsx.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// config is a bridge config scaled down for tests: short waits, a breaker
// that opens after three failures and probes every 200ms.
func (e *env) config() bridge.Config {
	return bridge.Config{
		Subjects:      e.subj,
		Brokers:       []string{e.kafka.Addr()},
		BatchSize:     100,
		AckWait:       2 * time.Second,
		FetchWait:     200 * time.Millisecond,
		ProbeInterval: 500 * time.Millisecond,
		Breaker:       breaker.Config{CallTimeout: time.Second, OpenFor: 200 * time.Millisecond, Failures: 3},
		Logger:        logger(),
	}
}

// running is one bridge process: its own NATS connection and actor system.
type running struct {
	*bridge.Bridge
	nc     *nats.Conn
	system *actor.ActorSystem
}

func (e *env) start(t testing.TB, cfg bridge.Config) *running {
	t.Helper()
	nc := e.nats.Conn(t, messages.RoleBridge)
	system := supervise.NewSystem(cfg.Logger)
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	b, err := bridge.Start(ctx, nc, system, cfg)
	if err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	r := &running{Bridge: b, nc: nc, system: system}
	t.Cleanup(func() {
		if err := b.Stop(10 * time.Second); err != nil {
			t.Errorf("stop bridge: %v", err)
		}
	})
	return r
}

func events(n, sensors int) []messages.TestCompleted {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	out := make([]messages.TestCompleted, n)
	for i := range out {
		out[i] = messages.TestCompleted{
			Schema:      messages.EventSchema,
			EventID:     fmt.Sprintf("evt-%07d", i),
			Type:        messages.EventTypeCompleted,
			TestID:      fmt.Sprintf("test-%07d", i),
			SensorType:  "temperature",
			SensorID:    fmt.Sprintf("sensor-%d", i%sensors),
			Owner:       "admin",
			Status:      "completed",
			Verdict:     "pass",
			CreatedAt:   now,
			CompletedAt: now.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return out
}

// publish stores events in SENSOR_EVENTS as the outbox relay does: with
// Nats-Msg-Id = event id, waiting for every PubAck.
func (e *env) publish(t testing.TB, evs []messages.TestCompleted) {
	t.Helper()
	for _, ev := range evs {
		e.publishRaw(t, eventMsg(t, e.subj, ev))
	}
	e.waitPublished(t)
}

// eventMsg is ev as the outbox relay publishes it: the payload on its
// event subject, with the event id, sensor id, test id and completion time
// in the headers.
func eventMsg(t testing.TB, subj messages.Subjects, ev messages.TestCompleted) *nats.Msg {
	t.Helper()
	data, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return natsx.EventMsg(subj.Event(ev.SensorType, ev.Kind()), eventHeaders(ev), data)
}

// eventHeaders are the NATS headers the outbox relay gives ev.
func eventHeaders(ev messages.TestCompleted) natsx.EventHeaders {
	return natsx.EventHeaders{EventID: ev.EventID, SensorID: ev.SensorID, TestID: ev.TestID, Time: ev.CompletedAt}
}

func (e *env) publishRaw(t testing.TB, msg *nats.Msg) {
	t.Helper()
	for {
		_, err := e.js.PublishMsgAsync(msg)
		if err == nil {
			return
		}
		if err != jetstream.ErrTooManyStalledMsgs {
			t.Fatalf("publish %s: %v", msg.Header.Get(messages.HeaderMsgID), err)
		}
		e.waitPublished(t)
	}
}

func (e *env) waitPublished(t testing.TB) {
	t.Helper()
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatalf("publish acks not received within 30s")
	}
}

func stats(t testing.TB, b *running) messages.BridgeStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	return b.Stats(ctx)
}

// kafkaEvents reads the topic until it holds at least want records and
// returns them with their decoded events, checking on the way that every
// record is consistent: key = sensor id, event-id header = body's id.
func kafkaEvents(t testing.TB, e *env, want int) ([]kafka.Message, []messages.TestCompleted) {
	t.Helper()
	recs := testenv.ReadAllAuth(t, e.kafka.Addr(), messages.DefaultKafkaTopic, want, e.kafkaAuth)
	evs := make([]messages.TestCompleted, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Value, &evs[i]); err != nil {
			t.Fatalf("record %d: body is not an event: %v", i, err)
		}
		if got := testenv.KafkaHeader(r, messages.KafkaHeaderEventID); got != evs[i].EventID {
			t.Fatalf("record %d: event-id header %q, body event_id %q", i, got, evs[i].EventID)
		}
		if string(r.Key) != evs[i].SensorID {
			t.Fatalf("record %d: key %q, sensor id %q", i, r.Key, evs[i].SensorID)
		}
	}
	return recs, evs
}

// distinct waits until Kafka holds every one of want events (by id) and
// returns the count of records and of distinct ids.
func waitDistinct(t testing.TB, e *env, want []messages.TestCompleted) (records int, ids map[string]int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs, evs := kafkaEvents(t, e, 0)
		ids = map[string]int{}
		for _, ev := range evs {
			ids[ev.EventID]++
		}
		missing := 0
		for _, ev := range want {
			if ids[ev.EventID] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return len(recs), ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafka misses %d of %d events", missing, len(want))
		}
		time.Sleep(50 * time.Millisecond) // polling Kafka with a deadline
	}
}

// checkOrderPerSensor checks that, per key, the first occurrences of the
// events are in publication order (event ids increase).
func checkOrderPerSensor(t testing.TB, evs []messages.TestCompleted) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]string{}
	for _, ev := range evs {
		if seen[ev.EventID] {
			continue
		}
		seen[ev.EventID] = true
		if prev, ok := last[ev.SensorID]; ok && prev > ev.EventID {
			t.Fatalf("sensor %s: event %s after %s in kafka", ev.SensorID, ev.EventID, prev)
		}
		last[ev.SensorID] = ev.EventID
	}
}

func consumerInfo(t testing.TB, e *env) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	c, err := e.bridgeJS.Consumer(ctx, messages.StreamEvents, messages.ConsumerBridge)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return c.CachedInfo()
}

// publishSync publishes evs one by one, retrying each until JetStream
// acknowledges it (for use around a NATS restart; the Nats-Msg-Id makes a
// retry harmless).
func (e *env) publishSync(t testing.TB, evs []messages.TestCompleted) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, ev := range evs {
		msg := eventMsg(t, e.subj, ev)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := e.js.PublishMsg(ctx, msg)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("publish %s: %v", ev.EventID, err)
			}
			time.Sleep(20 * time.Millisecond) // retrying while NATS comes back
		}
	}
}

// slowProduce makes the broker take d per produce request, so that a test
// can act while a backlog is being relayed.
func slowProduce(b *kafkadev.Broker, d time.Duration) {
	b.Cluster().ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		time.Sleep(d) // simulating a slow broker
		return nil, nil, false
	})
}
