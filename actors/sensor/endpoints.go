package sensor

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/acceptance"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// The role's small endpoints, answered on the micro service's goroutines:
// the catalogue, the outbox backlog and health. Submissions (intake.go) and
// results (result.go) have files of their own.

// handleTypes is the micro handler of sensorhub.sensor.types.
func (s *Service) handleTypes(req micro.Request) {
	_ = natsx.ReplyJSON(req, messages.SensorTypesReply{Types: acceptance.Catalogue()})
}

// handleOutbox is the micro handler of sensorhub.sensor.outbox.
func (s *Service) handleOutbox(req micro.Request) {
	n, err := dbCall(s.data, func(ctx context.Context) (int64, error) {
		return s.cfg.Store.OutboxBacklog(ctx)
	})
	if err != nil {
		_ = natsx.ReplyError(req, s.data.errorOf(err, "outbox backlog"))
		return
	}
	_ = natsx.ReplyJSON(req, messages.OutboxStats{Backlog: n})
}

// healthStats is the health endpoint's data in the service's stats
// (`nats micro stats`): the breakers, the latest supervision events and
// breaker transitions, and the flow, from memory.
func (s *Service) healthStats() any {
	flow := s.Flow()
	return messages.HealthStats{
		CircuitBreakers:    s.breakers.Health(),
		Supervision:        s.supervision.Recent(),
		BreakerTransitions: s.breakers.Recent(),
		Flow:               &flow,
	}
}

// handleHealth is the micro handler of sensorhub.sensor.health.
func (s *Service) handleHealth(req micro.Request) {
	_ = natsx.ReplyJSON(req, s.Health(s.ctx))
}

// Health reports the role's dependencies (database, nats, jetstream) and its
// circuit breakers ("sensor.database", "sensor.jetstream", and the
// authenticator's when it exposes one); package health has the rule. The
// database is pinged directly (bounded by a short deadline, not through its
// breaker, so that the report shows the database and the breaker each as
// they are); JetStream is as the last relay round found it.
func (s *Service) Health(ctx context.Context) messages.HealthReply {
	pctx, cancel := context.WithTimeout(ctx, healthPingTimeout)
	err := s.cfg.Store.Ping(pctx)
	cancel()
	if err == nil || isDatabaseOutage(err) {
		s.data.state.Set(err)
	}
	var natsErr error
	if !s.nc.IsConnected() {
		natsErr = fmt.Errorf("%w (%s)", natsx.ErrNotConnected, s.nc.Status())
	}
	s.health.Set("nats", natsErr)
	return s.health.Report(s.instance)
}
