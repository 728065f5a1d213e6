package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// Defaults of Config.
const (
	DefaultBatchSize       = 500
	DefaultAckWait         = 30 * time.Second
	DefaultMaxMessageBytes = 1_000_000
	DefaultWriteTimeout    = 5 * time.Second
	DefaultKafkaCallTime   = 10 * time.Second
	DefaultFetchWait       = time.Second
	DefaultProbeInterval   = 10 * time.Second
)

// BreakerName is the name of the bridge's Kafka breaker in health reports.
const BreakerName = "bridge.kafka"

// Config configures a bridge. Zero fields take the defaults.
type Config struct {
	Subjects messages.Subjects
	// Brokers are the Kafka bootstrap addresses (host:port); required.
	Brokers []string
	// Topic is the Kafka topic (default messages.DefaultKafkaTopic).
	Topic string
	// TLS turns on TLS to the brokers (default off: plain TCP). The files
	// are read at Start; a bad one fails Start.
	TLS TLSConfig
	// SASL authenticates the bridge to the brokers (default none). The
	// writer and the probe authenticate alike; a refused login counts
	// against the breaker like an unreachable broker, since no event can
	// be written until it is fixed.
	SASL SASLConfig
	// BatchSize is the most events fetched from JetStream and handed to one
	// WriteMessages call (default 500).
	BatchSize int
	// MaxAckPending bounds the events delivered to all bridges and not yet
	// acknowledged (default 10 x BatchSize). It caps what a crashed bridge
	// leaves waiting for AckWait.
	MaxAckPending int
	// MaxMessageBytes is the largest Kafka record the bridge sends (default
	// 1,000,000, under Kafka's default message.max.bytes). A bigger event
	// is dead-lettered rather than retried forever.
	MaxMessageBytes int
	// Breaker tunes the Kafka breaker (BreakerName). Its CallTimeout bounds
	// one WriteMessages call (default 10s); OpenFor is also the pause
	// between probes while Kafka is down.
	Breaker breaker.Config
	// WriteTimeout bounds each produce request of the Kafka writer
	// (default 5s, and at most half of Breaker.CallTimeout).
	WriteTimeout time.Duration
	// Stream sizes SENSOR_EVENTS and SENSOR_EVENTS_DLQ (see natsx.StreamConfig).
	Stream natsx.StreamConfig
	// AckWait is how long JetStream waits for an ack before redelivering
	// (default 30s). It must exceed the worst Kafka write, so at least twice
	// Breaker.CallTimeout: the bridge refreshes it with InProgress only
	// between writes.
	AckWait time.Duration
	// FetchWait bounds a wait for new events when none are pending
	// (default 1s): also how quickly an idle bridge notices Stop.
	FetchWait time.Duration
	// ProbeInterval is how often an idle bridge checks that Kafka answers,
	// so health is current without traffic (default 10s).
	ProbeInterval time.Duration
	// Logger receives the bridge's logs (default slog.Default()).
	Logger *slog.Logger
	// Tracer, when set, makes a producer span per event written to Kafka,
	// continuing the trace of the event's traceparent header, and writes
	// the span's traceparent into the record's headers. Events without
	// one (published untraced) get neither. nil: tracing off, no tracing
	// work.
	Tracer *tracing.Tracer
	// LogStacks adds panic stacks to supervision log lines.
	LogStacks bool
	// OnGiveUp runs when the relay keeps crashing and its supervisor gives
	// up: the process should log it and exit non-zero.
	OnGiveUp func(error)
}

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = messages.DefaultKafkaTopic
	}
	c.SASL.setDefaults()
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 10 * c.BatchSize
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Breaker.CallTimeout <= 0 {
		c.Breaker.CallTimeout = DefaultKafkaCallTime
	}
	if c.Breaker.OpenFor <= 0 {
		// Also the relay's pause between probes: spelled out here (the
		// breaker package applies the same default) because the relay
		// paces itself by it.
		c.Breaker.OpenFor = 5 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.WriteTimeout > c.Breaker.CallTimeout/2 {
		// The writer tries twice; both tries must fit in one guarded call.
		c.WriteTimeout = c.Breaker.CallTimeout / 2
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.FetchWait <= 0 {
		c.FetchWait = DefaultFetchWait
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration the bridge cannot run with.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers"))
	}
	if c.MaxAckPending < c.BatchSize {
		errs = append(errs, fmt.Errorf("max ack pending %d below batch size %d", c.MaxAckPending, c.BatchSize))
	}
	if c.AckWait < 2*c.Breaker.CallTimeout {
		errs = append(errs, fmt.Errorf("ack wait %s must be at least twice the Kafka call timeout %s", c.AckWait, c.Breaker.CallTimeout))
	}
	if err := c.TLS.files().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("kafka %w", err))
	}
	errs = append(errs, c.SASL.validate()...)
	if len(errs) > 0 {
		return fmt.Errorf("bridge config: %w", errors.Join(errs...))
	}
	return nil
}
