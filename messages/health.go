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
// started: the in-flight bound, the adaptive bound on submissions, and the
// submissions it sent again or could not settle.
type EdgeRequests struct {
	InFlight      int64 `json:"in_flight"`      // requests being served now
	MaxConcurrent int64 `json:"max_concurrent"` // the bound on InFlight
	Overloaded    int64 `json:"overloaded"`     // refused past the bound (503 overloaded)
	// SubmitLimit is the adaptive bound on SubmitInFlight, at most
	// MaxConcurrent: it falls while even the fastest submission of an
	// interval waited past the queue target, and rises back once none has
	// to. Without a target it stays at MaxConcurrent.
	SubmitLimit        int64   `json:"submit_limit"`
	SubmitInFlight     int64   `json:"submit_in_flight"`      // submissions being served now
	SubmitOverloaded   int64   `json:"submit_overloaded"`     // refused past SubmitLimit (503 overloaded; not in Overloaded)
	SubmitMinLatencyMS float64 `json:"submit_min_latency_ms"` // least latency of the submissions answered in the last interval judged
	QueueTargetMS      float64 `json:"queue_target_ms"`       // the queue target (0: no adaptive bound)
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
//
// It also carries what the dashboard (GET /ui/) shows of each instance and
// can ask no other way: the latest supervision decisions and breaker
// transitions, newest first (bounded rings kept where they happen), and
// the sensor role's flow counters.
type HealthStats struct {
	CircuitBreakers map[string]BreakerHealth `json:"circuit_breakers"`
	// Supervision is the role's latest supervision decisions (at most
	// supervise.RecentEvents), newest first.
	Supervision []SupervisionEvent `json:"supervision,omitempty"`
	// BreakerTransitions is the latest state changes of the role's
	// breakers, newest first.
	BreakerTransitions []BreakerTransition `json:"breaker_transitions,omitempty"`
	// Flow is the sensor role's counters (sensor only).
	Flow *SensorFlow `json:"flow,omitempty"`
}

// SupervisionEvent is one decision of a supervisor about a failed actor, as
// the log line "actor supervision" says it.
type SupervisionEvent struct {
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`     // the actor's path, e.g. auth/login-0
	Reason    string    `json:"reason"`    // the failure (a panic's value), at most 512 bytes
	Directive string    `json:"directive"` // resume, restart, stop or escalate
	Restarts  int       `json:"restarts"`  // restarts of this actor so far
}

// BreakerTransition is one state change of a circuit breaker.
type BreakerTransition struct {
	At      time.Time `json:"at"`
	Breaker string    `json:"breaker"` // e.g. bridge.kafka
	From    string    `json:"from"`    // closed, open or half-open
	To      string    `json:"to"`
}

// SensorFlow is a sensor process's flow since it started: counters of its
// submissions and completions, the gauges of its pipeline, and the
// histogram of its completion latency (acceptance to committed end).
type SensorFlow struct {
	Accepted uint64 `json:"accepted"` // submissions answered processing
	Refused  uint64 `json:"refused"`  // submissions refused, every code
	Ended    uint64 `json:"ended"`    // tests completed or failed
	// InFlight submissions not yet answered; Queued tests in the processor
	// pool or waiting for their completion to commit.
	InFlight int64 `json:"in_flight"`
	Queued   int64 `json:"queued"`
	// OutboxBacklog is the outbox's rows as last counted (-1: not counted).
	OutboxBacklog int64 `json:"outbox_backlog"`
	// CompletionLatency counts the ended tests by the time from their
	// acceptance to their committed end.
	CompletionLatency LatencyCounts `json:"completion_latency"`
}

// LatencyCounts is a histogram of durations: Counts[i] is how many took at
// most LatencyBound(i) and more than LatencyBound(i-1); the last entry
// counts the longer ones. Counts count since the process started.
type LatencyCounts struct {
	Counts []uint64 `json:"counts"`
}

// LatencyBuckets is the number of bounded buckets of a LatencyCounts
// (LatencyBound(LatencyBuckets-1) is about 16 s).
const LatencyBuckets = 17

// LatencyBound is the upper bound of bucket i of a LatencyCounts: 0.25 ms
// doubling.
func LatencyBound(i int) time.Duration { return 250 * time.Microsecond << i }
