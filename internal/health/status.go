package health

import "sensorhub/messages"

// Status is the one rule for a role's status: "ok" when every dependency is
// up and no breaker is open, "degraded" otherwise (see the package doc for
// why an open breaker counts and a half-open one does not).
func Status(deps map[string]messages.DependencyHealth, breakers map[string]messages.BreakerHealth) string {
	for _, d := range deps {
		if d.Status != messages.HealthUp {
			return messages.HealthDegraded
		}
	}
	for _, b := range breakers {
		if b.State == messages.BreakerOpen {
			return messages.HealthDegraded
		}
	}
	return messages.HealthOK
}

// Summary is the rule applied to a whole system (GET /health): "ok" when
// every role says ok and, by Status, is ok (its dependencies up and none of
// its breakers open, whatever it claims), "degraded" otherwise. A role that
// does not answer is "down", which is not ok.
func Summary(roles ...messages.HealthReply) string {
	for _, r := range roles {
		if r.Status != messages.HealthOK || Status(r.Dependencies, r.CircuitBreakers) != messages.HealthOK {
			return messages.HealthDegraded
		}
	}
	return messages.HealthOK
}
