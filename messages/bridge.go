package messages

import "time"

// BridgeStats is the bridge's report (sensorhub.bridge.stats, GET /kafka/stats).
type BridgeStats struct {
	Queued         uint64     `json:"queued"`     // events waiting in JetStream: pending + unacked
	Successful     uint64     `json:"successful"` // events Kafka acknowledged
	Failed         uint64     `json:"failed"`     // failed write attempts (retried)
	DeadLettered   uint64     `json:"dead_lettered"`
	Breaker        string     `json:"breaker"` // closed, open or half-open
	KafkaReachable bool       `json:"kafka_reachable"`
	LastError      string     `json:"last_error,omitempty"`
	LastErrorAt    *time.Time `json:"last_error_at,omitempty"`
	// OutboxBacklog is the sensor role's count of events not yet in JetStream
	// (-1 when the sensor role did not answer).
	OutboxBacklog int64 `json:"outbox_backlog"`
}

// OutboxStats is the sensor role's outbox report (sensorhub.sensor.outbox).
type OutboxStats struct {
	Backlog int64 `json:"backlog"`
}

// ChaosPanic asks a role to panic one of its actors (only with --chaos).
type ChaosPanic struct {
	Actor string `json:"actor"`
}

// DecodeChaosPanic parses a chaos request.
func DecodeChaosPanic(data []byte) (ChaosPanic, error) {
	var r ChaosPanic
	if err := decodeStrict(data, &r, false); err != nil {
		return ChaosPanic{}, err
	}
	if r.Actor == "" || len(r.Actor) > 64 {
		return ChaosPanic{}, &Error{Code: CodeBadRequest, Message: "actor is required"}
	}
	return r, nil
}

// ChaosReply confirms that the actor was sent a panic.
type ChaosReply struct {
	Actor    string `json:"actor"`
	Panicked bool   `json:"panicked"`
}

// Empty is the body of requests that carry nothing ({}).
type Empty struct{}
