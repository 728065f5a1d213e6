package app

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"sensorhub/internal/kafkadev"
	"sensorhub/internal/testenv"
)

// The embedded broker of dev, limited as dev limits it, drops the oldest
// records once a partition holds more than the retention: its memory stays
// bounded however many events pass.
func TestDevKafkaRetention(t *testing.T) {
	const (
		topic     = "retention-test"
		retention = 256 << 10
		records   = 400
	)
	b := testenv.KafkaWith(t, kafkadev.Config{Topics: []string{topic}, Partitions: 1, BrokerConfigs: retentionBrokerConfigs()})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := limitKafkaRetention(ctx, b.Addr(), topic, retention); err != nil {
		t.Fatalf("limitKafkaRetention: %v", err)
	}

	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: topic, RequiredAcks: kafka.RequireAll,
		BatchSize: 50, BatchTimeout: time.Millisecond}
	defer func() { _ = w.Close() }()
	value := bytes.Repeat([]byte("x"), 4<<10) // 400 x 4 KiB: six times the retention
	for i := 0; i < records; i += 50 {
		batch := make([]kafka.Message, 50)
		for j := range batch {
			batch[j] = kafka.Message{Key: []byte(fmt.Sprint(i + j)), Value: value}
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			t.Fatalf("write: %v", err)
		}
	}

	client := &kafka.Client{Addr: kafka.TCP(b.Addr()), Timeout: 10 * time.Second}
	offsets := func() (first, last int64) {
		resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			topic: {kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0)},
		}})
		if err != nil {
			t.Fatalf("list offsets: %v", err)
		}
		p := resp.Topics[topic][0]
		if p.Error != nil {
			t.Fatalf("list offsets: %v", p.Error)
		}
		return p.FirstOffset, p.LastOffset
	}
	// Retention runs every second: poll until it has.
	for {
		first, last := offsets()
		if last != records {
			t.Fatalf("last offset %d, want %d", last, records)
		}
		if kept := last - first; first > 0 && kept*int64(len(value)) <= 2*retention {
			t.Logf("kept offsets %d..%d", first, last)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("first offset still %d of %d after 60s: retention not applied", first, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
