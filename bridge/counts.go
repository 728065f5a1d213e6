package bridge

import (
	"context"
	"fmt"
	"time"

	"sensorhub/internal/breaker"
	"sensorhub/messages"
)

// Counts is a snapshot of this bridge process's relay counters since it
// started, read by the metrics at scrape time (no call is made).
type Counts struct {
	Successful, Failed, DeadLettered uint64
	// Held is the events the relay holds: fetched, not yet acknowledged.
	Held int64
}

// Counts reports the relay's counters.
func (b *Bridge) Counts() Counts {
	return Counts{
		Successful:   b.counts.successful.Load(),
		Failed:       b.counts.failed.Load(),
		DeadLettered: b.counts.deadLettered.Load(),
		Held:         b.counts.held.Load(),
	}
}

// Lag is the durable consumer's state, shared by every bridge.
type Lag struct {
	// Pending events not yet delivered to any bridge; AckPending delivered
	// and not yet acknowledged; Redelivered delivered more than once and
	// not yet acknowledged.
	Pending, AckPending, Redelivered uint64
}

// lagTimeout bounds Lag's call to JetStream when ctx has no earlier deadline.
const lagTimeout = time.Second

// Lag asks JetStream for the consumer's info (one call, within ctx and
// at most a second).
func (b *Bridge) Lag(ctx context.Context) (Lag, error) {
	ctx, cancel := context.WithTimeout(ctx, lagTimeout)
	defer cancel()
	c, err := b.js.Consumer(ctx, messages.StreamEvents, messages.ConsumerBridge)
	if err != nil {
		return Lag{}, fmt.Errorf("consumer info: %w", err)
	}
	info := c.CachedInfo()
	return Lag{Pending: info.NumPending, AckPending: uint64(info.NumAckPending), Redelivered: uint64(info.NumRedelivered)}, nil
}

// Breakers are the bridge's breakers ("bridge.kafka").
func (b *Bridge) Breakers() *breaker.Set { return &b.breakers }
