package sensor

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// BenchmarkOutboxPublish measures the relay's publish of one batch of
// DefaultOutboxBatch rows to SENSOR_EVENTS on the embedded server, with
// every row of one sensor and spread over 100 sensors, as atomic batches
// and in waves (one round trip per row of one sensor):
// -run='^$' -bench=OutboxPublish ./actors/sensor/.
func BenchmarkOutboxPublish(b *testing.B) {
	for _, bc := range []struct {
		sensors int
		waves   bool
	}{{1, false}, {100, false}, {DefaultOutboxBatch, false}, {1, true}, {100, true}, {DefaultOutboxBatch, true}} {
		sensors := bc.sensors
		b.Run(fmt.Sprintf("sensors=%d/waves=%v", sensors, bc.waves), func(b *testing.B) {
			ns := testenv.NATS(b)
			nc := ns.Conn(b, messages.RoleSensor)
			js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4*DefaultOutboxBatch))
			if err != nil {
				b.Fatal(err)
			}
			subj := messages.DefaultSubjects()
			if _, err := natsx.EnsureEventStream(testenv.Deadline(b), js, subj, natsx.StreamConfig{}); err != nil {
				b.Fatal(err)
			}
			s := &Service{nc: nc, js: js, ctx: context.Background(), log: slog.New(slog.DiscardHandler),
				jsb: breaker.New("bench", breaker.Config{}, isJetStreamFailure, slog.New(slog.DiscardHandler))}
			s.atomicPublish.Store(true)
			s.atomicBatchMax.Store(atomicBatchSize)
			payload, err := orderEvent("x", "s", 300).Encode()
			if err != nil {
				b.Fatal(err)
			}
			at := time.Now().UTC().Truncate(time.Microsecond)
			b.ResetTimer()
			for n := range b.N {
				rows := make([]store.OutboxRow, DefaultOutboxBatch)
				for i := range rows {
					rows[i] = store.OutboxRow{Seq: int64(i), EventID: fmt.Sprintf("e-%d-%d", n, i), Subject: subj.Event("co2", "completed"),
						Payload: payload, SensorID: fmt.Sprintf("s-%d", i%sensors), TestID: fmt.Sprintf("t-%d-%d", n, i), CreatedAt: at}
				}
				acked, err := s.publish(rows, bc.waves)
				if err != nil || len(acked) != len(rows) {
					b.Fatalf("published %d of %d: %v", len(acked), len(rows), err)
				}
			}
			b.ReportMetric(float64(b.N*DefaultOutboxBatch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
