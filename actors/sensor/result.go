package sensor

import (
	"context"
	"encoding/json"
	"errors"
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
	if !s.tasks.goTracked(func() {
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
	t, err := dbCall(s.data, func(ctx context.Context) (store.Test, error) {
		return s.cfg.Store.GetTest(ctx, r.TestID)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return messages.TestRecord{}, errNotFound
	case err != nil:
		return messages.TestRecord{}, s.data.errorOf(err, "get test")
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
