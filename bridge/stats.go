package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/segmentio/kafka-go"

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
	held         atomic.Int64  // events the relay holds: fetched, not yet acknowledged
	// kafkaRecords is the last count of the topic's records Kafka gave
	// (-1: none yet), for when Kafka does not answer.
	kafkaRecords atomic.Int64
	started      time.Time

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
}

// setHeld records how many events the relay holds.
func (c *counters) setHeld(n int) { c.held.Store(int64(n)) }

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

// Stats reports this bridge process alone (the tier's report is
// TierStats). Queued comes from the consumer's info and OutboxBacklog from
// the sensor role, each under a short deadline within ctx: when JetStream
// does not answer, Queued is the last known value; when no sensor role
// answers, OutboxBacklog is -1.
func (b *Bridge) Stats(ctx context.Context) messages.BridgeStats {
	var wg sync.WaitGroup
	backlog := int64(-1)
	wg.Go(func() {
		b.refreshQueued(ctx)
	})
	wg.Go(func() {
		backlog = b.outboxBacklog(ctx)
	})
	wg.Wait()
	lastErr, lastAt := b.counts.lastError()
	return messages.BridgeStats{
		Queued:         b.counts.queued.Load(),
		Successful:     b.counts.successful.Load(),
		SuccessfulFrom: messages.CountInstances,
		Failed:         b.counts.failed.Load(),
		DeadLettered:   b.counts.deadLettered.Load(),
		Breaker:        b.kafka.State(),
		KafkaReachable: b.deps.Up(DepKafka),
		LastError:      lastErr,
		LastErrorAt:    lastAt,
		OutboxBacklog:  backlog,
		Instances:      []messages.BridgeInstance{b.Instance()},
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

// How long the tier's report waits. The edge gives a stats request its
// bridge breaker's timeout (1 s by default), so all of it, done at once,
// must fit well inside that.
const (
	// tierWait bounds the wait for the instances' replies; tierGap ends it
	// early once no reply came for that long after the last one (every
	// instance gets the request at the same moment, so replies come
	// together).
	tierWait = 400 * time.Millisecond
	tierGap  = 100 * time.Millisecond
	// kafkaCountWait bounds asking Kafka for the topic's offsets.
	kafkaCountWait = 400 * time.Millisecond
)

// Instance is this process's own figures (no network call): what it
// answers on $SRV.STATS in the stats endpoint's data.
func (b *Bridge) Instance() messages.BridgeInstance {
	lastErr, lastAt := b.counts.lastError()
	id, _ := b.instance.Load().(string)
	return messages.BridgeInstance{
		ID:             id,
		Breaker:        b.kafka.State(),
		KafkaReachable: b.deps.Up(DepKafka),
		Queued:         uint64(max(b.counts.held.Load(), 0)),
		Successful:     b.counts.successful.Load(),
		Failed:         b.counts.failed.Load(),
		DeadLettered:   b.counts.deadLettered.Load(),
		LastError:      lastErr,
		LastErrorAt:    lastAt,
		Started:        b.counts.started,
	}
}

// TierStats reports the whole bridge tier (sensorhub.bridge.stats): every
// instance that answers $SRV.STATS within tierWait, this one always, with
// totals. The durable figures come from durable state: Successful from
// Kafka's offsets, DeadLettered from the dead-letter stream, Queued from
// the durable consumer; each has a short deadline within ctx and a
// fallback (see messages.BridgeStats).
func (b *Bridge) TierStats(ctx context.Context) messages.BridgeStats {
	var (
		wg        sync.WaitGroup
		instances []messages.BridgeInstance
		records   = int64(-1)
		dlq       = int64(-1)
		backlog   = int64(-1)
	)
	wg.Go(func() {
		instances = b.gatherInstances(ctx)
	})
	wg.Go(func() {
		b.refreshQueued(ctx)
	})
	wg.Go(func() {
		backlog = b.outboxBacklog(ctx)
	})
	wg.Go(func() {
		kctx, cancel := context.WithTimeout(ctx, kafkaCountWait)
		defer cancel()
		n, err := topicRecords(kctx, b.transport, b.cfg.Brokers, b.cfg.Topic)
		if err != nil {
			b.log.Debug("stats: count the topic's records", "err", err)
			return
		}
		records = n
		b.counts.kafkaRecords.Store(n)
	})
	wg.Go(func() {
		dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if s, err := b.js.Stream(dctx, messages.StreamDeadLetter); err == nil {
			dlq = int64(s.CachedInfo().State.Msgs)
		}
	})
	wg.Wait()

	out := messages.BridgeStats{
		Queued:         b.counts.queued.Load(),
		Breaker:        messages.BreakerClosed,
		KafkaReachable: len(instances) > 0,
		OutboxBacklog:  backlog,
		Instances:      instances,
	}
	var successful, deadLettered uint64
	for _, in := range instances {
		successful += in.Successful
		deadLettered += in.DeadLettered
		out.Failed += in.Failed
		out.Breaker = worseBreaker(out.Breaker, in.Breaker)
		out.KafkaReachable = out.KafkaReachable && in.KafkaReachable
		if in.LastErrorAt != nil && (out.LastErrorAt == nil || in.LastErrorAt.After(*out.LastErrorAt)) {
			out.LastError, out.LastErrorAt = in.LastError, in.LastErrorAt
		}
	}
	switch last := b.counts.kafkaRecords.Load(); {
	case records >= 0:
		out.Successful, out.SuccessfulFrom = uint64(records), messages.CountKafka
	case last >= 0:
		out.Successful, out.SuccessfulFrom = uint64(last), messages.CountLastKnown
	default:
		out.Successful, out.SuccessfulFrom = successful, messages.CountInstances
	}
	out.DeadLettered = deadLettered
	if dlq >= 0 {
		out.DeadLettered = uint64(dlq)
	}
	return out
}

func (b *Bridge) outboxBacklog(ctx context.Context) int64 {
	octx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var out messages.OutboxStats
	if _, err := natsx.Request(octx, b.nc, b.cfg.Subjects.SensorOutbox(), nil, nil, &out); err != nil {
		return -1
	}
	return out.Backlog
}

// worseBreaker orders breaker states: open, then half-open, then closed.
func worseBreaker(a, b string) string {
	rank := func(s string) int {
		switch s {
		case messages.BreakerOpen:
			return 2
		case messages.BreakerHalfOpen:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// gatherInstances asks every instance of the bridge service for its stats
// ($SRV.STATS.sensorhub-bridge, answered by the micro library of each
// process, with the stats endpoint's data) and returns them by id. It
// waits at most tierWait, less once replies stop (tierGap). This process is
// always in the answer, from its own counters if its reply did not come.
func (b *Bridge) gatherInstances(ctx context.Context) []messages.BridgeInstance {
	self := b.Instance()
	byID := map[string]messages.BridgeInstance{}
	for _, data := range natsx.Gather(ctx, b.nc, b.cfg.Subjects.ServiceStats(messages.RoleBridge), tierWait, tierGap) {
		var st micro.Stats
		if err := json.Unmarshal(data, &st); err != nil {
			continue
		}
		for _, ep := range st.Endpoints {
			var in messages.BridgeInstance
			if ep.Name != statsEndpoint || len(ep.Data) == 0 || json.Unmarshal(ep.Data, &in) != nil || in.ID == "" {
				continue
			}
			byID[in.ID] = in
		}
	}
	if _, ok := byID[self.ID]; !ok {
		byID[self.ID] = self
	}
	out := make([]messages.BridgeInstance, 0, len(byID))
	for _, in := range byID {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// topicRecords asks Kafka how many records topic holds: the sum over its
// partitions of the last offset minus the first. A topic Kafka does not
// know yet holds none.
func topicRecords(ctx context.Context, transport *kafka.Transport, brokers []string, topic string) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata of topic %s: %w", topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return 0, nil
		}
		if t.Error != nil {
			return 0, fmt.Errorf("metadata of topic %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(reqs) == 0 {
		return 0, nil
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("offsets of topic %s: %w", topic, err)
	}
	var n int64
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("offsets of topic %s partition %d: %w", topic, p.Partition, p.Error)
		}
		n += max(p.LastOffset-p.FirstOffset, 0)
	}
	return n, nil
}
