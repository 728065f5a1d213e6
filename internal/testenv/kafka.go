package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"sensorhub/internal/kafkadev"
	"sensorhub/messages"
)

// KafkaPartitions is the partition count of the topics Kafka creates.
const KafkaPartitions = 3

// Kafka starts an in-process Kafka-protocol broker on a free 127.0.0.1 port
// with messages.DefaultKafkaTopic (and any extra topics) created, closed by
// t.Cleanup. Its data lives in memory only.
func Kafka(t testing.TB, topics ...string) *kafkadev.Broker {
	t.Helper()
	return KafkaWith(t, kafkadev.Config{Topics: topics})
}

// KafkaWith is Kafka with more settings (broker configs, a data dir). The
// listen address is always a free 127.0.0.1 port, and
// messages.DefaultKafkaTopic is always created.
func KafkaWith(t testing.TB, cfg kafkadev.Config) *kafkadev.Broker {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.FallbackFreePort = false
	cfg.Topics = append([]string{messages.DefaultKafkaTopic}, cfg.Topics...)
	if cfg.Partitions == 0 {
		cfg.Partitions = KafkaPartitions
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b, err := kafkadev.Start(cfg)
	if err != nil {
		t.Fatalf("start kafka: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// ReadAll reads topic from the start of every partition until it has at
// least want records and has caught up with every partition's high
// watermark, or fails the test when its own deadline comes (see Wait: an
// event may wait out the bridge's ack wait on a busy machine, and that is
// delivery, not loss). Records come grouped by
// partition, in offset order within each (that is, in the order Kafka
// holds them for each key).
func ReadAll(t testing.TB, addr, topic string, want int) []kafka.Message {
	t.Helper()
	msgs, err := ReadAllWithin(addr, topic, want, Wait(t))
	if err != nil {
		t.Fatalf("read kafka topic %s: %v", topic, err)
	}
	return msgs
}

// KafkaAuth is how a reader reaches a broker that requires TLS or SASL.
type KafkaAuth struct {
	TLS  *tls.Config
	SASL sasl.Mechanism
}

// ReadAllAuth is ReadAll from a broker that requires TLS or SASL.
func ReadAllAuth(t testing.TB, addr, topic string, want int, auth KafkaAuth) []kafka.Message {
	t.Helper()
	msgs, err := readAllWithin(addr, topic, want, Wait(t), auth)
	if err != nil {
		t.Fatalf("read kafka topic %s: %v", topic, err)
	}
	return msgs
}

// ReadAllWithin is ReadAll returning an error, for benchmarks and for
// callers that poll.
func ReadAllWithin(addr, topic string, want int, within time.Duration) ([]kafka.Message, error) {
	return readAllWithin(addr, topic, want, within, KafkaAuth{})
}

func readAllWithin(addr, topic string, want int, within time.Duration, auth KafkaAuth) ([]kafka.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	transport := &kafka.Transport{DialTimeout: 2 * time.Second, Context: ctx, TLS: auth.TLS, SASL: auth.SASL}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addr), Transport: transport, Timeout: 5 * time.Second}

	parts, err := topicPartitions(ctx, client, topic)
	if err != nil {
		return nil, err
	}
	next := make(map[int]int64, len(parts))
	byPart := make(map[int][]kafka.Message, len(parts))
	total := 0
	for {
		caughtUp := true
		for _, p := range parts {
			got, hw, err := fetchPartition(ctx, client, topic, p, next[p])
			if err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("read %d of %d records before the deadline: %w", total, want, err)
				}
				caughtUp = false
				continue
			}
			for _, m := range got {
				if m.Offset < next[p] {
					continue // a batch may start before the offset asked for
				}
				byPart[p] = append(byPart[p], m)
				next[p] = m.Offset + 1
				total++
			}
			if next[p] < hw {
				caughtUp = false
			}
		}
		if caughtUp && total >= want {
			break
		}
		if !caughtUp {
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read %d of %d records before the deadline", total, want)
		case <-time.After(20 * time.Millisecond): // polling Kafka, not waiting for an actor
		}
	}
	out := make([]kafka.Message, 0, total)
	for _, p := range parts {
		out = append(out, byPart[p]...)
	}
	return out, nil
}

func topicPartitions(ctx context.Context, client *kafka.Client, topic string) ([]int, error) {
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil {
			for _, tp := range md.Topics {
				if tp.Name == topic && tp.Error == nil && len(tp.Partitions) > 0 {
					ps := make([]int, 0, len(tp.Partitions))
					for _, p := range tp.Partitions {
						ps = append(ps, p.ID)
					}
					sort.Ints(ps)
					return ps, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("metadata of topic %s: %w", topic, errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func fetchPartition(ctx context.Context, client *kafka.Client, topic string, partition int, offset int64) ([]kafka.Message, int64, error) {
	res, err := client.Fetch(ctx, &kafka.FetchRequest{
		Topic:     topic,
		Partition: partition,
		Offset:    offset,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   50 * time.Millisecond,
	})
	if err != nil {
		return nil, 0, err
	}
	if res.Error != nil {
		return nil, 0, res.Error
	}
	if res.Records == nil {
		return nil, res.HighWatermark, nil
	}
	var out []kafka.Message
	for {
		r, err := res.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return out, res.HighWatermark, nil
		}
		if err != nil {
			return out, res.HighWatermark, err
		}
		m := kafka.Message{Topic: topic, Partition: partition, Offset: r.Offset, Time: r.Time}
		if r.Key != nil {
			m.Key, err = io.ReadAll(r.Key)
			_ = r.Key.Close()
			if err != nil {
				return out, res.HighWatermark, err
			}
		}
		if r.Value != nil {
			m.Value, err = io.ReadAll(r.Value)
			_ = r.Value.Close()
			if err != nil {
				return out, res.HighWatermark, err
			}
		}
		for _, h := range r.Headers {
			// The reader may reuse header memory for the next record.
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)})
		}
		out = append(out, m)
	}
}

// KafkaHeader returns the value of the first header of m named key ("" if none).
func KafkaHeader(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
