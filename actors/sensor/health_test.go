package sensor

import (
	"testing"
	"time"

	"sensorhub/internal/breaker"
	"sensorhub/messages"
)

// TestHealthFollowsTheRule: the report pings the database directly, so a
// database that answers again shows up while its breaker is still open, and
// the role stays degraded until the breaker lets calls through.
func TestHealthFollowsTheRule(t *testing.T) {
	h := newHarness(t)
	st := &flakyStore{Store: openSQLite(t)}
	svc := h.start(st, func(c *Config) {
		c.DatabaseBreaker = breaker.Config{Failures: 1, OpenFor: time.Hour, CallTimeout: time.Second}
	})
	if hr := svc.Health(t.Context()); hr.Dependencies["database"].Status != messages.HealthUp ||
		hr.CircuitBreakers["sensor.database"].State != messages.BreakerClosed {
		t.Fatalf("at start: %+v", hr)
	}

	st.down.Store(true)
	_, err := h.submit(tokAlice, messages.SubmitTest{SensorType: "light"}, nil)
	wantCode(t, err, messages.CodeDatabaseUnavailable)
	if state := svc.data.breaker.State(); state != messages.BreakerOpen {
		t.Fatalf("breaker %s after a failure, want open", state)
	}
	hr := svc.Health(t.Context())
	if hr.Status != messages.HealthDegraded || hr.Dependencies["database"].Status != messages.HealthDown ||
		hr.Dependencies["database"].LastError == "" {
		t.Fatalf("database down: %+v", hr)
	}

	st.down.Store(false)
	hr = svc.Health(t.Context())
	if hr.Status != messages.HealthDegraded || hr.Dependencies["database"].Status != messages.HealthUp ||
		hr.CircuitBreakers["sensor.database"].State != messages.BreakerOpen {
		t.Fatalf("database back, breaker open: %+v, want degraded", hr)
	}
}
