package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// chunkBytes bounds the records of one WriteMessages call. It stays under
// Kafka's default message.max.bytes (1 MiB + 12) so that each partition's
// share of a call is one produce request the broker accepts: then all the
// records of one key in a call succeed or fail together, and a failure can
// never leave a later record of that key written ahead of an earlier one.
const chunkBytes = 900 << 10

// writerBatchBytes is the writer's BatchBytes: above any record we send
// (kafka-go refuses a whole call when one record exceeds it) and above
// chunkBytes (so a call's share of a partition is never split).
func writerBatchBytes(cfg *Config) int64 {
	b := int64(cfg.MaxMessageBytes) + 64<<10
	if b < 1<<20 {
		b = 1 << 20
	}
	return b
}

func newTransport(ctx context.Context, cfg *Config, auth kafkaAuth) *kafka.Transport {
	return &kafka.Transport{
		// Covers the TLS handshake and the SASL exchange too.
		DialTimeout: 2 * time.Second,
		IdleTimeout: 30 * time.Second,
		// Metadata is refreshed at most this often; a moved partition
		// leader costs at most one failed write.
		MetadataTTL:    5 * time.Second,
		MetadataTopics: []string{cfg.Topic},
		ClientID:       "sensorhub-bridge",
		TLS:            auth.tls,
		SASL:           auth.sasl,
		// Ends the transport's own goroutines when the bridge stops.
		Context: ctx,
	}
}

func newWriter(cfg *Config, transport *kafka.Transport, log *slog.Logger) *kafka.Writer {
	return &kafka.Writer{
		Addr:  kafka.TCP(cfg.Brokers...),
		Topic: cfg.Topic,
		// Same key, same partition: one sensor's events keep their order.
		Balancer: &kafka.Hash{},
		// The zero value is RequireNone (fire and forget).
		RequiredAcks: kafka.RequireAll,
		Async:        false,
		// One quick retry inside the writer covers a moved leader; longer
		// outages are the relay's business (backoff, breaker, InProgress).
		MaxAttempts:     2,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 250 * time.Millisecond,
		// A call carries at most BatchSize records, so a partition's share
		// fills no more than one writer batch, and BatchTimeout only delays
		// the partitions whose share is not full, by a few milliseconds.
		BatchSize:    cfg.BatchSize,
		BatchBytes:   writerBatchBytes(cfg),
		BatchTimeout: 2 * time.Millisecond,
		WriteTimeout: cfg.WriteTimeout,
		ReadTimeout:  cfg.WriteTimeout,
		Transport:    transport,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			log.Debug("kafka writer: " + fmt.Sprintf(format, args...))
		}),
	}
}

// closeWriter closes w within timeout: kafka-go's Close waits for batches
// in flight and can hang on a dead broker.
func closeWriter(w *kafka.Writer, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- w.Close() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("close kafka writer: %w", err)
		}
		return nil
	case <-time.After(timeout):
		// The goroutine ends once the writer's produce requests time out
		// (WriteTimeout); nothing more can be done for it here.
		return fmt.Errorf("close kafka writer: not closed within %s", timeout)
	}
}

// recordSize is an upper bound of the size kafka-go counts for m: key,
// value and headers plus the fixed per-record fields.
func recordSize(m *kafka.Message) int {
	n := 32 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// perMessage spreads the result of one WriteMessages call over its n
// records: nil when all succeeded.
func perMessage(err error, n int) []error {
	if err == nil {
		return nil
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == n {
		return werrs
	}
	// Anything else (a refused record size, a timeout, no connection, no
	// metadata) failed the call as a whole, with an unknown outcome for
	// any request already sent: treat every record as not written.
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// tooLarge reports whether err says a record can never be written as it is.
func tooLarge(err error) bool {
	var mtl kafka.MessageTooLargeError
	return errors.As(err, &mtl) || errors.Is(err, kafka.MessageSizeTooLarge)
}

// probeKafka checks that a broker answers a metadata request for the topic
// on a fresh connection (the transport's metadata cache could answer for a
// dead broker), dialled by d with the writer's TLS and SASL.
func probeKafka(ctx context.Context, cfg *Config, d *kafka.Dialer) error {
	var errs []error
	for _, addr := range cfg.Brokers {
		if err := probeOne(ctx, d, addr, cfg.Topic); err != nil {
			errs = append(errs, err)
			continue
		}
		return nil
	}
	return fmt.Errorf("probe kafka: %w", errors.Join(errs...))
}

func probeOne(ctx context.Context, d *kafka.Dialer, addr, topic string) error {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Second)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline on %s: %w", addr, err)
	}
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		return fmt.Errorf("read partitions of %s from %s: %w", topic, addr, err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("topic %s has no partitions on %s", topic, addr)
	}
	return nil
}
