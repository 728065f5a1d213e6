package sensor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/health"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/messages"
)

// Names of the role's actors, children of the role supervisor "sensor".
const (
	actorIntake     = "intake"
	actorWriter     = "writer"
	actorProcessors = "processors"
	actorSweeper    = "sweeper"
	actorOutbox     = "outbox"
	// actorProcessor prefixes the pool's children: processor-0, processor-1...
	actorProcessor = "processor"
)

// Service is a running sensor role: its actor tree and its NATS micro
// service.
type Service struct {
	cfg      Config
	log      *slog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	system   *actor.ActorSystem
	role     *supervise.Role
	svc      micro.Service
	instance string

	data     *database        // the store behind "sensor.database"
	jsb      *breaker.Breaker // "sensor.jetstream"
	breakers breaker.Set

	// PIDs of the role's children; their names survive restarts.
	intakePID, writerPID, poolPID, sweeperPID, outboxPID *actor.PID

	// ctx ends at Stop; every goroutine of the role watches it.
	ctx    context.Context
	cancel context.CancelFunc
	// tasks are the role's goroutines, which Stop waits for.
	tasks *tasks

	// stopping is set when Stop begins: requests still delivered to the
	// draining subscriptions are refused.
	stopping atomic.Bool
	// pipe counts the submissions, tests and completions in flight.
	pipe *pipeline
	// jobSeq numbers the pool's jobs across its restarts, so that a late
	// report from a processor of an earlier incarnation matches no new job.
	jobSeq atomic.Uint64
	// readers bounds the result reads in flight.
	readers chan struct{}
	// streamReady is set once the event stream is ensured; reset when a
	// publish says the stream is gone.
	streamReady atomic.Bool
	// atomicPublish is set while the ensured stream takes atomic batch
	// publishes (the server returned it with allow_atomic): the relay then
	// stores each batch all or nothing instead of in waves.
	atomicPublish atomic.Bool
	// atomicBatchMax is the most messages the relay puts in one atomic
	// batch: the server's default bound until a server configured with a
	// smaller one refuses a batch as too large.
	atomicBatchMax atomic.Int64

	// health tracks the dependencies; jsState is its entry for JetStream
	// (the database's is data.state).
	health  *health.Tracker
	jsState *health.Dependency
	// streamState is down while SENSOR_EVENTS refuses events for want of
	// room; backlogState while the outbox is at MaxOutboxBacklog.
	streamState, backlogState *health.Dependency
	// outbox counts the outbox rows, as last read (see countBacklog).
	outbox backlogCount
	// outcomes counts the submissions' answers and the tests' ends, and
	// supervision the role's supervision decisions (both for the metrics).
	outcomes    outcomes
	supervision supervise.Tally

	stopOnce sync.Once
	stopErr  error
}

// Start builds the sensor role: the actor tree under the role supervisor
// "sensor" in system, and the NATS micro service "sensorhub-sensor" on nc.
// ctx bounds the start-up only; the role runs until Stop. It starts while
// the database or NATS is down: requests are refused with 503 meanwhile, and
// the health report says why.
func Start(ctx context.Context, nc *nats.Conn, system *actor.ActorSystem, cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil || system == nil {
		return nil, errors.New("sensor: a NATS connection and an actor system are required")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start sensor role: %w", err)
	}
	js, err := jetstream.New(nc,
		// A PubAck that never comes (NATS went away mid-batch) must not hold
		// a slot of the async publisher forever.
		jetstream.WithPublishAsyncTimeout(cfg.JetStreamBreaker.CallTimeout),
		jetstream.WithPublishAsyncMaxPending(4*cfg.OutboxBatch),
	)
	if err != nil {
		return nil, fmt.Errorf("start sensor role: jetstream: %w", err)
	}
	log := cfg.Logger.With("role", messages.RoleSensor)
	s := &Service{
		cfg:      cfg,
		log:      log,
		nc:       nc,
		js:       js,
		system:   system,
		instance: messages.RoleSensor + "-" + uuid.NewString()[:8],
		readers:  make(chan struct{}, maxReaders),
		pipe:     newPipeline(cfg.MaxInFlight, cfg.MaxInFlightBytes),
		outbox:   backlogCount{limit: cfg.MaxOutboxBacklog},
		tasks:    &tasks{system: system},
	}
	s.atomicBatchMax.Store(atomicBatchSize)
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.data = &database{store: cfg.Store, ctx: s.ctx, log: log,
		breaker: s.breakers.Add(breaker.New("sensor.database", cfg.DatabaseBreaker, isDatabaseOutage, log))}
	s.jsb = s.breakers.Add(breaker.New("sensor.jetstream", cfg.JetStreamBreaker, isJetStreamFailure, log))
	if b, ok := cfg.Auth.(breakerOwner); ok && b.Breaker() != nil {
		s.breakers.Add(b.Breaker())
	}
	s.health = health.New(messages.RoleSensor, log, &s.breakers)
	s.data.state, s.jsState = s.health.Dependency("database"), s.health.Dependency("jetstream")
	// Presumed fine until a publish or a count says otherwise.
	s.streamState, s.backlogState = s.health.Dependency(depEventStream), s.health.Dependency(depOutboxBacklog)
	s.streamState.Set(nil)
	s.backlogState.Set(nil)

	// The children find each other by name: the PIDs are known before the
	// tree is spawned, and stay valid across restarts.
	child := func(name string) *actor.PID {
		return actor.NewPID(system.Address(), messages.RoleSensor+"/"+name)
	}
	s.intakePID, s.writerPID, s.poolPID = child(actorIntake), child(actorWriter), child(actorProcessors)
	s.sweeperPID, s.outboxPID = child(actorSweeper), child(actorOutbox)

	role, err := supervise.Spawn(system, supervise.RoleConfig{
		Role:      messages.RoleSensor,
		Logger:    log,
		LogStacks: cfg.LogStacks,
		OnGiveUp:  cfg.OnGiveUp,
		Tally:     &s.supervision,
		Children:  s.children(),
	})
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("start sensor role: %w", err)
	}
	s.role = role
	for _, name := range role.Names() {
		if role.Child(name).GetId() != child(name).GetId() {
			s.abort()
			return nil, fmt.Errorf("start sensor role: child %s spawned as %s", name, role.Child(name).GetId())
		}
	}

	svc, err := natsx.AddService(nc, cfg.Subjects, messages.RoleSensor, "sensorhub sensor: accepts sensor tests, reads results, serves the catalogue, relays events to JetStream",
		natsx.Endpoint{Name: "submit", Handler: s.handleSubmit},
		natsx.Endpoint{Name: "result", Handler: s.handleResult},
		natsx.Endpoint{Name: "types", Handler: s.handleTypes},
		natsx.Endpoint{Name: "outbox", Handler: s.handleOutbox},
		natsx.Endpoint{Name: "health", Handler: s.handleHealth, Stats: s.healthStats},
	)
	if err != nil {
		s.abort()
		return nil, fmt.Errorf("start sensor role: %w", err)
	}
	s.svc = svc
	if nc.IsConnected() {
		// Make the endpoints' subscriptions known to the server before
		// returning, so a request sent right after Start finds them.
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := nc.FlushWithContext(fctx); err != nil {
			log.Debug("flush after registering the sensor service", "err", err)
		}
		cancel()
	}
	s.tasks.goTracked(s.tick)
	return s, nil
}

// children is the role's actor tree. Every child is critical: without any
// one of them the role either accepts nothing or loses the guarantee that an
// accepted test ends, so a child that keeps failing makes the process exit
// for its orchestrator to restart it (the sweeper then recovers its tests).
func (s *Service) children() []supervise.Child {
	return []supervise.Child{
		{
			// Stateless: a panic answers the submission it was handling
			// (ReplyOnPanic) and the queued ones wait in the mailbox, so an
			// immediate restart loses nothing.
			Name:   actorIntake,
			Props:  supervise.Props(func() actor.Actor { return &intake{s: s} }),
			Policy: supervise.Policy{Directive: actor.RestartDirective, MaxRestarts: 10, Window: 10 * time.Second, Critical: true},
		},
		{
			// Restart at once: a batch in flight comes back to the new
			// incarnation with its callers, queued completions are handed
			// over, queued inserts are answered with an error (their callers
			// were never told "processing", so nothing accepted is lost).
			Name:   actorWriter,
			Props:  supervise.Props(func() actor.Actor { return newWriter(s) }),
			Policy: supervise.Policy{Directive: actor.RestartDirective, MaxRestarts: 10, Window: 10 * time.Second, Critical: true},
		},
		{
			// The pool hands its jobs over to its next incarnation; a poison
			// job only ever kills a processor (its own children), which the
			// pool's strategy restarts.
			Name: actorProcessors,
			Props: supervise.Props(func() actor.Actor { return newPool(s) },
				actor.WithSupervisor(s.processorStrategy())),
			Policy: supervise.Policy{Directive: actor.RestartDirective, MaxRestarts: 10, Window: 10 * time.Second, Critical: true},
		},
		{
			// Its only state is "a sweep is running"; the lease keeps the
			// tests safe, so restarting with a backoff avoids a hot loop.
			Name:   actorSweeper,
			Props:  supervise.Props(func() actor.Actor { return &sweeper{s: s} }),
			Policy: supervise.Policy{Directive: actor.RestartDirective, MaxRestarts: 10, Window: time.Minute, Backoff: 500 * time.Millisecond, MaxBackoff: 5 * time.Second, Critical: true},
		},
		{
			// Rows wait in the database while it is down, so a backoff
			// costs nothing but latency.
			Name:   actorOutbox,
			Props:  supervise.Props(func() actor.Actor { return &outboxRelay{s: s} }),
			Policy: supervise.Policy{Directive: actor.RestartDirective, MaxRestarts: 10, Window: time.Minute, Backoff: 500 * time.Millisecond, MaxBackoff: 5 * time.Second, Critical: true},
		},
	}
}

// Role is the role supervisor of the sensor actors.
func (s *Service) Role() *supervise.Role { return s.role }

// Stop stops the micro service (no new requests), lets the work in flight
// finish within half of timeout (submissions answered, completions of
// accepted tests committed), then stops every goroutine and poisons the role.
// What could not finish stays "processing" in the database and is recovered
// by the sweeper of the next sensor process once its lease ends.
func (s *Service) Stop(timeout time.Duration) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(timeout) })
	return s.stopErr
}

func (s *Service) stop(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	s.stopping.Store(true)
	var errs []error
	if s.svc != nil {
		if err := s.svc.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop sensor micro service: %w", err))
		}
	}
	if s.nc.IsConnected() {
		// The unsubscriptions reach the server before Stop goes on, so a
		// request sent after Stop gets "no responders" (or another instance)
		// instead of a draining subscription.
		fctx, cancel := context.WithTimeout(context.Background(), min(timeout/4, 2*time.Second))
		_ = s.nc.FlushWithContext(fctx)
		cancel()
	}
	if !s.waitIdle(time.Now().Add(timeout / 2)) {
		c := s.pipe.counts()
		s.log.Warn("sensor role stopping with work in flight; the sweeper of the next process recovers it",
			"submissions", c.inflight, "queued", c.queued, "completing", c.completing)
	}
	s.close()
	done := make(chan struct{})
	go func() { s.tasks.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		errs = append(errs, errors.New("stop sensor role: goroutines still running"))
	}
	if err := s.role.Stop(max(time.Until(deadline), 10*time.Millisecond)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// waitIdle waits until nothing is in flight, or until deadline.
func (s *Service) waitIdle(deadline time.Time) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.pipe.idle() && len(s.readers) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
}

// close refuses new goroutines and cancels the running ones.
func (s *Service) close() {
	s.tasks.close()
	s.cancel()
}

// abort stops the role abruptly, as a crash would: queued messages are
// dropped and nothing waits (used when Start fails half-way, and by tests).
// A later Stop does nothing.
func (s *Service) abort() {
	s.stopOnce.Do(s.kill)
}

func (s *Service) kill() {
	s.stopping.Store(true)
	if s.svc != nil {
		_ = s.svc.Stop()
	}
	s.close()
	if s.role != nil {
		s.system.Root.Stop(s.role.PID())
	}
}

// tick drives the sweeper, the pool's lease renewals and the outbox relay
// until Stop.
func (s *Service) tick() {
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	renew := time.NewTicker(s.cfg.RenewInterval)
	defer renew.Stop()
	relay := time.NewTicker(relayInterval)
	defer relay.Stop()
	var count <-chan time.Time
	if s.cfg.MaxOutboxBacklog > 0 {
		t := time.NewTicker(backlogInterval)
		defer t.Stop()
		count = t.C
		s.countBacklog()
	}
	// At once at start: a previous process may have left tests and events.
	s.tasks.send(s.sweeperPID, &sweepTick{})
	s.tasks.send(s.outboxPID, &outboxNudge{})
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-sweep.C:
			s.tasks.send(s.sweeperPID, &sweepTick{})
		case <-renew.C:
			s.tasks.send(s.poolPID, &renewTick{})
		case <-relay.C:
			s.tasks.send(s.outboxPID, &outboxNudge{})
		case <-count:
			s.countBacklog()
		}
	}
}

// errOverloaded refuses work past MaxInFlight.
var errOverloaded = &messages.Error{Code: messages.CodeOverloaded, Message: "sensor service overloaded, retry later", RetryAfter: 1}

// errStopping answers what arrives while the role stops.
var errStopping = messages.NewError(messages.CodeSensorUnavailable, "sensor service stopping")

// errInternal answers a request whose handler crashed.
var errInternal = messages.NewError(messages.CodeInternal, "internal error")

// isDatabaseOutage says which store errors count against the database
// breaker and mark the database down: it could not be reached or did not
// answer within the deadline. Not found, conflicts and bad input prove that
// it is up.
func isDatabaseOutage(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// isJetStreamFailure counts every relay error but a cancelled caller and a
// full stream (JetStream answered; the relay backs off by itself).
func isJetStreamFailure(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, errStreamFull)
}
