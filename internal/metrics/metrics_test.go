package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"sensorhub/internal/breaker"
	"sensorhub/internal/metrics"
	"sensorhub/internal/metrics/metricstest"
	"sensorhub/internal/natsx"
)

func scrape(t *testing.T, reg *metrics.Registry) (metricstest.Samples, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", metrics.Path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	s, err := metricstest.Parse(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return s, rec.Body.Bytes()
}

func TestRouteCountsByCode(t *testing.T) {
	reg := metrics.New("test")
	h := reg.HTTP("edge")
	rt := h.Route("POST /x/{id}")
	for range 3 {
		rt.Observe(202, time.Millisecond)
	}
	rt.Observe(503, 2*time.Second)
	rt.Observe(999, time.Millisecond) // out of the table's range: still counted
	s, _ := scrape(t, reg)
	for code, want := range map[string]float64{"202": 3, "503": 1, "999": 1} {
		if got := s.Value("sensorhub_http_requests_total", map[string]string{"role": "edge", "route": "POST /x/{id}", "code": code}); got != want {
			t.Errorf("code %s: %v, want %v", code, got, want)
		}
	}
	if got := s.Value("sensorhub_http_request_duration_seconds_count", map[string]string{"role": "edge", "route": "POST /x/{id}"}); got != 5 {
		t.Errorf("latency observations %v, want 5", got)
	}
	if got := s.Value("sensorhub_http_request_duration_seconds_bucket", map[string]string{"role": "edge", "route": "POST /x/{id}", "le": "1.024"}); got != 4 {
		t.Errorf("observations within 1.024s: %v, want 4", got)
	}
}

// An observed request is one Inc and one Observe: no allocation once its
// route and code, or its subject, have been seen.
func TestHotPathDoesNotAllocate(t *testing.T) {
	reg := metrics.New("test")
	rt := reg.HTTP("edge").Route("GET /y")
	rt.Observe(200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { rt.Observe(200, time.Millisecond) }); n != 0 {
		t.Errorf("Route.Observe allocates %v per call", n)
	}
	n := reg.NATS("edge")
	n.ObserveRequest("sensorhub.sensor.submit", natsx.OutcomeOK, time.Millisecond)
	if a := testing.AllocsPerRun(1000, func() { n.ObserveRequest("sensorhub.sensor.submit", natsx.OutcomeOK, time.Millisecond) }); a != 0 {
		t.Errorf("NATS.ObserveRequest allocates %v per call", a)
	}
}

// Subjects past the bound share one "other" label: a caller that puts ids
// in subjects cannot grow the series without end.
func TestNATSSubjectsAreBounded(t *testing.T) {
	reg := metrics.New("test")
	n := reg.NATS("sensor")
	for i := range 200 {
		n.ObserveRequest(fmt.Sprintf("s.%d", i), natsx.OutcomeTimeout, time.Millisecond)
	}
	n.ObserveRequest("s.0", natsx.OutcomeOK, time.Millisecond)
	s, _ := scrape(t, reg)
	subjects := map[string]bool{}
	for k := range s {
		if name, labels := splitKey(k); name == "sensorhub_nats_request_duration_seconds_count" {
			subjects[labels] = true
		}
	}
	if len(subjects) != 65 {
		t.Errorf("%d subjects labelled, want 64 and other", len(subjects))
	}
	if got := s.Value("sensorhub_nats_requests_total", map[string]string{"role": "sensor", "subject": metrics.SubjectOther, "outcome": "timeout"}); got != 200-64 {
		t.Errorf("other timeouts %v, want %d", got, 200-64)
	}
	if got := s.Value("sensorhub_nats_requests_total", map[string]string{"role": "sensor", "subject": "s.0", "outcome": "ok"}); got != 1 {
		t.Errorf("s.0 ok %v, want 1", got)
	}
}

func splitKey(k string) (string, string) {
	for i := range k {
		if k[i] == '{' {
			return k[:i], k[i:]
		}
	}
	return k, ""
}

// The breaker gauge is one-hot and follows the breaker at scrape time.
func TestBreakerStateIsOneHot(t *testing.T) {
	reg := metrics.New("test")
	set := &breaker.Set{}
	b := set.Add(breaker.New("bridge.kafka", breaker.Config{Failures: 1, OpenFor: time.Hour}, nil, slog.New(slog.DiscardHandler)))
	reg.Breakers("bridge", set, set) // twice: reported once
	state := func(s metricstest.Samples, st string) float64 {
		return s.Value("sensorhub_circuit_breaker_state", map[string]string{"role": "bridge", "breaker": "bridge.kafka", "state": st})
	}
	s, _ := scrape(t, reg)
	if state(s, "closed") != 1 || state(s, "open") != 0 || state(s, "half-open") != 0 {
		t.Fatalf("new breaker: closed %v open %v half-open %v", state(s, "closed"), state(s, "open"), state(s, "half-open"))
	}
	_ = b.Do(context.Background(), func(context.Context) error { return errors.New("down") })
	s, _ = scrape(t, reg)
	if state(s, "closed") != 0 || state(s, "open") != 1 {
		t.Fatalf("opened breaker: closed %v open %v", state(s, "closed"), state(s, "open"))
	}
	if got := s.Value("sensorhub_circuit_breaker_transitions_total", map[string]string{"role": "bridge", "breaker": "bridge.kafka", "from": "closed", "to": "open"}); got != 1 {
		t.Fatalf("transitions %v, want 1", got)
	}
}

// Two roles in one registry (dev) do not collide, and the whole output
// passes promtool.
func TestRolesShareARegistry(t *testing.T) {
	reg := metrics.New("test")
	for _, role := range []string{"auth", "sensor"} {
		reg.NATS(role).ObserveRequest("x.y", natsx.OutcomeOK, time.Millisecond)
		reg.Breakers(role, &breaker.Set{})
	}
	reg.Sensor("sensor", func() metrics.SensorCounts {
		return metrics.SensorCounts{Accepted: 5, Refused: map[string]uint64{"overloaded": 2}, OutboxBacklog: -1}
	})
	reg.Bridge("bridge", func() metrics.BridgeCounts { return metrics.BridgeCounts{Successful: 4} },
		func(context.Context) (metrics.ConsumerLag, error) {
			return metrics.ConsumerLag{}, errors.New("jetstream down")
		})
	s, body := scrape(t, reg)
	if s.Value("sensorhub_nats_requests_total", map[string]string{"role": "auth", "subject": "x.y", "outcome": "ok"}) != 1 ||
		s.Value("sensorhub_nats_requests_total", map[string]string{"role": "sensor", "subject": "x.y", "outcome": "ok"}) != 1 {
		t.Error("per-role NATS counts collide")
	}
	if s.Value("sensorhub_tests_refused_total", map[string]string{"role": "sensor", "code": "overloaded"}) != 2 {
		t.Error("refusals by code missing")
	}
	if _, ok := s.Get("sensorhub_outbox_backlog", map[string]string{"role": "sensor"}); ok {
		t.Error("an uncounted outbox backlog is reported")
	}
	if _, ok := s.Get("sensorhub_bridge_consumer_pending", map[string]string{"role": "bridge"}); ok {
		t.Error("a lag that could not be read is reported")
	}
	if s.Value("sensorhub_bridge_events_total", map[string]string{"role": "bridge", "result": "successful"}) != 4 {
		t.Error("bridge counts missing while the lag fails")
	}
	metricstest.Promtool(t, t.Context(), "a shared registry", body)
}

// A role stopped and started in one process (dev --chaos) registers its
// collectors again after Unregister, counting from zero like a new
// process; the other roles' series are untouched.
func TestUnregisterThenRegisterAgain(t *testing.T) {
	reg := metrics.New("test")
	for _, role := range []string{"auth", "sensor"} {
		reg.NATS(role).ObserveRequest("x.y", natsx.OutcomeOK, time.Millisecond)
		reg.Breakers(role, &breaker.Set{})
	}
	reg.Unregister("sensor")
	s, _ := scrape(t, reg)
	if _, ok := s.Get("sensorhub_nats_requests_total", map[string]string{"role": "sensor", "subject": "x.y", "outcome": "ok"}); ok {
		t.Error("a stopped role's series are still served")
	}
	if s.Value("sensorhub_nats_requests_total", map[string]string{"role": "auth", "subject": "x.y", "outcome": "ok"}) != 1 {
		t.Error("Unregister of sensor took auth's series")
	}
	// Registering the same collectors again must not panic.
	n := reg.NATS("sensor")
	reg.Breakers("sensor", &breaker.Set{})
	n.ObserveRequest("x.y", natsx.OutcomeOK, time.Millisecond)
	s, _ = scrape(t, reg)
	if s.Value("sensorhub_nats_requests_total", map[string]string{"role": "sensor", "subject": "x.y", "outcome": "ok"}) != 1 {
		t.Error("the restarted role's series are not served from zero")
	}
}

// What a request pays: one route observation, one NATS observation.
func BenchmarkRouteObserve(b *testing.B) {
	rt := metrics.New("test").HTTP("edge").Route("POST /test/sensor/{sensor_type}")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rt.Observe(202, time.Millisecond)
		}
	})
}

func BenchmarkNATSObserve(b *testing.B) {
	n := metrics.New("test").NATS("edge")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.ObserveRequest("sensorhub.sensor.submit", natsx.OutcomeOK, time.Millisecond)
		}
	})
}
