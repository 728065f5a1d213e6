package dashboard

import (
	"time"

	"sensorhub/messages"
)

// State is one sample of the system as the page shows it (GET /ui/state,
// and each "state" event of GET /ui/events).
type State struct {
	At time.Time `json:"at"`
	// Edge is the serving edge's own NATS connection: when it is down the
	// page shows a banner, and the rest of State is the last known.
	Edge EdgeConn `json:"edge"`
	// Status is GET /health's: ok or degraded.
	Status string `json:"status"`
	// Roles are auth, sensor, bridge and edge, in that order.
	Roles []Role `json:"roles"`
	// Breakers is every circuit breaker, sorted by name.
	Breakers []Breaker `json:"breakers"`
	// Flow is this sample's point of the charts.
	Flow Point `json:"flow"`
	// Supervision and Transitions are the latest supervision events and
	// breaker state changes of every instance, newest first.
	Supervision []Supervision                `json:"supervision"`
	Transitions []messages.BreakerTransition `json:"transitions"`
	// Latency is over the last LatencyWindow.
	Latency Latency `json:"latency"`
}

// EdgeConn is the serving edge's NATS connection.
type EdgeConn struct {
	NATSConnected bool   `json:"nats_connected"`
	NATSStatus    string `json:"nats_status"` // CONNECTED, RECONNECTING, ...
	// Stale is set while the edge has no NATS: the roles and breakers shown
	// are those of the last sample that reached them.
	Stale bool `json:"stale,omitempty"`
}

// Role is one role and its instances.
type Role struct {
	Name string `json:"name"`
	// Status is up, degraded or down: up when its health says ok, down
	// when no instance answers.
	Status       string                               `json:"status"`
	Instances    []Instance                           `json:"instances"`
	Dependencies map[string]messages.DependencyHealth `json:"dependencies"`
}

// Instance is one process of a role, as micro discovery ($SRV.STATS) finds
// it (the edge: the one serving the page).
type Instance struct {
	ID      string    `json:"id"`
	Version string    `json:"version,omitempty"`
	Started time.Time `json:"started,omitzero"`
	// Status is up, or degraded while one of its breakers is open.
	Status string `json:"status"`
}

// Breaker is one circuit breaker's state and counts.
type Breaker struct {
	Name string `json:"name"`
	messages.BreakerHealth
}

// Supervision is a supervision event with the role it happened in.
type Supervision struct {
	Role string `json:"role"`
	messages.SupervisionEvent
}

// Point is one sample of the flow. A figure that could not be read this
// time is null (a gap in its chart).
type Point struct {
	At time.Time `json:"at"`
	// AcceptedPerSec and RefusedPerSec: submissions the sensor role
	// answered processing, and refused, per second since the last sample.
	AcceptedPerSec *float64 `json:"accepted_per_sec"`
	RefusedPerSec  *float64 `json:"refused_per_sec"`
	// InFlight submissions not yet answered; Queued tests in the processor
	// pools or waiting for their completion to commit.
	InFlight *int64 `json:"in_flight"`
	Queued   *int64 `json:"queued"`
	// OutboxBacklog is events not yet in JetStream; EventsPending events in
	// SENSOR_EVENTS not yet acknowledged by a bridge.
	OutboxBacklog *int64  `json:"outbox_backlog"`
	EventsPending *uint64 `json:"events_pending"`
	// KafkaPerSec is events Kafka acknowledged per second; DeadLetters the
	// events in SENSOR_EVENTS_DLQ.
	KafkaPerSec *float64 `json:"kafka_per_sec"`
	DeadLetters *uint64  `json:"dead_letters"`
}

// Latency is the acceptance latency (measured by the edge: request in to
// 202 out) and the completion latency (measured by the sensor role:
// acceptance to the committed end) over the last LatencyWindow.
type Latency struct {
	WindowSeconds int         `json:"window_seconds"`
	Acceptance    Percentiles `json:"acceptance"`
	Completion    Percentiles `json:"completion"`
}

// Percentiles of a latency, in milliseconds (bucket estimates).
type Percentiles struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
}

// Snapshot is GET /ui/state and the first event of a stream: the latest
// state and the history of the flow, oldest first.
type Snapshot struct {
	State   *State  `json:"state"`
	History []Point `json:"history"`
}
