// Package breaker wraps sony/gobreaker v2 the way every sensorhub dependency
// call needs it: each call gets its own deadline (gobreaker has none, and a
// hung call in half-open would hold the breaker half-open forever), only
// dependency failures count (a bad request or a wrong password proves the
// dependency is up), a cancelled caller counts for nothing, and every state
// change is one log line.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sensorhub/internal/recent"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"sensorhub/messages"
)

// ErrOpen is returned without calling the dependency while the breaker is
// open (or half-open with its probe already in flight).
var ErrOpen = errors.New("circuit breaker open")

// Config tunes one breaker. Zero fields take the defaults.
type Config struct {
	// CallTimeout is the deadline of each guarded call (default 1s).
	CallTimeout time.Duration
	// OpenFor is how long the breaker stays open before it lets one probe
	// through (half-open). Default 5s.
	OpenFor time.Duration
	// Failures is the number of consecutive failures that opens it (default 5).
	Failures uint32
	// HalfOpenProbes is the number of calls allowed while half-open (default 1).
	HalfOpenProbes uint32
}

// Defaults of a Config's zero fields.
const (
	DefaultCallTimeout    = time.Second
	DefaultOpenFor        = 5 * time.Second
	DefaultFailures       = 5
	DefaultHalfOpenProbes = 1
)

func (c *Config) setDefaults() {
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.OpenFor <= 0 {
		c.OpenFor = DefaultOpenFor
	}
	if c.Failures == 0 {
		c.Failures = DefaultFailures
	}
	if c.HalfOpenProbes == 0 {
		c.HalfOpenProbes = DefaultHalfOpenProbes
	}
}

// Breaker guards calls to one dependency.
type Breaker struct {
	name    string
	cfg     Config
	cb      *gobreaker.CircuitBreaker[any]
	onState func(from, to string)
	// transitions counts state changes by [from][to] (gobreaker's State
	// values: closed, half-open, open), read by the metrics at scrape time.
	transitions [3][3]atomic.Uint64
	// recent is the latest state changes, for the dashboard.
	recent recent.Ring[messages.BreakerTransition]
}

// RecentTransitions is how many state changes a breaker keeps (and a Set
// reports at most).
const RecentTransitions = 16

// New returns a breaker named name ("edge.auth", "sensor.database", ...).
// isFailure says which errors mean the dependency failed; every other error
// counts as a success. A nil isFailure counts every error.
func New(name string, cfg Config, isFailure func(error) bool, logger *slog.Logger) *Breaker {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	if isFailure == nil {
		isFailure = func(error) bool { return true }
	}
	b := &Breaker{name: name, cfg: cfg, recent: recent.Ring[messages.BreakerTransition]{Size: RecentTransitions}}
	b.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        name,
		MaxRequests: cfg.HalfOpenProbes,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		OnStateChange: func(name string, from, to gobreaker.State) {
			// Opening is the news; probing and closing again are routine.
			lvl := slog.LevelInfo
			if to == gobreaker.StateOpen {
				lvl = slog.LevelWarn
			}
			logger.Log(context.Background(), lvl, "circuit breaker state changed",
				"breaker", name, "from", from.String(), "to", to.String())
			if from >= 0 && int(from) < len(b.transitions) && to >= 0 && int(to) < len(b.transitions) {
				b.transitions[from][to].Add(1)
			}
			b.remember(messages.BreakerTransition{At: time.Now().UTC(), Breaker: name, From: from.String(), To: to.String()})
			if b.onState != nil {
				b.onState(from.String(), to.String())
			}
		},
		IsSuccessful: func(err error) bool { return err == nil || !isFailure(err) },
		IsExcluded:   func(err error) bool { return errors.Is(err, errCallerGone) },
	})
	return b
}

// OnStateChange registers f to run on every state change (on the calling
// goroutine of the call that changed it: f must not block).
func (b *Breaker) OnStateChange(f func(from, to string)) { b.onState = f }

var errCallerGone = errors.New("caller cancelled")

// Name is the breaker's name.
func (b *Breaker) Name() string { return b.name }

// CallTimeout is the per-call deadline.
func (b *Breaker) CallTimeout() time.Duration { return b.cfg.CallTimeout }

// Do runs fn under the breaker with a context bounded by CallTimeout (and
// ctx). While the breaker is open it returns ErrOpen at once.
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	_, err := Call(ctx, b, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

// Call runs fn under b and returns its value; see Breaker.Do.
func Call[T any](ctx context.Context, b *Breaker, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	var out T
	_, err := b.cb.Execute(func() (any, error) {
		cctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
		defer cancel()
		v, err := fn(cctx)
		out = v
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// The caller went away: that says nothing about the dependency.
			return nil, fmt.Errorf("%w: %w", errCallerGone, err)
		}
		return nil, err
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return zero, fmt.Errorf("%s: %w", b.name, ErrOpen)
	case errors.Is(err, errCallerGone):
		return zero, ctx.Err()
	case err != nil:
		return out, err
	}
	return out, nil
}

// State is "closed", "open" or "half-open".
func (b *Breaker) State() string { return b.cb.State().String() }

// Open reports whether calls are being refused.
func (b *Breaker) Open() bool { return b.cb.State() == gobreaker.StateOpen }

// Health reports the state and counts of the current generation.
func (b *Breaker) Health() messages.BreakerHealth {
	c := b.cb.Counts()
	return messages.BreakerHealth{
		State:                b.State(),
		Requests:             c.Requests,
		TotalSuccesses:       c.TotalSuccesses,
		TotalFailures:        c.TotalFailures,
		ConsecutiveSuccesses: c.ConsecutiveSuccesses,
		ConsecutiveFailures:  c.ConsecutiveFailures,
	}
}

// States are the states a breaker can be in, as State reports them.
func States() []string {
	return []string{gobreaker.StateClosed.String(), gobreaker.StateHalfOpen.String(), gobreaker.StateOpen.String()}
}

// Transition is a count of one kind of state change.
type Transition struct {
	From, To string
	Count    uint64
}

// Transitions reports how often the breaker changed from one state to
// another since it was made (only the kinds that happened).
func (b *Breaker) Transitions() []Transition {
	var out []Transition
	for from := range b.transitions {
		for to := range b.transitions[from] {
			if n := b.transitions[from][to].Load(); n > 0 {
				out = append(out, Transition{From: gobreaker.State(from).String(), To: gobreaker.State(to).String(), Count: n})
			}
		}
	}
	return out
}

func (b *Breaker) remember(t messages.BreakerTransition) { b.recent.Add(t) }

// Recent is the breaker's latest state changes, newest first.
func (b *Breaker) Recent() []messages.BreakerTransition { return b.recent.Newest() }

// Set is a named collection of breakers, for health reports.
type Set struct {
	mu       sync.Mutex
	breakers map[string]*Breaker
}

// Add registers b under its name (replacing any earlier one).
func (s *Set) Add(b *Breaker) *Breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.breakers == nil {
		s.breakers = map[string]*Breaker{}
	}
	s.breakers[b.name] = b
	return b
}

// Health reports every breaker by name.
func (s *Set) Health() map[string]messages.BreakerHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]messages.BreakerHealth, len(s.breakers))
	for name, b := range s.breakers {
		out[name] = b.Health()
	}
	return out
}

// Recent is the latest state changes of all the breakers, newest first, at
// most RecentTransitions.
func (s *Set) Recent() []messages.BreakerTransition {
	var out []messages.BreakerTransition
	for _, b := range s.Breakers() {
		out = append(out, b.Recent()...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if len(out) > RecentTransitions {
		out = out[:RecentTransitions]
	}
	return out
}

// Breakers lists the breakers, sorted by name.
func (s *Set) Breakers() []*Breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Breaker, 0, len(s.breakers))
	for _, b := range s.breakers {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Names lists the breakers, sorted.
func (s *Set) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.breakers))
	for n := range s.breakers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
