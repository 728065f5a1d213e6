package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/segmentio/kafka-go"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/health"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// RelayActor is the name of the relay's actor under the role supervisor.
const RelayActor = "relay"

// statsEndpoint is the name of the stats endpoint, whose data in the
// service's $SRV.STATS reply is the instance's own figures.
const statsEndpoint = "stats"

// Bridge is a running bridge role.
type Bridge struct {
	cfg    Config
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	system *actor.ActorSystem

	// ctx lives as long as the bridge; Stop cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	transport *kafka.Transport
	writer    *kafka.Writer
	probe     *kafka.Dialer // with the transport's TLS and SASL
	kafka     *breaker.Breaker
	breakers  breaker.Set

	counts counters
	deps   *health.Tracker
	// instance is the micro service id (a string), stored once the
	// service is registered: a health request can arrive before that.
	instance atomic.Value

	consMu   sync.Mutex
	consumer jetstream.Consumer // nil until streams and consumer are ensured

	role     *supervise.Role
	svc      micro.Service
	stopOnce sync.Once
	stopErr  error
}

// Start ensures the streams and the durable consumer (retried by the relay
// when NATS or JetStream is not there yet), spawns the role supervisor
// "bridge" with the relay under it in system, and registers the micro
// service sensorhub-bridge. It fails only on a bad configuration or when
// the role cannot be spawned or the service registered.
func Start(ctx context.Context, nc *nats.Conn, system *actor.ActorSystem, cfg Config) (*Bridge, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	auth, err := newKafkaAuth(&cfg)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bridge: jetstream context: %w", err)
	}
	log := cfg.Logger.With("role", messages.RoleBridge)
	if cfg.SASL.mech() == SASLPlain && !cfg.TLS.On() {
		log.Warn("bridge: SASL PLAIN without TLS sends the Kafka password in clear")
	}
	b := &Bridge{cfg: cfg, log: log, nc: nc, js: js, system: system}
	b.counts.started = time.Now().UTC()
	b.counts.kafkaRecords.Store(-1)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.deps = health.New(messages.RoleBridge, log, &b.breakers)
	for _, name := range []string{DepNATS, DepJetStream, DepKafka} {
		b.deps.Dependency(name)
	}
	b.transport = newTransport(b.ctx, &b.cfg, auth)
	b.probe = auth.dialer()
	b.writer = newWriter(&b.cfg, b.transport, log)
	b.kafka = b.breakers.Add(breaker.New(BreakerName, cfg.Breaker, isKafkaFailure, log))

	// Ensure now, so that a healthy start is ready at once and a
	// misconfigured stream shows in the log straight away; a failure is
	// not fatal, since the relay keeps trying.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := b.ensure(sctx); err != nil {
		log.Warn("bridge: streams not ready yet, the relay will retry", "err", err)
	}
	cancel()

	b.role, err = supervise.Spawn(system, supervise.RoleConfig{
		Role:      messages.RoleBridge,
		Logger:    cfg.Logger,
		LogStacks: cfg.LogStacks,
		OnGiveUp:  cfg.OnGiveUp,
		Children: []supervise.Child{{
			Name:  RelayActor,
			Props: supervise.Props(func() actor.Actor { return &relayActor{b: b} }),
			// A crash loses nothing (unacknowledged events are redelivered),
			// so restart, slowing down when it keeps crashing; the role is
			// useless without its relay, so giving up is critical.
			Policy: supervise.Policy{
				MaxRestarts: 10,
				Window:      time.Minute,
				Backoff:     200 * time.Millisecond,
				MaxBackoff:  5 * time.Second,
				Critical:    true,
			},
		}},
	})
	if err != nil {
		b.closeKafka(time.Second)
		b.cancel()
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b.svc, err = natsx.AddService(nc, cfg.Subjects, messages.RoleBridge, "sensorhub bridge: relays sensor events from JetStream to Kafka as CloudEvents",
		append([]natsx.Endpoint{
			{Name: statsEndpoint, Handler: micro.HandlerFunc(b.handleStats), Stats: func() any { return b.Instance() }},
			{Name: "health", Handler: micro.HandlerFunc(b.handleHealth), Stats: b.healthStats},
		}, b.dlqEndpoints()...)...,
	)
	if err != nil {
		_ = b.role.Stop(b.stopWait())
		b.closeKafka(time.Second)
		b.cancel()
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b.instance.Store(b.svc.Info().ID)
	log.Info("bridge started", "brokers", cfg.Brokers, "topic", cfg.Topic, "batch", cfg.BatchSize, "instance", b.svc.Info().ID,
		"kafka_tls", cfg.TLS.On(), "kafka_sasl", cfg.SASL.String())
	return b, nil
}

// isKafkaFailure says which errors of a guarded Kafka call count against
// the breaker: all of them (the relay only returns dependency failures).
func isKafkaFailure(err error) bool { return err != nil }

// Role is the bridge's role supervisor.
func (b *Bridge) Role() *supervise.Role { return b.role }

// Stop stops the relay (an in-flight Kafka write is finished and its events
// acknowledged; events fetched but not written are released for redelivery
// at once), deregisters the service and closes the Kafka writer, all within
// about timeout. It does not close the NATS connection, which the caller
// owns. Calling it again returns the first result.
func (b *Bridge) Stop(timeout time.Duration) error {
	b.stopOnce.Do(func() {
		deadline := time.Now().Add(timeout)
		var errs []error
		if err := b.role.Stop(timeout); err != nil {
			errs = append(errs, err)
		}
		if err := b.svc.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("stop bridge service: %w", err))
		}
		left := time.Until(deadline)
		if left < 100*time.Millisecond {
			left = 100 * time.Millisecond
		}
		if err := b.closeKafka(left); err != nil {
			errs = append(errs, err)
		}
		b.cancel()
		b.stopErr = errors.Join(errs...)
		b.log.Info("bridge stopped")
	})
	return b.stopErr
}

func (b *Bridge) closeKafka(timeout time.Duration) error {
	err := closeWriter(b.writer, timeout)
	b.transport.CloseIdleConnections()
	return err
}

// stopWait bounds how long stopping the relay may take: its longest step
// is one Kafka write.
func (b *Bridge) stopWait() time.Duration {
	return b.cfg.Breaker.CallTimeout + 5*time.Second
}

// ensure creates or updates the streams and the durable consumer and
// remembers the consumer.
func (b *Bridge) ensure(ctx context.Context) (jetstream.Consumer, error) {
	if _, err := natsx.EnsureEventStream(ctx, b.js, b.cfg.Subjects, b.cfg.Stream); err != nil {
		b.deps.Set(DepJetStream, err)
		return nil, err
	}
	if _, err := natsx.EnsureDeadLetterStream(ctx, b.js, b.cfg.Subjects, b.cfg.Stream); err != nil {
		b.deps.Set(DepJetStream, err)
		return nil, err
	}
	c, err := b.js.CreateOrUpdateConsumer(ctx, messages.StreamEvents, jetstream.ConsumerConfig{
		Durable:     messages.ConsumerBridge,
		Description: "sensorhub bridges: SENSOR_EVENTS to Kafka",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     b.cfg.AckWait,
		// Never skip an event for good: Kafka being down for a long time
		// must not turn into lost events (poison goes to the DLQ instead).
		MaxDeliver:    -1,
		MaxAckPending: b.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		err = fmt.Errorf("ensure consumer %s: %w", messages.ConsumerBridge, err)
		b.deps.Set(DepJetStream, err)
		return nil, err
	}
	b.deps.Set(DepJetStream, nil)
	b.consMu.Lock()
	b.consumer = c
	b.consMu.Unlock()
	return c, nil
}

func (b *Bridge) currentConsumer() jetstream.Consumer {
	b.consMu.Lock()
	defer b.consMu.Unlock()
	return b.consumer
}

func (b *Bridge) handleStats(req micro.Request) {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	if err := natsx.ReplyJSON(req, b.TierStats(ctx)); err != nil {
		b.log.Debug("reply to stats request", "err", err)
	}
}

// healthStats is the health endpoint's data in the service's stats
// (`nats micro stats`): the breakers, the latest supervision events and
// breaker transitions, from memory.
func (b *Bridge) healthStats() any {
	st := messages.HealthStats{CircuitBreakers: b.breakers.Health(), BreakerTransitions: b.breakers.Recent()}
	if role := b.role; role != nil {
		st.Supervision = role.Recent()
	}
	return st
}

func (b *Bridge) handleHealth(req micro.Request) {
	if err := natsx.ReplyJSON(req, b.Health(b.ctx)); err != nil {
		b.log.Debug("reply to health request", "err", err)
	}
}
