package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// Dependency names in the health report.
const (
	DepNATS      = "nats"
	DepJetStream = "jetstream"
	DepKafka     = "kafka"
)

// counters are the bridge's own counts since it started (per process;
// queued is the only figure shared by all bridges).
type counters struct {
	successful   atomic.Uint64
	failed       atomic.Uint64
	deadLettered atomic.Uint64
	queued       atomic.Uint64 // last known, for when JetStream does not answer

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
}

func (c *counters) recordError(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	c.lastErr = err.Error()
	c.lastErrAt = time.Now()
	c.mu.Unlock()
}

func (c *counters) lastError() (string, *time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr == "" {
		return "", nil
	}
	at := c.lastErrAt
	return c.lastErr, &at
}

// Stats reports the bridge (sensorhub.bridge.stats). Queued comes from the
// consumer's info and OutboxBacklog from the sensor role, each under a
// short deadline within ctx: when JetStream does not answer, Queued is the
// last known value; when no sensor role answers, OutboxBacklog is -1.
func (b *Bridge) Stats(ctx context.Context) messages.BridgeStats {
	var wg sync.WaitGroup
	backlog := int64(-1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		b.refreshQueued(ctx)
	}()
	go func() {
		defer wg.Done()
		octx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		var out messages.OutboxStats
		if _, err := natsx.Request(octx, b.nc, b.cfg.Subjects.SensorOutbox(), nil, nil, &out); err == nil {
			backlog = out.Backlog
		}
	}()
	wg.Wait()
	lastErr, lastAt := b.counts.lastError()
	return messages.BridgeStats{
		Queued:         b.counts.queued.Load(),
		Successful:     b.counts.successful.Load(),
		Failed:         b.counts.failed.Load(),
		DeadLettered:   b.counts.deadLettered.Load(),
		Breaker:        b.kafka.State(),
		KafkaReachable: b.deps.Up(DepKafka),
		LastError:      lastErr,
		LastErrorAt:    lastAt,
		OutboxBacklog:  backlog,
	}
}

// refreshQueued asks JetStream how many events wait for any bridge:
// pending (not yet delivered) plus delivered and not yet acknowledged.
func (b *Bridge) refreshQueued(ctx context.Context) {
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := b.js.Consumer(ictx, messages.StreamEvents, messages.ConsumerBridge)
	if err != nil {
		return
	}
	info := c.CachedInfo()
	b.counts.queued.Store(info.NumPending + uint64(info.NumAckPending))
}

// Health reports the bridge's dependencies and breaker
// (sensorhub.bridge.health; package health has the rule). It makes no
// network call: NATS is checked on the connection, JetStream and Kafka are
// as the relay last found them (it talks to both at least every FetchWait
// and ProbeInterval).
func (b *Bridge) Health(_ context.Context) messages.HealthReply {
	if b.nc.IsConnected() {
		b.deps.Set(DepNATS, nil)
	} else {
		b.deps.Set(DepNATS, natsx.ErrNotConnected)
	}
	instance, _ := b.instance.Load().(string)
	return b.deps.Report(instance)
}
