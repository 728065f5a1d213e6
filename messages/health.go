package messages

import "time"

// Health statuses.
const (
	HealthOK       = "ok"
	HealthDegraded = "degraded"
	HealthUp       = "up"
	HealthDown     = "down"
)

// Breaker states, as gobreaker names them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// DependencyHealth is the state of one dependency of a role.
type DependencyHealth struct {
	Status    string     `json:"status"` // up or down
	LastError string     `json:"last_error,omitempty"`
	Since     *time.Time `json:"since,omitempty"` // when it entered this status
}

// BreakerHealth is the state of one circuit breaker.
type BreakerHealth struct {
	State                string `json:"state"` // closed, open or half-open
	Requests             uint32 `json:"requests"`
	TotalSuccesses       uint32 `json:"total_successes"`
	TotalFailures        uint32 `json:"total_failures"`
	ConsecutiveSuccesses uint32 `json:"consecutive_successes"`
	ConsecutiveFailures  uint32 `json:"consecutive_failures"`
}

// HealthReply is a role's answer on sensorhub.<role>.health.
type HealthReply struct {
	Role            string                      `json:"role"`
	Status          string                      `json:"status"` // ok or degraded (down when it does not answer)
	Instance        string                      `json:"instance,omitempty"`
	Dependencies    map[string]DependencyHealth `json:"dependencies"`
	CircuitBreakers map[string]BreakerHealth    `json:"circuit_breakers"`
	// Requests is the edge's own account of its requests (the edge's
	// entry only).
	Requests *EdgeRequests `json:"requests,omitempty"`
}

// EdgeRequests counts what the edge did with its requests since it
// started: the in-flight bound, and the submissions it sent again or
// could not settle.
type EdgeRequests struct {
	InFlight      int64 `json:"in_flight"`      // requests being served now
	MaxConcurrent int64 `json:"max_concurrent"` // the bound on InFlight
	Overloaded    int64 `json:"overloaded"`     // refused past the bound (503 overloaded)
	// SubmitRetries counts the extra sends of submissions whose answer was
	// lost; SubmitsRecovered the submissions that were answered after one.
	SubmitRetries    int64 `json:"submit_retries"`
	SubmitsRecovered int64 `json:"submits_recovered"`
	// OutcomeUnknown and SensorRefused count the submissions answered 503
	// outcome_unknown (sent, never answered) and sensor_unavailable (never
	// delivered: nothing stored).
	OutcomeUnknown int64 `json:"outcome_unknown"`
	SensorRefused  int64 `json:"sensor_refused"`
}

// EdgeHealth is GET /health: every role, and every breaker keyed
// "<role>.<dependency>" (the edge's own as "edge.<service>").
type EdgeHealth struct {
	Status          string                   `json:"status"` // ok or degraded
	Services        map[string]HealthReply   `json:"services"`
	CircuitBreakers map[string]BreakerHealth `json:"circuit_breakers"`
}

// HealthStats is the stats data of every role's health endpoint in its
// micro service's stats ($SRV.STATS.<service>, `nats micro stats`): the
// role's circuit breakers by name, as in its HealthReply, read from memory
// (no dependency is checked to answer it).
type HealthStats struct {
	CircuitBreakers map[string]BreakerHealth `json:"circuit_breakers"`
}
