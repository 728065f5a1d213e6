package supervise

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/messages"
)

// Child is one actor a role supervisor owns.
type Child struct {
	Name   string
	Props  *actor.Props
	Policy Policy
}

// RoleConfig configures a role supervisor.
type RoleConfig struct {
	// Role names the supervisor ("auth"); its children are "<role>/<name>".
	Role     string
	Children []Child
	Logger   *slog.Logger
	// LogStacks adds the panic stack to supervision log lines.
	LogStacks bool
	// Tally, when set, counts the role supervisor's decisions (share it
	// with the strategies of deeper supervisors of the role, so the role's
	// metrics see them all).
	Tally *Tally
	// OnGiveUp runs once, on its own goroutine, when a critical child is
	// stopped for good: the role cannot serve any more. The process should
	// log it and exit non-zero so that its orchestrator restarts it.
	OnGiveUp func(err error)
}

// spawnTimeout bounds Spawn's wait for the children to exist.
const spawnTimeout = 10 * time.Second

// ErrGaveUp is the error passed to OnGiveUp.
var ErrGaveUp = errors.New("role supervisor gave up")

// Role is a running role supervisor.
type Role struct {
	system   *actor.ActorSystem
	pid      *actor.PID
	strategy *Strategy
	children map[string]*actor.PID
}

// roleActor owns the children. It implements actor.SupervisorStrategy, so it
// decides itself how each child's failure is handled.
type roleActor struct {
	*Strategy
	cfg RoleConfig
	// spawned reports the outcome of the first spawn of the children to
	// Spawn (later calls do nothing).
	spawned func(error)
}

func (r *roleActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		// Also on a restart of the role supervisor, which has stopped all
		// children: create them again under the same names.
		var errs []error
		for _, c := range r.cfg.Children {
			if _, err := ctx.SpawnNamed(c.Props, c.Name); err != nil {
				ctx.Logger().Error("spawn child", "child", c.Name, "err", err)
				errs = append(errs, fmt.Errorf("spawn child %s: %w", c.Name, err))
			}
		}
		r.spawned(errors.Join(errs...))
	case *actor.Terminated:
		_ = msg
	}
}

// Spawn starts a role supervisor with its children under system's root and
// returns once every child exists, so messages sent to Role.Child right
// away are delivered.
func Spawn(system *actor.ActorSystem, cfg RoleConfig) (*Role, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	policies := make(map[string]Policy, len(cfg.Children))
	for _, c := range cfg.Children {
		policies[c.Name] = c.Policy
	}
	var once sync.Once
	strategy := &Strategy{
		Logger:    cfg.Logger,
		LogStacks: cfg.LogStacks,
		Policies:  policies,
		Tally:     cfg.Tally,
		OnGaveUp: func(child *actor.PID, reason any, critical bool) {
			if !critical || cfg.OnGiveUp == nil {
				return
			}
			once.Do(func() {
				err := fmt.Errorf("%w: role %s: actor %s stopped for good: %v", ErrGaveUp, cfg.Role, child.GetId(), reasonText(reason))
				cfg.Logger.Error("role supervisor gave up", "role", cfg.Role, "actor", child.GetId(), "reason", reasonText(reason))
				go cfg.OnGiveUp(err)
			})
		},
	}
	// The children are spawned by the supervisor's Started, on its own
	// goroutine: wait for it, or a message sent right after Spawn returns
	// would go to a child that does not exist yet (dead letters).
	spawnedCh := make(chan error, 1)
	var spawnedOnce sync.Once
	spawned := func(err error) { spawnedOnce.Do(func() { spawnedCh <- err }) }
	props := actor.PropsFromProducer(func() actor.Actor { return &roleActor{Strategy: strategy, cfg: cfg, spawned: spawned} })
	pid, err := system.Root.SpawnNamed(props, cfg.Role)
	if err != nil {
		return nil, fmt.Errorf("spawn role supervisor %s: %w", cfg.Role, err)
	}
	select {
	case err := <-spawnedCh:
		if err != nil {
			system.Root.Stop(pid)
			return nil, fmt.Errorf("spawn role supervisor %s: %w", cfg.Role, err)
		}
	case <-time.After(spawnTimeout):
		system.Root.Stop(pid)
		return nil, fmt.Errorf("spawn role supervisor %s: children not started within %s", cfg.Role, spawnTimeout)
	}
	children := make(map[string]*actor.PID, len(cfg.Children))
	for _, c := range cfg.Children {
		children[c.Name] = actor.NewPID(system.Address(), pid.GetId()+"/"+c.Name)
	}
	return &Role{system: system, pid: pid, strategy: strategy, children: children}, nil
}

// PID is the role supervisor's PID.
func (r *Role) PID() *actor.PID { return r.pid }

// Child returns the PID of the named child. The PID stays valid across
// restarts of the child (the name is kept).
func (r *Role) Child(name string) *actor.PID { return r.children[name] }

// Names lists the children.
func (r *Role) Names() []string {
	out := make([]string, 0, len(r.children))
	for n := range r.children {
		out = append(out, n)
	}
	return out
}

// Decisions reports the supervision decisions counted for the role (its
// Tally: the role supervisor's, and those of the strategies that share it).
func (r *Role) Decisions() map[Decision]uint64 { return r.strategy.Decisions() }

// Recent is the role's latest supervision events, newest first (its Tally's).
func (r *Role) Recent() []messages.SupervisionEvent { return r.strategy.Recent() }

// Restarts reports how many times the named child was restarted.
func (r *Role) Restarts(name string) int {
	pid := r.children[name]
	if pid == nil {
		return 0
	}
	return r.strategy.Restarts(pid.GetId())
}

// Stop poisons the role supervisor (children finish their queued messages
// first) and waits up to timeout.
func (r *Role) Stop(timeout time.Duration) error {
	done := make(chan error, 1)
	fut := r.system.Root.PoisonFuture(r.pid)
	go func() { done <- fut.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("stop role %s: %w", r.pid.GetId(), err)
		}
		return nil
	case <-time.After(timeout):
		r.system.Root.Stop(r.pid)
		return fmt.Errorf("stop role %s: not stopped within %s", r.pid.GetId(), timeout)
	}
}

// Send delivers msg to pid from outside the tree (the chaos switch, tests).
func (r *Role) Send(pid *actor.PID, msg any) { r.system.Root.Send(pid, msg) }
