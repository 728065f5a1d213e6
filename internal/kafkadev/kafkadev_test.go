package kafkadev_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"sensorhub/internal/kafkadev"
	"sensorhub/internal/testenv"
)

const topic = "t1"

func start(t *testing.T, cfg kafkadev.Config) *kafkadev.Broker {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Topics = append(cfg.Topics, topic)
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := kafkadev.Start(cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func writer(t *testing.T, addr string) *kafka.Writer {
	t.Helper()
	tr := &kafka.Transport{DialTimeout: time.Second, MetadataTTL: 100 * time.Millisecond}
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  1,
		WriteTimeout: 2 * time.Second,
		ReadTimeout:  2 * time.Second,
		Transport:    tr,
	}
	t.Cleanup(func() {
		_ = w.Close()
		tr.CloseIdleConnections()
	})
	return w
}

func write(w *kafka.Writer, n int, from int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("k%d", (from+i)%5)), Value: []byte(fmt.Sprintf("v%d", from+i))}
	}
	return w.WriteMessages(ctx, msgs...)
}

func TestWriteRead(t *testing.T) {
	b := start(t, kafkadev.Config{})
	w := writer(t, b.Addr())
	if err := write(w, 50, 0); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := testenv.ReadAll(t, b.Addr(), topic, 50)
	if len(got) != 50 {
		t.Fatalf("read %d records, want 50", len(got))
	}
	parts := map[int]bool{}
	for _, m := range got {
		parts[m.Partition] = true
	}
	if len(parts) < 2 {
		t.Errorf("records in %d partitions, want them spread over the 3", len(parts))
	}
}

func TestRefuseProduce(t *testing.T) {
	b := start(t, kafkadev.Config{})
	w := writer(t, b.Addr())
	b.RefuseProduce(true)
	err := write(w, 10, 0)
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) {
		t.Fatalf("write while refusing: %v, want kafka.WriteErrors", err)
	}
	for i, e := range werrs {
		if !errors.Is(e, kafka.NotEnoughReplicas) {
			t.Fatalf("message %d: %v, want NOT_ENOUGH_REPLICAS", i, e)
		}
	}
	b.RefuseProduce(false)
	if err := write(w, 10, 10); err != nil {
		t.Fatalf("write after refusing: %v", err)
	}
	if got := testenv.ReadAll(t, b.Addr(), topic, 10); len(got) != 10 {
		t.Fatalf("read %d records, want the 10 accepted ones", len(got))
	}
}

func TestStopStartKeepsData(t *testing.T) {
	b := start(t, kafkadev.Config{})
	w := writer(t, b.Addr())
	if err := write(w, 10, 0); err != nil {
		t.Fatalf("write: %v", err)
	}
	b.Stop()
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("dial a stopped broker succeeded")
	}
	if err := write(w, 5, 10); err == nil {
		t.Fatalf("write to a stopped broker succeeded")
	}
	if err := b.Start(); err != nil {
		t.Fatalf("start again: %v", err)
	}
	// The writer's pooled connections were cut: it reconnects by itself.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := write(w, 5, 10)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write after start: %v", err)
		}
	}
	if got := testenv.ReadAll(t, b.Addr(), topic, 15); len(got) != 15 {
		t.Fatalf("read %d records, want 15 (data kept across Stop/Start)", len(got))
	}
}

func TestFallbackFreePort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := kafkadev.Start(kafkadev.Config{Listen: busy.Addr().String(), Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatalf("start on a busy port without fallback succeeded")
	}
	b := start(t, kafkadev.Config{Listen: busy.Addr().String(), FallbackFreePort: true})
	if b.Addr() == busy.Addr().String() {
		t.Fatalf("broker claims the busy address %s", b.Addr())
	}
	w := writer(t, b.Addr())
	if err := write(w, 3, 0); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func TestDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := kafkadev.Start(kafkadev.Config{Listen: "127.0.0.1:0", Topics: []string{topic}, DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w := writer(t, b.Addr())
	if err := write(w, 7, 0); err != nil {
		t.Fatalf("write: %v", err)
	}
	b.Close()
	b2 := start(t, kafkadev.Config{DataDir: dir})
	if got := testenv.ReadAll(t, b2.Addr(), topic, 7); len(got) != 7 {
		t.Fatalf("read %d records after restart, want 7", len(got))
	}
}
