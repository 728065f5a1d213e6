package edge

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"sensorhub/internal/metrics"
	"sensorhub/internal/metrics/metricstest"
	"sensorhub/messages"
)

func withMetrics() (Config, *metrics.Registry) {
	reg := metrics.New("test")
	cfg := testConfig()
	cfg.Metrics, cfg.MetricsHandler = reg.HTTP(messages.RoleEdge), reg.Handler()
	return cfg, reg
}

// Every answer is counted under its route pattern and status, requests
// that match no route under "unmatched", and GET /metrics serves them.
func TestRequestsAreCountedByRouteAndCode(t *testing.T) {
	cfg, _ := withMetrics()
	e := newEnv(t, cfg)
	for range 2 {
		if rec := e.do(http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK {
			t.Fatalf("healthz: %d", rec.Code)
		}
	}
	if rec := e.do(http.MethodGet, "/no/such/route", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("unknown route: %d", rec.Code)
	}
	if rec := e.do(http.MethodGet, "/test/0190c0ff-ee00-7000-8000-000000000000", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("result without a token: %d", rec.Code)
	}
	rec := e.do(http.MethodGet, "/metrics", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	s, err := metricstest.Parse(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		route, code string
		want        float64
	}{
		{"GET /healthz", "200", 2},
		{metrics.RouteUnmatched, "404", 1},
		{"GET /test/{test_id}", "401", 1}, // the pattern, not the id
	} {
		if got := s.Value("sensorhub_http_requests_total", map[string]string{"role": "edge", "route": c.route, "code": c.code}); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.route, c.code, got, c.want)
		}
	}
	if got := s.Sum("sensorhub_http_requests_total", nil); got != 4 {
		t.Errorf("%v requests counted before the scrape, want 4", got)
	}
	if got := s.Value("sensorhub_http_request_duration_seconds_count", map[string]string{"role": "edge", "route": "GET /healthz"}); got != 2 {
		t.Errorf("healthz latency observations: %v, want 2", got)
	}
}

// Without metrics configured the edge has no /metrics route.
func TestNoMetricsRouteWithoutMetrics(t *testing.T) {
	e := newEnv(t, testConfig())
	envelope(t, e.do(http.MethodGet, "/metrics", ""), http.StatusNotFound, messages.CodeNotFound)
}

// The middleware's cost per request: GET /healthz through the whole
// handler, without and with metrics.
func BenchmarkHandlerMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		cfg := testConfig()
		if on {
			name = "on"
			cfg, _ = withMetrics()
		}
		b.Run(name, func(b *testing.B) {
			h := newEnv(b, cfg).srv.Handler()
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
