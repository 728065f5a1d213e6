package edge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"sensorhub/internal/breaker"
	"sensorhub/internal/metrics"
	"sensorhub/internal/ratelimit"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// Defaults of Config.
const (
	DefaultAddr           = ":8000"
	DefaultRequestTimeout = 2 * time.Second
	DefaultLoginTimeout   = 5 * time.Second
	DefaultHealthTimeout  = 500 * time.Millisecond
	// DefaultSubmitAttempts and DefaultSubmitTimeout bound the retries of
	// a submission whose answer was lost: at most 3 sends, all within 6s
	// (three times the default request timeout, so that a sensor process
	// restarting or a NATS server paused for a few seconds ends in a 202).
	DefaultSubmitAttempts = 3
	DefaultSubmitTimeout  = 6 * time.Second
	// DefaultMaxConcurrent bounds the requests the edge serves at once.
	DefaultMaxConcurrent = 2048
	// ShutdownTimeout bounds the graceful shutdown of Serve.
	ShutdownTimeout = 5 * time.Second
)

// DefaultLoginPerAddr is the edge's own login limit per client address: a
// coarse flood guard in front of NATS. The limits that protect passwords
// (per user, per address, per pair) are the auth role's, shared by HTTP
// and NATS.
var DefaultLoginPerAddr = RateLimit{Every: 200 * time.Millisecond, Burst: 50}

// RateLimit is a token bucket: it holds at most Burst tokens and gains one
// every Every; each attempt takes one.
type RateLimit = ratelimit.Limit

// Config configures the edge. Zero fields take the defaults.
type Config struct {
	// Addr is the listen address of ListenAndServe (default ":8000").
	Addr     string
	Subjects messages.Subjects
	Logger   *slog.Logger
	// Metrics, when set, counts every request by route pattern and status
	// with its latency; MetricsHandler, when set, is served at GET
	// /metrics (outside MaxConcurrent, like /healthz).
	Metrics        *metrics.HTTP
	MetricsHandler http.Handler
	// Tracer, when set, makes a server span per request (continuing an
	// inbound traceparent, answering with the span's traceparent) and a
	// client span per NATS request, whose traceparent goes in the NATS
	// headers. nil: tracing off, and the edge does no tracing work.
	Tracer *tracing.Tracer
	// AuthBreaker, SensorBreaker and BridgeBreaker guard the calls to each
	// downstream service ("edge.auth", "edge.sensor", "edge.bridge"). A zero
	// CallTimeout takes RequestTimeout.
	AuthBreaker, SensorBreaker, BridgeBreaker breaker.Config
	// RequestTimeout is the NATS request deadline (default 2s: login may
	// take bcrypt time).
	RequestTimeout time.Duration
	// HealthTimeout bounds each role's answer in /health (default 500ms).
	HealthTimeout time.Duration
	// SubmitAttempts is how often a submission is sent at most when no
	// answer comes back (a timeout, or no responders while a sensor
	// process restarts), always under the same idempotency key. Default 3;
	// 1 sends once.
	SubmitAttempts int
	// SubmitTimeout bounds a submission with all its attempts and the
	// waits between them (default 6s); each attempt also stops at the
	// sensor breaker's CallTimeout.
	SubmitTimeout time.Duration
	// MaxConcurrent bounds the requests in flight (default 2048); past it
	// the edge answers 503 overloaded with Retry-After at once, before
	// reading the body. /healthz and /readyz are not counted.
	MaxConcurrent int
	// QueueTarget, when positive, makes the bound on submissions (POST
	// /test/sensor/{sensor_type}) adaptive: while even the fastest
	// submission answered in a QueueInterval took longer than QueueTarget
	// from its admission to its answer (a standing queue in front of the
	// sensor role, not a burst that drains), the bound falls towards what
	// would give the target, and past it a submission is refused like one
	// past MaxConcurrent; it rises back to MaxConcurrent once the queue is
	// gone (see submitLimiter). Zero leaves only MaxConcurrent (unlike the
	// other fields: the sensorhub commands default to DefaultQueueTarget).
	QueueTarget time.Duration
	// QueueInterval is how long a queue must stand before the bound moves,
	// and how often it moves at most (default 100ms).
	QueueInterval time.Duration
	// MaxBodyBytes bounds every request body (default messages.MaxBodyBytes).
	MaxBodyBytes int64
	// LoginPerAddr rate-limits POST /auth/token per client address before
	// it reaches NATS (default 5/s, burst 50). The auth role applies the
	// limits per user and per address behind it.
	LoginPerAddr RateLimit
	// TrustedProxies are the reverse proxies whose X-Forwarded-For entries
	// are believed: the client is the rightmost entry that is not one of
	// them. A request from any other peer is keyed by the peer itself, so
	// a client cannot choose its address and dodge the limits.
	TrustedProxies []netip.Prefix
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = DefaultHealthTimeout
	}
	if c.SubmitAttempts == 0 {
		c.SubmitAttempts = DefaultSubmitAttempts
	}
	if c.SubmitTimeout == 0 {
		c.SubmitTimeout = DefaultSubmitTimeout
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.QueueInterval == 0 {
		c.QueueInterval = DefaultQueueInterval
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = messages.MaxBodyBytes
	}
	if c.LoginPerAddr == (RateLimit{}) {
		c.LoginPerAddr = DefaultLoginPerAddr
	}
	// A login is a bcrypt comparison queued behind others: give auth more
	// time than a plain request. A stopped auth still answers at once (NATS
	// says no responders), and a hung one opens the breaker.
	if c.AuthBreaker.CallTimeout == 0 {
		c.AuthBreaker.CallTimeout = max(c.RequestTimeout, DefaultLoginTimeout)
	}
	for _, b := range []*breaker.Config{&c.AuthBreaker, &c.SensorBreaker, &c.BridgeBreaker} {
		if b.CallTimeout == 0 {
			b.CallTimeout = c.RequestTimeout
		}
	}
}

// Validate refuses settings that cannot work. It expects defaults applied.
func (c Config) Validate() error {
	var errs []error
	if c.RequestTimeout < 0 {
		errs = append(errs, errors.New("request timeout must not be negative"))
	}
	if c.HealthTimeout < 0 {
		errs = append(errs, errors.New("health timeout must not be negative"))
	}
	if c.SubmitAttempts < 1 {
		errs = append(errs, fmt.Errorf("submit attempts must be at least 1, got %d", c.SubmitAttempts))
	}
	if c.SubmitTimeout < 0 {
		errs = append(errs, errors.New("submit timeout must not be negative"))
	}
	if c.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("max concurrent requests must be at least 1, got %d", c.MaxConcurrent))
	}
	if c.QueueTarget < 0 {
		errs = append(errs, errors.New("queue target must not be negative (0: no adaptive submission limit)"))
	}
	if c.QueueInterval <= 0 {
		errs = append(errs, fmt.Errorf("queue interval must be positive, got %v", c.QueueInterval))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("max body bytes must not be negative"))
	}
	if rl := c.LoginPerAddr; !rl.Valid() {
		errs = append(errs, fmt.Errorf("login per address rate limit: want Every > 0 and Burst >= 1, got %v and %d", rl.Every, rl.Burst))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid edge config: %w", err)
	}
	return nil
}
