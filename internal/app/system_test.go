package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"

	"sensorhub/internal/breaker"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

// submitMany fires n submissions at once (all goroutines released together)
// and returns the replies in order.
func (s *system) submitMany(tok string, n int, body func(i int) []byte) []reply {
	s.t.Helper()
	out := make([]reply, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var b []byte
			if body != nil {
				b = body(i)
			}
			out[i], errs[i] = s.do(http.MethodPost, "/test/sensor/temperature", tok, b)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			s.t.Fatalf("submission %d: %v", i, err)
		}
	}
	return out
}

func acceptedIDs(t *testing.T, replies []reply) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for i, r := range replies {
		if r.status != http.StatusAccepted {
			t.Fatalf("submission %d: %d %s", i, r.status, r.body)
		}
		var acc messages.TestAccepted
		r.decode(t, &acc)
		if acc.Status != messages.StatusProcessing || !messages.ValidTestID(acc.TestID) {
			t.Fatalf("submission %d answered %s", i, r.body)
		}
		if ids[acc.TestID] {
			t.Fatalf("test id %s given twice", acc.TestID)
		}
		ids[acc.TestID] = true
	}
	return ids
}

// eventsByTest reads the Kafka topic and groups the event ids by test id.
func eventsByTest(t *testing.T, msgs []kafka.Message) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for _, m := range msgs {
		ev, err := messages.DecodeEvent(m.Value)
		if err != nil {
			t.Fatalf("undecodable event in Kafka: %v: %s", err, m.Value)
		}
		if testenv.KafkaHeader(m, messages.KafkaHeaderEventID) != ev.EventID {
			t.Fatalf("event-id header %q differs from the body's %q", testenv.KafkaHeader(m, messages.KafkaHeaderEventID), ev.EventID)
		}
		if out[ev.TestID] == nil {
			out[ev.TestID] = map[string]bool{}
		}
		out[ev.TestID][ev.EventID] = true
	}
	return out
}

// checkExactlyOnce asserts that after dedupe by event id Kafka holds exactly
// one event for each accepted test and nothing else.
func checkExactlyOnce(t *testing.T, accepted map[string]bool, byTest map[string]map[string]bool) {
	t.Helper()
	for id := range accepted {
		switch n := len(byTest[id]); n {
		case 1:
		case 0:
			t.Errorf("test %s has no event in Kafka", id)
		default:
			t.Errorf("test %s has %d distinct event ids: completed more than once", id, n)
		}
	}
	for id := range byTest {
		if !accepted[id] {
			t.Errorf("Kafka holds an event for test %s that was never accepted", id)
		}
	}
}

// The seed's overload example at the HTTP edge against PostgreSQL: 1,000
// concurrent submissions all get 202, all end completed, none twice.
func TestThousandConcurrentSubmissions(t *testing.T) {
	s := newSystem(t)
	// A load test, not an outage test: fastDB's 2 s per store call is
	// there to see a cut database quickly, and a group commit of hundreds
	// of inserts on a machine busy with other suites can take longer (seen:
	// database_unavailable for one submission of 1,000 with two -race
	// suites running at once). Latency is the benchmarks' to measure.
	s.dbBreaker = breaker.Config{CallTimeout: testenv.Wait(t), OpenFor: 500 * time.Millisecond, Failures: 3}
	s.startAll()
	tok := s.login("alice", "alice-secret")

	const n = 1000
	started := time.Now()
	accepted := acceptedIDs(t, s.submitMany(tok, n, nil))
	t.Logf("%d submissions answered 202 in %s", n, time.Since(started).Round(time.Millisecond))

	st := s.openStore(s.realDB)
	testenv.EventuallyState(t, "all tests completed", func() (bool, string) {
		c := s.counts(st)
		return c[messages.StatusCompleted] == n, fmt.Sprint(c)
	})
	if c := s.counts(st); c[messages.StatusFailed] != 0 || c[messages.StatusProcessing] != 0 {
		t.Fatalf("counts %v", c)
	}
	t.Logf("all %d completed %s after the first submission", n, time.Since(started).Round(time.Millisecond))
	checkExactlyOnce(t, accepted, eventsByTest(t, testenv.ReadAll(t, s.kafka.Addr(), messages.DefaultKafkaTopic, n)))

	// A sample of results reads back completed with a verdict.
	i := 0
	for id := range accepted {
		if i++; i > 5 {
			break
		}
		r := s.mustDo(http.MethodGet, "/test/"+id, tok, nil)
		var rec messages.TestRecord
		r.decode(t, &rec)
		if r.status != http.StatusOK || rec.Status != messages.StatusCompleted || rec.Verdict == "" || rec.Stats == nil {
			t.Fatalf("GET /test/%s: %d %s", id, r.status, r.body)
		}
	}
}

// signWith issues a token for alice with key (the real one or a stranger's).
func signWith(t *testing.T, key ed25519.PrivateKey, now time.Time) string {
	t.Helper()
	sg, err := token.NewSigner(key, token.SignerConfig{Issuer: "sensorhub", Audience: "sensorhub", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := sg.Issue("alice", []string{messages.RoleAdmin}, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// With auth stopped, a token issued before still works through the local
// fallback, marked as such; forged and expired tokens are still refused;
// login answers 503 auth_unavailable at once.
func TestAuthDownFallsBackToLocalVerification(t *testing.T) {
	s := newSystem(t)
	s.startAll()
	tok := s.login("alice", "alice-secret")
	realKey, _, err := token.LoadOrCreateKey(s.keyDir + "/jwt.pem")
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	forged := signWith(t, stranger, time.Now())
	expired := signWith(t, realKey, time.Now().Add(-2*time.Hour))

	s.stop("auth")

	start := time.Now()
	r := s.mustDo(http.MethodPost, "/auth/token", "", []byte(`{"username":"alice","password":"alice-secret"}`))
	if r.status != http.StatusServiceUnavailable || r.code() != string(messages.CodeAuthUnavailable) {
		t.Fatalf("login with auth down: %d %s", r.status, r.body)
	}
	var e messages.Error
	r.decode(t, &e)
	if e.Message != "auth service unavailable" {
		t.Fatalf("login with auth down: message %q", e.Message)
	}
	t.Logf("login with auth down answered in %s", time.Since(start).Round(time.Microsecond))
	if r := s.mustDo(http.MethodGet, "/healthz", "", nil); r.status != http.StatusOK {
		t.Fatalf("/healthz with auth down: %d", r.status)
	}

	r = s.mustDo(http.MethodPost, "/test/sensor/temperature", tok, nil)
	if r.status != http.StatusAccepted || r.header.Get("X-Auth-Mode") != messages.AuthModeFallback {
		t.Fatalf("submit with auth down: %d %s X-Auth-Mode=%q", r.status, r.body, r.header.Get("X-Auth-Mode"))
	}
	var acc messages.TestAccepted
	r.decode(t, &acc)

	for name, bad := range map[string]string{"forged": forged, "expired": expired, "garbage": "a.b.c"} {
		r := s.mustDo(http.MethodPost, "/test/sensor/temperature", bad, nil)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s token with auth down: %d %s, want 401", name, r.status, r.body)
		}
	}

	testenv.EventuallyState(t, "fallback test completed", func() (bool, string) {
		r := s.mustDo(http.MethodGet, "/test/"+acc.TestID, tok, nil)
		var rec messages.TestRecord
		_ = json.Unmarshal(r.body, &rec)
		return rec.Status == messages.StatusCompleted && rec.AuthMode == messages.AuthModeFallback, string(r.body)
	})

	// Auth back: login works again and new submissions are online.
	s.startAuth()
	testenv.EventuallyState(t, "login after auth returned", func() (bool, string) {
		r, err := s.do(http.MethodPost, "/auth/token", "", []byte(`{"username":"alice","password":"alice-secret"}`))
		return err == nil && r.status == http.StatusOK, fmt.Sprint(r.status, string(r.body), err)
	})
}

// With PostgreSQL cut off, a submission gets 503 Database unavailable
// within the deadline and every role stays up; when it returns, submissions
// succeed again without a restart.
func TestDatabaseCutThenBack(t *testing.T) {
	s := newSystem(t)
	s.startAll()
	tok := s.login("alice", "alice-secret")
	if r := s.mustDo(http.MethodPost, "/test/sensor/temperature", tok, nil); r.status != http.StatusAccepted {
		t.Fatalf("before the cut: %d %s", r.status, r.body)
	}

	s.proxy.Cut()
	for i := 0; i < 5; i++ {
		start := time.Now()
		r := s.mustDo(http.MethodPost, "/test/sensor/temperature", tok, nil)
		took := time.Since(start)
		var e messages.Error
		r.decode(t, &e)
		if r.status != http.StatusServiceUnavailable || e.Code != messages.CodeDatabaseUnavailable || e.Message != "Database unavailable" {
			t.Fatalf("submit with the database cut: %d %s", r.status, r.body)
		}
		// The deadline is the sensor's database call timeout (2s); the
		// client's own 30s timeout would mean a hang.
		if took > 10*time.Second {
			t.Fatalf("503 took %s: no deadline", took)
		}
		t.Logf("database cut: 503 in %s", took.Round(time.Microsecond))
	}
	if r := s.mustDo(http.MethodGet, "/healthz", "", nil); r.status != http.StatusOK {
		t.Fatalf("/healthz with the database cut: %d", r.status)
	}
	r := s.mustDo(http.MethodGet, "/health", "", nil)
	var h messages.EdgeHealth
	r.decode(t, &h)
	if r.status != http.StatusOK || h.Status != messages.HealthDegraded {
		t.Fatalf("/health with the database cut: %d %s", r.status, r.body)
	}
	for _, role := range []string{messages.RoleAuth, messages.RoleSensor, messages.RoleBridge} {
		if h.Services[role].Status == messages.HealthDown || h.Services[role].Status == "" {
			t.Errorf("role %s is %q with the database cut; want it up (degraded)", role, h.Services[role].Status)
		}
	}
	if h.Services[messages.RoleSensor].Dependencies["database"].Status != messages.HealthDown {
		t.Errorf("sensor health does not show the database down: %s", r.body)
	}

	s.proxy.Restore()
	var acc messages.TestAccepted
	testenv.EventuallyState(t, "submission after the database returned", func() (bool, string) {
		r, err := s.do(http.MethodPost, "/test/sensor/temperature", tok, nil)
		if err == nil && r.status == http.StatusAccepted {
			r.decode(t, &acc)
			return true, ""
		}
		return false, fmt.Sprint(r.status, string(r.body), err)
	})
	testenv.EventuallyState(t, "that test completed", func() (bool, string) {
		r := s.mustDo(http.MethodGet, "/test/"+acc.TestID, tok, nil)
		var rec messages.TestRecord
		_ = json.Unmarshal(r.body, &rec)
		return rec.Status == messages.StatusCompleted, string(r.body)
	})
}

// Kafka refusing writes: 500 tests are accepted and completed, the stats
// show them queued with the breaker open, JetStream does not redeliver in a
// storm; when Kafka returns every event arrives, in order per sensor, and
// after dedupe Kafka holds exactly the 500.
func TestKafkaDownEventsWaitAndDrain(t *testing.T) {
	s := newSystem(t)
	s.startAll()
	tok := s.login("alice", "alice-secret")
	s.kafka.RefuseProduce(true)

	const n, sensors = 500, 10
	accepted := map[string]bool{}
	for batch := 0; batch < n/50; batch++ {
		for id := range acceptedIDs(t, s.submitMany(tok, 50, func(i int) []byte {
			return []byte(`{"sensor_id":"s-` + strconv.Itoa((batch*50+i)%sensors) + `"}`)
		})) {
			accepted[id] = true
		}
	}
	st := s.openStore(s.realDB)
	testenv.EventuallyState(t, "all tests completed", func() (bool, string) {
		c := s.counts(st)
		return c[messages.StatusCompleted] == n, fmt.Sprint(c)
	})
	var stats messages.BridgeStats
	testenv.EventuallyState(t, "stats show the events queued and the breaker open", func() (bool, string) {
		r := s.mustDo(http.MethodGet, "/kafka/stats", "", nil)
		_ = json.Unmarshal(r.body, &stats)
		return stats.Queued == n && stats.Breaker == "open" && !stats.KafkaReachable, string(r.body)
	})

	nc := s.nats.Conn(t, messages.RoleBridge) // the consumer is the bridge's to read
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	cons, err := js.Consumer(ctx, messages.StreamEvents, messages.ConsumerBridge)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("during the outage: %+v; consumer redelivered %d, ack pending %d", stats, info.NumRedelivered, info.NumAckPending)
	if info.NumRedelivered > 0 {
		t.Errorf("JetStream redelivered %d messages during the outage: the bridge must stop fetching, not loop", info.NumRedelivered)
	}

	s.kafka.RefuseProduce(false)
	testenv.EventuallyState(t, "queue drained", func() (bool, string) {
		r := s.mustDo(http.MethodGet, "/kafka/stats", "", nil)
		_ = json.Unmarshal(r.body, &stats)
		return stats.Queued == 0 && stats.Breaker == "closed", string(r.body)
	})
	msgs := testenv.ReadAll(t, s.kafka.Addr(), messages.DefaultKafkaTopic, n)
	checkExactlyOnce(t, accepted, eventsByTest(t, msgs))

	// In order per sensor: within a key, Kafka offsets follow the
	// JetStream sequence (the order the events were buffered in).
	lastSeq := map[string]uint64{}
	for _, m := range msgs {
		seq, err := strconv.ParseUint(testenv.KafkaHeader(m, messages.KafkaHeaderSequence), 10, 64)
		if err != nil {
			t.Fatalf("nats-sequence header: %v", err)
		}
		key := string(m.Key)
		if seq <= lastSeq[key] {
			t.Errorf("sensor %s: sequence %d after %d in Kafka", key, seq, lastSeq[key])
		}
		lastSeq[key] = seq
	}
	if len(lastSeq) != sensors {
		t.Errorf("events for %d sensors, want %d", len(lastSeq), sensors)
	}
}

// NATS down: tests finished meanwhile wait in the outbox and reach Kafka
// once the server is back on the same store directory.
func TestNATSDownOutboxWaits(t *testing.T) {
	s := newSystem(t)
	s.startAll()
	tok := s.login("alice", "alice-secret")
	first := acceptedIDs(t, s.submitMany(tok, 10, nil)) // the stream and consumer exist now
	testenv.ReadAll(t, s.kafka.Addr(), messages.DefaultKafkaTopic, 10)

	// Tests a crashed sensor process left processing; the sweeper will
	// find them while NATS is down.
	st := s.openStore(s.realDB)
	const n = 50
	var orphans []store.NewTest
	for i := 0; i < n; i++ {
		orphans = append(orphans, store.NewTest{
			ID: uuid.Must(uuid.NewV7()).String(), Owner: "alice", SensorType: "co2", SensorID: "orphan",
			Request: []byte(`{"sensor_type":"co2","sensor_id":"orphan","interval_ms":1000}`), AuthMode: messages.AuthModeOnline,
			LeaseUntil: time.Now().Add(-time.Minute),
		})
	}
	s.nats.Shutdown()
	if _, err := st.InsertTests(context.Background(), orphans); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyState(t, "orphans completed into the outbox while NATS is down", func() (bool, string) {
		c := s.counts(st)
		backlog, err := st.OutboxBacklog(context.Background())
		return c[messages.StatusCompleted] == n+10 && err == nil && backlog == n, fmt.Sprint(c, " backlog ", backlog, err)
	})

	s.nats.Start()
	accepted := map[string]bool{}
	for id := range first {
		accepted[id] = true
	}
	for _, o := range orphans {
		accepted[o.ID] = true
	}
	checkExactlyOnce(t, accepted, eventsByTest(t, testenv.ReadAll(t, s.kafka.Addr(), messages.DefaultKafkaTopic, n+10)))
	testenv.EventuallyState(t, "outbox empty", func() (bool, string) {
		b, err := st.OutboxBacklog(context.Background())
		return err == nil && b == 0, fmt.Sprint(b, err)
	})
}
