package auth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/actors/supervise"
	"sensorhub/messages"
)

// healthActor answers the health endpoint.
type healthActor struct{ s *Service }

func (a *healthActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *healthRequest:
		defer m.done()
		defer supervise.ReplyOnPanic(a.s.replyInternal(m.req))
		ctx, cancel := context.WithTimeout(a.s.calls, a.s.db.CallTimeout())
		defer cancel()
		a.s.reply(m.req, a.s.Health(ctx), nil)
	}
}

// Health reports the role: the database (pinged through the breaker, so an
// open breaker reports it down without a call) and NATS, and the breakers.
// Status is "ok" when every dependency is up, else "degraded".
func (s *Service) Health(ctx context.Context) messages.HealthReply {
	dbErr := s.db.Do(ctx, s.cfg.Store.Ping)
	var natsErr error
	if !s.nc.IsConnected() {
		natsErr = errors.New("nats " + s.nc.Status().String())
	}
	deps := map[string]messages.DependencyHealth{
		"database": s.deps.observe("database", dbErr),
		"nats":     s.deps.observe("nats", natsErr),
	}
	status := messages.HealthOK
	for _, d := range deps {
		if d.Status != messages.HealthUp {
			status = messages.HealthDegraded
		}
	}
	reply := messages.HealthReply{
		Role:            messages.RoleAuth,
		Status:          status,
		Dependencies:    deps,
		CircuitBreakers: s.breakers.Health(),
	}
	if id, ok := s.instance.Load().(string); ok {
		reply.Instance = id
	}
	return reply
}

// dependencies remembers each dependency's status and since when, and logs
// each change once.
type dependencies struct {
	log   *slog.Logger
	mu    sync.Mutex
	state map[string]messages.DependencyHealth
}

func (d *dependencies) observe(name string, err error) messages.DependencyHealth {
	now := time.Now().UTC()
	cur := messages.DependencyHealth{Status: messages.HealthUp}
	if err != nil {
		cur.Status = messages.HealthDown
		cur.LastError = err.Error()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == nil {
		d.state = map[string]messages.DependencyHealth{}
	}
	prev, seen := d.state[name]
	switch {
	case seen && prev.Status == cur.Status:
		cur.Since = prev.Since
	default:
		cur.Since = &now
		if seen || cur.Status == messages.HealthDown {
			if cur.Status == messages.HealthDown {
				d.log.Warn("dependency down", "dependency", name, "err", cur.LastError)
			} else {
				d.log.Info("dependency up again", "dependency", name)
			}
		}
	}
	d.state[name] = cur
	return cur
}
