package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/acceptance"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/messages"
)

var (
	errNotFound  = messages.NewError(messages.CodeNotFound, "test not found")
	errForbidden = messages.NewError(messages.CodeForbidden, "this test belongs to another user")
)

// handleResult is the micro handler of sensorhub.sensor.result. Each read
// runs on its own goroutine (bounded by maxReaders), so that reads neither
// wait for each other nor for the writer's transactions.
func (s *Service) handleResult(req micro.Request) {
	if s.stopping.Load() {
		_ = natsx.ReplyError(req, errStopping)
		return
	}
	req = natsx.Detach(s.nc, req) // answered from another goroutine
	select {
	case s.readers <- struct{}{}:
	default:
		_ = natsx.ReplyError(req, errOverloaded)
		return
	}
	if !s.goTracked(func() {
		defer func() { <-s.readers }()
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("result read panicked", "reason", r, "stack", string(debug.Stack()))
				_ = natsx.ReplyError(req, errInternal)
			}
		}()
		rec, err := s.readResult(req.Data(), req.Headers())
		if err != nil {
			_ = natsx.ReplyError(req, err)
			return
		}
		_ = natsx.ReplyJSON(req, rec)
	}) {
		<-s.readers
		_ = natsx.ReplyError(req, errStopping)
	}
}

// readResult checks the token, reads the test and lets its owner or an
// admin see it.
func (s *Service) readResult(data []byte, hdr micro.Headers) (messages.TestRecord, error) {
	r, err := messages.DecodeGetResult(data)
	if err != nil {
		return messages.TestRecord{}, err
	}
	token := messages.CallerToken(headerValue(hdr, messages.HeaderAuthorization), r.Token)
	if token == "" {
		return messages.TestRecord{}, messages.ErrUnauthorized
	}
	ctx, cancel := context.WithTimeout(s.ctx, authTimeout)
	defer cancel()
	who, err := s.cfg.Auth.Validate(ctx, token)
	if err != nil {
		return messages.TestRecord{}, s.authError(err)
	}
	if !who.Valid || who.Subject == "" {
		return messages.TestRecord{}, messages.ErrUnauthorized
	}
	t, err := dbCall(s, func(ctx context.Context) (store.Test, error) {
		return s.cfg.Store.GetTest(ctx, r.TestID)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return messages.TestRecord{}, errNotFound
	case err != nil:
		return messages.TestRecord{}, s.dbError(err, "get test")
	case t.Owner != who.Subject && !who.HasRole(messages.RoleAdmin):
		return messages.TestRecord{}, errForbidden
	}
	return recordOf(t), nil
}

// recordOf is the wire form of a stored test with its evaluation.
func recordOf(t store.Test) messages.TestRecord {
	rec := messages.TestRecord{
		TestID:      t.ID,
		Status:      t.Status,
		SensorType:  t.SensorType,
		SensorID:    t.SensorID,
		Owner:       t.Owner,
		AuthMode:    t.AuthMode,
		Reason:      t.Reason,
		Attempts:    t.Attempts,
		CreatedAt:   t.CreatedAt,
		UpdatedAt:   t.UpdatedAt,
		CompletedAt: t.CompletedAt,
	}
	if len(t.Result) > 0 {
		var ev acceptance.Evaluation
		if err := json.Unmarshal(t.Result, &ev); err == nil {
			stats := ev.Stats
			rec.Source, rec.Unit, rec.Verdict, rec.Checks, rec.Stats = ev.Source, ev.Unit, ev.Verdict, ev.Checks, &stats
		}
	}
	if rec.Unit == "" {
		if spec, ok := acceptance.LookupSpec(t.SensorType); ok {
			rec.Unit = spec.Unit
		}
	}
	return rec
}

// handleTypes is the micro handler of sensorhub.sensor.types.
func (s *Service) handleTypes(req micro.Request) {
	_ = natsx.ReplyJSON(req, messages.SensorTypesReply{Types: acceptance.Catalogue()})
}

// handleOutbox is the micro handler of sensorhub.sensor.outbox.
func (s *Service) handleOutbox(req micro.Request) {
	n, err := dbCall(s, func(ctx context.Context) (int64, error) {
		return s.cfg.Store.OutboxBacklog(ctx)
	})
	if err != nil {
		_ = natsx.ReplyError(req, s.dbError(err, "outbox backlog"))
		return
	}
	_ = natsx.ReplyJSON(req, messages.OutboxStats{Backlog: n})
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
		s.dbState.Set(err)
	}
	var natsErr error
	if !s.nc.IsConnected() {
		natsErr = fmt.Errorf("%w (%s)", natsx.ErrNotConnected, s.nc.Status())
	}
	s.health.Set("nats", natsErr)
	return s.health.Report(s.instance)
}
