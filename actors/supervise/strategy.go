package supervise

import (
	"errors"
	"fmt"
	"log/slog"
	"sensorhub/internal/recent"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/messages"
)

// Policy says what a failure of one child means.
type Policy struct {
	// Directive for a failure: actor.RestartDirective (the default),
	// actor.StopDirective or actor.EscalateDirective (the role gives up at
	// once). actor.ResumeDirective is the zero value of actor.Directive, so
	// it cannot be told from "not set" and means restart here: set Resume.
	Directive actor.Directive
	// Resume keeps the actor and its state after a failure (only the
	// message that failed is lost). It overrides Directive.
	Resume bool
	// MaxRestarts within Window; one more failure stops the child for good
	// (default 10 within 10s).
	MaxRestarts int
	Window      time.Duration
	// Backoff delays each restart by Backoff times the earlier failures
	// counted in Window (the first restart is immediate), capped at
	// MaxBackoff (default 0: restart at once). The child's mailbox keeps its
	// messages meanwhile.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Critical: when this child stops for good, the whole role gives up
	// (the process logs why and exits non-zero, for the orchestrator).
	Critical bool
}

func (p Policy) withDefaults() Policy {
	switch {
	case p.Resume:
		p.Directive = actor.ResumeDirective
	case p.Directive == actor.ResumeDirective:
		p.Directive = actor.RestartDirective
	}
	if p.MaxRestarts == 0 {
		p.MaxRestarts = 10
	}
	if p.Window == 0 {
		p.Window = 10 * time.Second
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = 5 * time.Second
	}
	return p
}

// Strategy is a one-for-one supervisor strategy with a policy per child
// name, that logs every decision as one slog line and reports a child that
// is stopped for good.
type Strategy struct {
	Logger    *slog.Logger
	LogStacks bool
	// Default applies to children without an entry in Policies.
	Default  Policy
	Policies map[string]Policy
	// OnGaveUp runs (on the supervisor's goroutine: do not block) when a
	// child is stopped for good; critical says whether its policy was.
	OnGaveUp func(child *actor.PID, reason any, critical bool)

	// Tally, when set, counts the strategy's decisions (several
	// strategies of one role may share one); else the strategy keeps its
	// own (see Strategy.Decisions).
	Tally *Tally

	mu       sync.Mutex
	restarts map[string]int
	own      Tally
}

// Tally counts supervision decisions by actor name path and directive,
// for the metrics (bounded: no ids in the key, see NamePath), and keeps the
// latest RecentEvents decisions whole, for the dashboard. Safe for
// concurrent use; the zero value is ready.
type Tally struct {
	mu     sync.Mutex
	m      map[Decision]uint64
	recent recent.Ring[messages.SupervisionEvent]
}

// RecentEvents is how many supervision events a Tally keeps.
const RecentEvents = recent.DefaultSize

func (t *Tally) remember(ev messages.SupervisionEvent) { t.recent.Add(ev) }

// Recent is the latest supervision events, newest first.
func (t *Tally) Recent() []messages.SupervisionEvent { return t.recent.Newest() }

func (t *Tally) record(d Decision) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[Decision]uint64{}
	}
	t.m[d]++
}

// Decisions reports how many decisions of each kind were counted.
func (t *Tally) Decisions() map[Decision]uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[Decision]uint64, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}

func (s *Strategy) tally() *Tally {
	if s.Tally != nil {
		return s.Tally
	}
	return &s.own
}

// Decision is one kind of supervision decision: a directive for the
// actors of one name path.
type Decision struct {
	Actor     string // NamePath of the child
	Directive string // resume, restart, stop, escalate
}

// NamePath is an actor's id without what varies between instances of
// one kind, so that it can label a metric: the pool index of a child
// ("sensor/processors/processor-3" -> "sensor/processors/processor") and
// protoactor's generated names ("$12" -> "$").
func NamePath(id string) string {
	parts := strings.Split(id, "/")
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, "$"):
			parts[i] = "$"
		default:
			if j := strings.LastIndexByte(p, '-'); j > 0 && j < len(p)-1 && strings.Trim(p[j+1:], "0123456789") == "" {
				parts[i] = p[:j]
			}
		}
	}
	return strings.Join(parts, "/")
}

// Recent is the latest events the strategy saw (in its Tally), newest first.
func (s *Strategy) Recent() []messages.SupervisionEvent { return s.tally().Recent() }

// Decisions reports the decisions the strategy counted (in its Tally).
func (s *Strategy) Decisions() map[Decision]uint64 { return s.tally().Decisions() }

var _ actor.SupervisorStrategy = (*Strategy)(nil)

// ChildName is the last element of a PID's id ("sensorhub/auth/login" -> "login").
// Children of a pool ("processor-3") match a policy named by their prefix
// before the last dash ("processor").
func ChildName(pid *actor.PID) string {
	id := pid.GetId()
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	return id
}

func (s *Strategy) policyFor(child *actor.PID) Policy {
	name := ChildName(child)
	if p, ok := s.Policies[name]; ok {
		return p.withDefaults()
	}
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if p, ok := s.Policies[name[:i]]; ok {
			return p.withDefaults()
		}
	}
	return s.Default.withDefaults()
}

// HandleFailure implements actor.SupervisorStrategy.
func (s *Strategy) HandleFailure(system *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason any, _ any) {
	p := s.policyFor(child)
	directive := p.Directive
	var failures int
	if directive == actor.RestartDirective {
		rs.Fail()
		failures = rs.NumberOfFailures(p.Window)
		if failures > p.MaxRestarts {
			rs.Reset()
			directive = actor.StopDirective
		}
	}
	gaveUp := directive == actor.StopDirective || directive == actor.EscalateDirective
	var delay time.Duration
	if directive == actor.RestartDirective {
		delay = min(time.Duration(failures-1)*p.Backoff, p.MaxBackoff)
	}
	s.log(child, reason, directive, failures, delay, p, gaveUp)

	switch directive {
	case actor.ResumeDirective:
		sup.ResumeChildren(child)
	case actor.RestartDirective:
		if delay <= 0 {
			sup.RestartChildren(child)
		} else {
			time.AfterFunc(delay, func() { sup.RestartChildren(child) })
		}
	default:
		sup.StopChildren(child)
	}
	if gaveUp && s.OnGaveUp != nil {
		s.OnGaveUp(child, reason, p.Critical || directive == actor.EscalateDirective)
	}
}

func (s *Strategy) log(child *actor.PID, reason any, d actor.Directive, failures int, delay time.Duration, p Policy, gaveUp bool) {
	logger := s.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s.mu.Lock()
	if s.restarts == nil {
		s.restarts = map[string]int{}
	}
	if d == actor.RestartDirective {
		s.restarts[child.GetId()]++
	}
	total := s.restarts[child.GetId()]
	s.mu.Unlock()
	s.tally().record(Decision{Actor: NamePath(child.GetId()), Directive: directiveName(d)})
	s.tally().remember(messages.SupervisionEvent{At: time.Now().UTC(), Actor: child.GetId(),
		Reason: reasonText(reason), Directive: directiveName(d), Restarts: total})

	attrs := []any{
		"actor", child.GetId(),
		"reason", reasonText(reason),
		"directive", directiveName(d),
		"restarts", total,
		"failures_in_window", failures,
		"max_restarts", p.MaxRestarts,
		"window", p.Window.String(),
	}
	if delay > 0 {
		attrs = append(attrs, "backoff", delay.String())
	}
	var pe *Panic
	if s.LogStacks && errors.As(asError(reason), &pe) {
		attrs = append(attrs, "stack", string(pe.Stack))
	}
	if gaveUp {
		logger.Error("actor supervision: gave up on actor", attrs...)
		return
	}
	logger.Warn("actor supervision", attrs...)
}

// Restarts reports how many times the strategy restarted the child with id.
func (s *Strategy) Restarts(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts[id]
}

func asError(reason any) error {
	if err, ok := reason.(error); ok {
		return err
	}
	return fmt.Errorf("%v", reason)
}

func reasonText(reason any) string {
	const max = 512
	s := fmt.Sprint(reason)
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

func directiveName(d actor.Directive) string {
	switch d {
	case actor.ResumeDirective:
		return "resume"
	case actor.RestartDirective:
		return "restart"
	case actor.StopDirective:
		return "stop"
	case actor.EscalateDirective:
		return "escalate"
	}
	return d.String()
}
