package sensor

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"time"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// Authenticator checks a bearer token and says who holds it. actors/auth's
// Validator implements it (online through auth.validate, falling back to
// the published keys); this package never imports actors/auth. An invalid
// token comes back as an error (messages.ErrUnauthorized), an auth service
// that cannot answer as messages.ErrAuthUnavailable.
type Authenticator interface {
	Validate(ctx context.Context, token string) (messages.ValidateReply, error)
}

// breakerOwner is implemented by an Authenticator that guards its calls with
// a circuit breaker; the role's health report then includes it.
type breakerOwner interface {
	Breaker() *breaker.Breaker
}

// Defaults for the zero fields of Config.
const (
	DefaultMaxInFlight = 20000
	// DefaultMaxInFlightBytes bounds the memory the work in flight holds:
	// at 8 bytes per reading, about 3,300 queued tests of 10,000 readings,
	// so that DefaultMaxInFlight tests of the largest size cannot take
	// several GiB.
	DefaultMaxInFlightBytes int64 = 256 << 20
	DefaultBatch                  = 512
	DefaultLease                  = 30 * time.Second
	DefaultMaxAttempts            = 3
	DefaultOutboxBatch            = 1024
	// DefaultMaxOutboxBacklog is the outbox bound the sensor command
	// starts with (--max-outbox-backlog); Config's zero is no bound.
	DefaultMaxOutboxBacklog = 100_000
	// DefaultDatabaseCallTimeout bounds one store call (a group commit of a
	// whole batch included) when DatabaseBreaker.CallTimeout is zero.
	DefaultDatabaseCallTimeout = 2 * time.Second
	// DefaultJetStreamCallTimeout bounds one relay batch (publishing it and
	// waiting for every PubAck) when JetStreamBreaker.CallTimeout is zero.
	DefaultJetStreamCallTimeout = 5 * time.Second
)

// Internal timings that need no knob.
const (
	// authTimeout bounds one Authenticator.Validate call (it has its own
	// breaker and shorter per-call deadline inside).
	authTimeout = 3 * time.Second
	// relayInterval is how often the outbox relay looks for rows by itself,
	// so that it resumes after a NATS or JetStream outage without a nudge.
	relayInterval = 500 * time.Millisecond
	// healthPingTimeout bounds the database ping of a health report.
	healthPingTimeout = time.Second
	// maxInsertBytes bounds the request bytes of one insert batch, so that
	// 512 submissions of 10,000 readings each do not make one giant
	// transaction that cannot finish within the call timeout.
	maxInsertBytes = 8 << 20
	// maxReaders bounds the result reads (and their token checks) in flight.
	maxReaders = 1024
	// processorMailbox is the bounded mailbox of each processor; the pool
	// never has more than processorCredit jobs outstanding at one, so a send
	// never blocks on a full mailbox. The attempts of the jobs outstanding
	// are counted before they reach the mailbox: a process that dies counts
	// an attempt for each (at most processorCredit per processor). The
	// credit is also how many tests one BeginAttempts statement can start
	// per processor, one statement at a time: with 8 (mailbox 16) dev
	// saturated near 3,000 tests/s on two cores (the processors waited on
	// the count's round trip), with 32 it keeps up with 5,000/s.
	processorMailbox = 64
	processorCredit  = processorMailbox / 2
	// backlogInterval is how often the outbox rows are counted when
	// MaxOutboxBacklog is set.
	backlogInterval = time.Second
	// maxReasonLen bounds a failure reason (a panic text) stored and returned.
	maxReasonLen = 512
)

// Config configures the sensor role. Zero fields take the defaults.
type Config struct {
	// Subjects builds every subject (the zero value is the default prefix).
	Subjects messages.Subjects
	// Store is the system of record (required).
	Store store.Store
	// Auth checks bearer tokens (required).
	Auth Authenticator
	// Workers is the number of processor actors (default 2*GOMAXPROCS).
	Workers int
	// MaxInFlight bounds the submissions accepted but not yet answered, and
	// separately the tests in the processing pipeline of this process;
	// past it a submission is refused at once with 503 overloaded and
	// retry_after (default 20000).
	MaxInFlight int
	// MaxInFlightBytes bounds the bytes the work in flight holds in memory
	// (a submission's payload, decoded readings and stored request until it
	// is answered; a queued test's readings until it is processed); past
	// it a submission is refused at once with 503 overloaded, as past
	// MaxInFlight (default 256 MiB).
	MaxInFlightBytes int64
	// InsertBatch and CompleteBatch are the most rows of one group commit
	// (default 512 each).
	InsertBatch, CompleteBatch int
	// Lease is how long a test may stay "processing" before the sweeper of
	// any sensor process claims it again (default 30s).
	Lease time.Duration
	// SweepInterval is how often the sweeper looks for expired leases
	// (default Lease/3).
	SweepInterval time.Duration
	// RenewInterval is how often the pool renews the leases of every test
	// it holds, queued or processing, in one store call (default Lease/3:
	// two renewals may fail before a lease ends).
	RenewInterval time.Duration
	// MaxAttempts is how many processing attempts a test gets before it
	// ends "failed" with the reason (default 3). An attempt is counted in
	// the store when a processor is about to start on the test, so one that
	// panics, or that the process dies in, counts; waiting in a queue
	// counts none.
	MaxAttempts int
	// DatabaseBreaker guards every store call ("sensor.database").
	DatabaseBreaker breaker.Config
	// JetStreamBreaker guards the outbox relay's publishing ("sensor.jetstream").
	JetStreamBreaker breaker.Config
	// Stream sizes the SENSOR_EVENTS stream the relay ensures.
	Stream natsx.StreamConfig
	// OutboxBatch is the most events published per relay batch (default 1024).
	OutboxBatch int
	// MaxOutboxBacklog bounds the outbox: once it holds this many events
	// (counted every backlogInterval, not per submission), submissions are
	// refused with 503 backlog_full until it drains below (default 0: no
	// bound).
	MaxOutboxBacklog int64
	// Logger gets supervision events and state changes (default slog.Default()).
	Logger *slog.Logger
	// Tracer, when set, traces each submission: its intake (continuing the
	// traceparent of the request's NATS headers), its share of the insert
	// group commit, its evaluation, its share of the completion commit and
	// the publish of its event, whose traceparent the outbox row keeps and
	// the event carries to the bridge. nil: tracing off, no tracing work
	// (the outbox row's traceparent is written empty).
	Tracer *tracing.Tracer
	// LogStacks adds panic stacks to supervision log lines.
	LogStacks bool
	// OnGiveUp runs once when the role supervisor gives up on a critical
	// actor: the process should log it and exit non-zero.
	OnGiveUp func(error)

	// hooks are for this package's tests only.
	hooks *testHooks
}

// testHooks let tests in this package make a processor panic or wait.
type testHooks struct {
	// panicOn makes the processor panic while it handles these tests.
	panicOn func(store.Test) bool
	// beforeProcess runs in the processor before the evaluation; it may
	// block (to hold tests "in flight").
	beforeProcess func(store.Test)
}

func (c *Config) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.InsertBatch <= 0 {
		c.InsertBatch = DefaultBatch
	}
	if c.CompleteBatch <= 0 {
		c.CompleteBatch = DefaultBatch
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = c.Lease / 3
	}
	if c.RenewInterval <= 0 {
		c.RenewInterval = c.Lease / 3
	}
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.DatabaseBreaker.CallTimeout <= 0 {
		c.DatabaseBreaker.CallTimeout = DefaultDatabaseCallTimeout
	}
	if c.JetStreamBreaker.CallTimeout <= 0 {
		c.JetStreamBreaker.CallTimeout = DefaultJetStreamCallTimeout
	}
	if c.OutboxBatch <= 0 {
		c.OutboxBatch = DefaultOutboxBatch
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration Start cannot use.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("sensor: Store is required")
	case c.Auth == nil:
		return errors.New("sensor: Auth is required")
	}
	return nil
}
