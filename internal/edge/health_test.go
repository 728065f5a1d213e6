package edge

import (
	"encoding/json"
	"net/http"
	"testing"

	"sensorhub/messages"

	"sensorhub/internal/testenv"
)

func roleHealth(role, status string, breakers map[string]string) messages.HealthReply {
	h := messages.HealthReply{
		Role: role, Status: status,
		Dependencies:    map[string]messages.DependencyHealth{"database": {Status: messages.HealthUp}},
		CircuitBreakers: map[string]messages.BreakerHealth{},
	}
	for name, state := range breakers {
		h.CircuitBreakers[name] = messages.BreakerHealth{State: state}
	}
	return h
}

func TestHealthRoleDown(t *testing.T) {
	e := newEnv(t, testConfig())
	// auth is not running at all.
	e.stub(messages.RoleSensor, "health", replyJSON(roleHealth(messages.RoleSensor, messages.HealthOK,
		map[string]string{"sensor.database": messages.BreakerClosed, "sensor.auth": messages.BreakerClosed})))
	e.stub(messages.RoleBridge, "health", replyJSON(roleHealth(messages.RoleBridge, messages.HealthOK,
		map[string]string{"bridge.kafka": messages.BreakerClosed})))

	rec := e.do(http.MethodGet, "/health", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200 while the edge serves", rec.Code)
	}
	h := decodeBody[messages.EdgeHealth](t, rec)
	if h.Status != messages.HealthDegraded {
		t.Fatalf("status = %q, want degraded", h.Status)
	}
	if got := h.Services[messages.RoleAuth]; got.Status != messages.HealthDown || got.Role != messages.RoleAuth {
		t.Fatalf("auth = %+v, want down", got)
	}
	if got := h.Services[messages.RoleSensor].Status; got != messages.HealthOK {
		t.Fatalf("sensor = %q, want ok", got)
	}
	for _, name := range []string{"sensor.database", "sensor.auth", "bridge.kafka", "edge.auth", "edge.sensor", "edge.bridge"} {
		if b, ok := h.CircuitBreakers[name]; !ok || b.State != messages.BreakerClosed {
			t.Fatalf("breaker %s = %+v (present %v), want closed; all: %v", name, b, ok, h.CircuitBreakers)
		}
	}
	// The raw shape: `jq '.circuit_breakers'` works.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil || raw["circuit_breakers"] == nil || raw["services"] == nil {
		t.Fatalf("body %s lacks circuit_breakers or services", rec.Body)
	}
	// Health checks do not count against the edge's breakers.
	if got := e.srv.Breakers().Health()["edge.auth"]; got.Requests != 0 {
		t.Fatalf("edge.auth counted %d requests from /health", got.Requests)
	}
}

func TestHealthOK(t *testing.T) {
	e := newEnv(t, testConfig())
	for _, role := range messages.Roles {
		e.stub(role, "health", replyJSON(roleHealth(role, messages.HealthOK, map[string]string{role + ".dep": messages.BreakerClosed})))
	}
	h := decodeBody[messages.EdgeHealth](t, e.do(http.MethodGet, "/health", ""))
	if h.Status != messages.HealthOK || len(h.Services) != len(messages.Roles)+1 || len(h.CircuitBreakers) != len(messages.Roles)+3 {
		t.Fatalf("health = %+v, want ok with every role, the edge and 6 breakers", h)
	}
}

func TestHealthDegradedByBreaker(t *testing.T) {
	e := newEnv(t, testConfig())
	e.stub(messages.RoleAuth, "health", replyJSON(roleHealth(messages.RoleAuth, messages.HealthOK, nil)))
	e.stub(messages.RoleSensor, "health", replyJSON(roleHealth(messages.RoleSensor, messages.HealthOK,
		map[string]string{"database": messages.BreakerClosed}))) // not prefixed: the edge prefixes it
	e.stub(messages.RoleBridge, "health", replyJSON(roleHealth(messages.RoleBridge, messages.HealthOK,
		map[string]string{"bridge.kafka": messages.BreakerOpen})))
	h := decodeBody[messages.EdgeHealth](t, e.do(http.MethodGet, "/health", ""))
	if h.Status != messages.HealthDegraded {
		t.Fatalf("status = %q with bridge.kafka open, want degraded", h.Status)
	}
	if _, ok := h.CircuitBreakers["sensor.database"]; !ok {
		t.Fatalf("breakers = %v, want sensor.database", h.CircuitBreakers)
	}
}

func TestReadyzFollowsNATS(t *testing.T) {
	e := newEnv(t, testConfig())
	if rec := e.do(http.MethodGet, "/readyz", ""); rec.Code != http.StatusOK {
		t.Fatalf("readyz = %d, want 200", rec.Code)
	}
	e.nats.Shutdown()
	testenv.Eventually(t, "readyz to fail", func() bool {
		return e.do(http.MethodGet, "/readyz", "").Code == http.StatusServiceUnavailable
	})
	rec := e.do(http.MethodGet, "/readyz", "")
	envelope(t, rec, http.StatusServiceUnavailable, messages.CodeUnavailable)
	if want := `{"error":"nats disconnected","code":"unavailable"}`; rec.Body.String() != want {
		t.Fatalf("body = %s, want %s", rec.Body, want)
	}
	// Liveness and /health still answer: the edge itself is fine.
	if rec := e.do(http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK || rec.Body.String() != `{"status":"ok"}` {
		t.Fatalf("healthz = %d %s", rec.Code, rec.Body)
	}
	rec = e.do(http.MethodGet, "/health", "")
	if h := decodeBody[messages.EdgeHealth](t, rec); rec.Code != 200 || h.Status != messages.HealthDegraded ||
		h.Services[messages.RoleEdge].Dependencies["nats"].Status != messages.HealthDown {
		t.Fatalf("health while NATS is down = %d %s", rec.Code, rec.Body)
	}
	// Requests fail fast with the service's unavailable answer.
	envelope(t, e.do(http.MethodGet, "/sensor/types", ""), http.StatusServiceUnavailable, messages.CodeSensorUnavailable)

	e.nats.Start()
	testenv.Eventually(t, "readyz to recover", func() bool {
		return e.do(http.MethodGet, "/readyz", "").Code == http.StatusOK
	})
}
