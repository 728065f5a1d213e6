package auth

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/actors/supervise"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// Dependency names in the health report.
const (
	DepDatabase = "database"
	DepNATS     = "nats"
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

// Health reports the role (see package health for the rule): the database,
// pinged directly within ctx (not through its breaker, so that the report
// shows the database and the breaker each as they are), NATS, and the
// breakers.
func (s *Service) Health(ctx context.Context) messages.HealthReply {
	s.health.Set(DepDatabase, s.cfg.Store.Ping(ctx))
	var natsErr error
	if !s.nc.IsConnected() {
		natsErr = fmt.Errorf("%w (%s)", natsx.ErrNotConnected, s.nc.Status())
	}
	s.health.Set(DepNATS, natsErr)
	id, _ := s.instance.Load().(string)
	return s.health.Report(id)
}
