package health_test

import (
	"testing"

	"sensorhub/internal/health"
	"sensorhub/messages"
)

func TestStatus(t *testing.T) {
	up := messages.DependencyHealth{Status: messages.HealthUp}
	down := messages.DependencyHealth{Status: messages.HealthDown, LastError: "refused"}
	br := func(state string) messages.BreakerHealth { return messages.BreakerHealth{State: state} }
	tests := []struct {
		name     string
		deps     map[string]messages.DependencyHealth
		breakers map[string]messages.BreakerHealth
		want     string
	}{
		{"nothing tracked", nil, nil, messages.HealthOK},
		{"all up, all closed", map[string]messages.DependencyHealth{"database": up, "nats": up},
			map[string]messages.BreakerHealth{"x.database": br(messages.BreakerClosed)}, messages.HealthOK},
		{"one dependency down", map[string]messages.DependencyHealth{"database": down, "nats": up},
			map[string]messages.BreakerHealth{"x.database": br(messages.BreakerClosed)}, messages.HealthDegraded},
		{"unknown dependency status", map[string]messages.DependencyHealth{"database": {}}, nil, messages.HealthDegraded},
		{"breaker open, dependency back up", map[string]messages.DependencyHealth{"database": up},
			map[string]messages.BreakerHealth{"x.database": br(messages.BreakerOpen)}, messages.HealthDegraded},
		// Half-open lets the next call through as the probe: not degraded by itself.
		{"breaker half-open", map[string]messages.DependencyHealth{"database": up},
			map[string]messages.BreakerHealth{"x.database": br(messages.BreakerHalfOpen)}, messages.HealthOK},
		{"half-open, dependency down", map[string]messages.DependencyHealth{"database": down},
			map[string]messages.BreakerHealth{"x.database": br(messages.BreakerHalfOpen)}, messages.HealthDegraded},
		{"down and open", map[string]messages.DependencyHealth{"database": down},
			map[string]messages.BreakerHealth{"x.database": br(messages.BreakerOpen)}, messages.HealthDegraded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := health.Status(tt.deps, tt.breakers); got != tt.want {
				t.Errorf("Status = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	ok := messages.HealthReply{Role: messages.RoleAuth, Status: messages.HealthOK,
		Dependencies: map[string]messages.DependencyHealth{"database": {Status: messages.HealthUp}}}
	degraded := ok
	degraded.Status = messages.HealthDegraded
	down := messages.HealthReply{Role: messages.RoleSensor, Status: messages.HealthDown}
	// A role that claims ok with an open breaker is held to the rule.
	claimsOK := messages.HealthReply{Role: messages.RoleBridge, Status: messages.HealthOK,
		CircuitBreakers: map[string]messages.BreakerHealth{"bridge.kafka": {State: messages.BreakerOpen}}}
	tests := []struct {
		name  string
		roles []messages.HealthReply
		want  string
	}{
		{"no roles", nil, messages.HealthOK},
		{"all ok", []messages.HealthReply{ok, ok}, messages.HealthOK},
		{"one degraded", []messages.HealthReply{ok, degraded}, messages.HealthDegraded},
		{"one not answering", []messages.HealthReply{ok, down}, messages.HealthDegraded},
		{"ok with an open breaker", []messages.HealthReply{ok, claimsOK}, messages.HealthDegraded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := health.Summary(tt.roles...); got != tt.want {
				t.Errorf("Summary = %q, want %q", got, tt.want)
			}
		})
	}
}
