package health

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"sensorhub/internal/breaker"
	"sensorhub/messages"
)

// ErrNotChecked is the last error of a dependency that nobody has checked
// since the tracker started.
var ErrNotChecked = errors.New("not checked yet")

// Tracker keeps one role's dependencies and breakers for its health report.
// It is safe for concurrent use.
type Tracker struct {
	role     string
	log      *slog.Logger
	breakers *breaker.Set
	now      func() time.Time

	mu   sync.Mutex
	deps map[string]*state
}

type state struct {
	up      bool
	checked bool
	lastErr string
	since   time.Time
}

// New returns the tracker of role, logging through log (slog.Default when
// nil) and reporting the breakers of set (none when nil).
func New(role string, log *slog.Logger, set *breaker.Set) *Tracker {
	if log == nil {
		log = slog.Default()
	}
	return &Tracker{role: role, log: log, breakers: set, now: time.Now, deps: map[string]*state{}}
}

// Dependency registers name (down, not checked yet) if it is new and returns
// its handle.
func (t *Tracker) Dependency(name string) *Dependency {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lookup(name)
	return &Dependency{t: t, name: name}
}

// lookup returns the state of name, registering it; t.mu must be held.
func (t *Tracker) lookup(name string) *state {
	s, ok := t.deps[name]
	if !ok {
		s = &state{lastErr: ErrNotChecked.Error(), since: t.now()}
		t.deps[name] = s
	}
	return s
}

// Set records the outcome of a check of (or a call to) dependency name: up
// when err is nil, else down with err as the last error.
func (t *Tracker) Set(name string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.lookup(name)
	now := t.now()
	wasChecked := s.checked
	s.checked = true
	if err == nil {
		if !s.up {
			if wasChecked {
				t.log.Info("dependency regained", "dependency", name, "down_for", now.Sub(s.since).Round(time.Millisecond))
			}
			s.up, s.lastErr, s.since = true, "", now
		}
		return
	}
	if s.up || !wasChecked {
		t.log.Warn("dependency lost", "dependency", name, "err", err)
		s.since = now
	}
	s.up, s.lastErr = false, err.Error()
}

// Up reports whether dependency name was up at its last check.
func (t *Tracker) Up(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.deps[name]
	return ok && s.up
}

// Dependencies reports every dependency by name.
func (t *Tracker) Dependencies() map[string]messages.DependencyHealth {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]messages.DependencyHealth, len(t.deps))
	for name, s := range t.deps {
		out[name] = s.health()
	}
	return out
}

func (s *state) health() messages.DependencyHealth {
	since := s.since.UTC()
	h := messages.DependencyHealth{Status: messages.HealthUp, Since: &since}
	if !s.up {
		h.Status, h.LastError = messages.HealthDown, s.lastErr
	}
	return h
}

// Report is the role's health reply: its dependencies, its breakers and the
// status that Status gives them.
func (t *Tracker) Report(instance string) messages.HealthReply {
	deps := t.Dependencies()
	breakers := map[string]messages.BreakerHealth{}
	if t.breakers != nil {
		breakers = t.breakers.Health()
	}
	return messages.HealthReply{
		Role:            t.role,
		Status:          Status(deps, breakers),
		Instance:        instance,
		Dependencies:    deps,
		CircuitBreakers: breakers,
	}
}

// Dependency is the handle of one tracked dependency, for code that records
// the outcome of its calls in one place.
type Dependency struct {
	t    *Tracker
	name string
}

// Set records the outcome of a check; see Tracker.Set.
func (d *Dependency) Set(err error) { d.t.Set(d.name, err) }

// Up reports whether the dependency was up at its last check.
func (d *Dependency) Up() bool { return d.t.Up(d.name) }

// Name is the dependency's name in the report.
func (d *Dependency) Name() string { return d.name }
