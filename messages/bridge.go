package messages

import "time"

// BridgeStats is the report of the whole bridge tier
// (sensorhub.bridge.stats, GET /kafka/stats): every bridge process that
// answered, and totals over them. Whichever bridge receives the request
// asks every instance (the micro discovery subject $SRV.STATS of the
// service), so the answer does not depend on which one answers.
type BridgeStats struct {
	// Queued is the events waiting in JetStream for any bridge: the
	// durable consumer's pending plus delivered and not yet acknowledged.
	Queued uint64 `json:"queued"`
	// Successful is the records the Kafka topic holds (Kafka's own
	// offsets: end minus start, summed over the partitions), so it
	// survives a bridge restart and counts a redelivered event written
	// twice twice, as Kafka holds it. SuccessfulFrom says where it came
	// from when Kafka did not answer.
	Successful     uint64 `json:"successful"`
	SuccessfulFrom string `json:"successful_from"` // CountKafka, CountLastKnown or CountInstances
	// Failed is the failed write attempts (retried), summed over the
	// instances since each started.
	Failed uint64 `json:"failed"`
	// DeadLettered is the events in SENSOR_EVENTS_DLQ (the sum over the
	// instances when JetStream did not answer).
	DeadLettered uint64 `json:"dead_lettered"`
	// Breaker is the worst of the instances' breakers (open, half-open,
	// closed); KafkaReachable is true when every instance reaches Kafka.
	Breaker        string `json:"breaker"`
	KafkaReachable bool   `json:"kafka_reachable"`
	// LastError is the latest error of any instance.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// OutboxBacklog is the sensor role's count of events not yet in JetStream
	// (-1 when the sensor role did not answer).
	OutboxBacklog int64 `json:"outbox_backlog"`
	// Instances is every bridge process that answered within the
	// deadline, by id.
	Instances []BridgeInstance `json:"instances"`
}

// Where BridgeStats.Successful comes from.
const (
	// CountKafka: Kafka's offsets, asked for this report.
	CountKafka = "kafka"
	// CountLastKnown: Kafka did not answer; the last count the answering
	// bridge got from it.
	CountLastKnown = "last_known"
	// CountInstances: Kafka has not answered the answering bridge since it
	// started; the sum of the instances' counts since their start.
	CountInstances = "instances"
)

// BridgeInstance is one bridge process's own figures, since it started
// (BridgeStats.Instances; the data of the stats endpoint in
// `nats micro stats sensorhub-bridge`).
type BridgeInstance struct {
	ID             string `json:"id"` // the micro service instance id
	Breaker        string `json:"breaker"`
	KafkaReachable bool   `json:"kafka_reachable"`
	// Queued is the events this instance holds: fetched from JetStream,
	// not yet acknowledged.
	Queued       uint64     `json:"queued"`
	Successful   uint64     `json:"successful"` // events Kafka acknowledged
	Failed       uint64     `json:"failed"`
	DeadLettered uint64     `json:"dead_lettered"`
	LastError    string     `json:"last_error,omitempty"`
	LastErrorAt  *time.Time `json:"last_error_at,omitempty"`
	Started      time.Time  `json:"started"`
}

// OutboxStats is the sensor role's outbox report (sensorhub.sensor.outbox).
type OutboxStats struct {
	Backlog int64 `json:"backlog"`
}

// Empty is the body of requests that carry nothing ({}).
type Empty struct{}
