package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/actors/supervise"
	"sensorhub/internal/acceptance"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// submission is one submit request on its way through the role. It is
// answered exactly once, and answering frees its in-flight slot.
type submission struct {
	s        *Service
	req      micro.Request
	answered atomic.Bool

	// bytes is what it holds, counted in the pipeline until it is answered:
	// reserved at admission, settled once decoded (written by the intake
	// only, before the writer owns it).
	bytes int64

	// Set by the intake, read by the writer once it owns the submission.
	body  messages.SubmitTest
	token string
	test  store.NewTest

	// span is the intake's span of the submission, from its arrival to its
	// answer, and insertSpan its share of the insert group commit (the
	// writer's, once it owns the submission); both nil with tracing off.
	span, insertSpan trace.Span
}

func (p *submission) accept(a messages.TestAccepted) {
	if p.answered.CompareAndSwap(false, true) {
		if err := natsx.ReplyJSON(p.req, a); err != nil {
			p.s.log.DebugContext(p.logContext(), "reply to submission", "err", err)
		}
		p.s.pipe.answered(p.bytes)
		p.s.outcomes.accepted()
		p.endSpans(nil)
	}
}

func (p *submission) fail(err error) {
	if p.answered.CompareAndSwap(false, true) {
		if rerr := natsx.ReplyError(p.req, err); rerr != nil {
			p.s.log.DebugContext(p.logContext(), "reply to submission", "err", rerr)
		}
		p.s.pipe.answered(p.bytes)
		p.s.outcomes.refused(err)
		p.endSpans(err)
	}
}

// endSpans ends the submission's spans as it is answered.
func (p *submission) endSpans(err error) {
	if p.span == nil {
		return
	}
	if p.insertSpan != nil {
		tracing.End(p.insertSpan, err)
	}
	if p.test.ID != "" {
		p.span.SetAttributes(attrTestID.String(p.test.ID))
	}
	tracing.End(p.span, err)
}

// spanContext is the submission's span context (not valid with tracing off).
func (p *submission) spanContext() trace.SpanContext {
	if p.span == nil {
		return trace.SpanContext{}
	}
	return p.span.SpanContext()
}

// logContext is the context of the submission's log lines: with its span,
// so that they carry its trace_id.
func (p *submission) logContext() context.Context {
	if p.span == nil {
		return context.Background()
	}
	return trace.ContextWithSpan(context.Background(), p.span)
}

// Span attributes of the role's own (beyond the semantic conventions).
var (
	attrTestID     = attribute.Key("sensorhub.test_id")
	attrSensorType = attribute.Key("sensorhub.sensor_type")
	attrStatus     = attribute.Key("sensorhub.status")
	attrApplied    = attribute.Key("sensorhub.applied")
)

// startSubmitSpan starts the intake's span of a submission, continuing the
// trace named by the request's traceparent header (a malformed one is
// ignored: the span starts a new trace).
func (s *Service) startSubmitSpan(req micro.Request) trace.Span {
	ctx := tracing.FromTraceparent(context.Background(), headerValue(req.Headers(), messages.HeaderTraceparent))
	_, span := s.cfg.Tracer.StartMessaging(ctx, tracing.Messaging{System: tracing.SystemNATS, Destination: req.Subject(),
		Operation: "process", Kind: trace.SpanKindServer, BodySize: len(req.Data())})
	return span
}

// settle replaces the bytes reserved at admission with the n the
// submission holds until it is answered (payload, readings, request).
func (p *submission) settle(n int) {
	p.s.pipe.settled(p.bytes, int64(n))
	p.bytes = int64(n)
}

// Messages of the intake.
type (
	// submitReceived hands a submission from the micro handler to the intake.
	submitReceived struct{ sub *submission }
	// submitAuthenticated is the outcome of checking a submission's token.
	submitAuthenticated struct {
		sub   *submission
		reply messages.ValidateReply
		err   error
	}
)

// handleSubmit is the micro handler of sensorhub.sensor.submit. It never
// blocks: past MaxInFlight it refuses at once, else it hands the request to
// the intake actor.
func (s *Service) handleSubmit(req micro.Request) {
	if s.stopping.Load() {
		_ = natsx.ReplyError(req, errStopping)
		s.outcomes.refused(errStopping)
		return
	}
	if s.outbox.full() {
		_ = natsx.ReplyError(req, errBacklogFull)
		s.outcomes.refused(errBacklogFull)
		return
	}
	size := submissionReserve(len(req.Data()))
	if !s.pipe.admit(size) {
		_ = natsx.ReplyError(req, errOverloaded)
		s.outcomes.refused(errOverloaded)
		return
	}
	sub := &submission{s: s, req: natsx.Detach(s.nc, req), bytes: size}
	if s.cfg.Tracer != nil {
		sub.span = s.startSubmitSpan(req)
	}
	s.tasks.send(s.intakePID, &submitReceived{sub: sub})
}

// intake validates submissions, has their tokens checked off the actor's
// goroutine, and hands the authenticated tests to the writer.
type intake struct {
	s *Service
}

func (a *intake) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *submitReceived:
		a.received(msg.sub)
	case *submitAuthenticated:
		a.authenticated(ctx, msg)
	}
}

func (a *intake) received(sub *submission) {
	defer supervise.ReplyOnPanic(func(any) { sub.fail(errInternal) })
	body, token, err := decodeSubmit(sub.req.Data(), sub.req.Headers())
	if err != nil {
		sub.fail(err)
		return
	}
	sub.body, sub.token = body, token
	// The token check is a network call: it runs on its own goroutine,
	// bounded by the in-flight limit, and comes back as a message.
	s := a.s
	if !s.tasks.goTracked(func() {
		ctx, cancel := context.WithTimeout(s.ctx, authTimeout)
		defer cancel()
		reply, err := s.cfg.Auth.Validate(ctx, token)
		s.tasks.send(s.intakePID, &submitAuthenticated{sub: sub, reply: reply, err: err})
	}) {
		sub.fail(errStopping)
	}
}

func (a *intake) authenticated(ctx actor.Context, msg *submitAuthenticated) {
	sub := msg.sub
	defer supervise.ReplyOnPanic(func(any) { sub.fail(errInternal) })
	if msg.err != nil {
		sub.fail(a.s.authError(msg.err))
		return
	}
	if !msg.reply.Valid || msg.reply.Subject == "" {
		sub.fail(messages.ErrUnauthorized)
		return
	}
	id, err := uuid.NewV7()
	if err != nil {
		a.s.log.Error("new test id", "err", err)
		sub.fail(errInternal)
		return
	}
	request, err := json.Marshal(sub.body) // the token was cleared by decodeSubmit
	if err != nil {
		sub.fail(errInternal)
		return
	}
	sub.settle(len(sub.req.Data()) + 8*len(sub.body.Readings) + len(request))
	mode := msg.reply.AuthMode
	if mode == "" {
		mode = messages.AuthModeOnline
	}
	// A key's fingerprint tells its retry from its reuse for another body.
	var fingerprint string
	if sub.body.IdempotencyKey != "" {
		fingerprint = sub.body.Fingerprint()
	}
	sub.test = store.NewTest{
		ID:             id.String(),
		Owner:          msg.reply.Subject,
		SensorType:     sub.body.SensorType,
		SensorID:       sub.body.SensorID,
		Request:        request,
		IdempotencyKey: sub.body.IdempotencyKey,
		Fingerprint:    fingerprint,
		AuthMode:       mode,
		LeaseUntil:     time.Now().Add(a.s.cfg.Lease).UTC(),
	}
	ctx.Send(a.s.writerPID, &insertTest{sub: sub})
}

// decodeSubmit parses a submission: the body (messages.DecodeSubmitTest),
// the sensor type against the catalogue, the idempotency key (header first,
// then body) and the token (Authorization header first, then body). The
// returned body carries no token.
func decodeSubmit(data []byte, hdr micro.Headers) (messages.SubmitTest, string, error) {
	body, err := messages.DecodeSubmitTest(data, "")
	if err != nil {
		return messages.SubmitTest{}, "", err
	}
	if _, ok := acceptance.LookupSpec(body.SensorType); !ok {
		// The shape was validated: the type is a short [a-z0-9_] token.
		return messages.SubmitTest{}, "", &messages.Error{Code: messages.CodeUnknownSensorType,
			Message: fmt.Sprintf("unknown sensor type %q", body.SensorType)}
	}
	if err := body.UseIdempotencyKey(headerValue(hdr, messages.HeaderIdempotencyKey)); err != nil {
		return messages.SubmitTest{}, "", err
	}
	token := messages.CallerToken(headerValue(hdr, messages.HeaderAuthorization), body.Token)
	body.Token = ""
	if token == "" {
		return messages.SubmitTest{}, "", messages.ErrUnauthorized
	}
	return body, token, nil
}

// authError turns an Authenticator error into what the caller gets: its own
// envelope (unauthorized, auth unavailable...), else auth unavailable.
func (s *Service) authError(err error) *messages.Error {
	var e *messages.Error
	switch {
	case errors.As(err, &e) && e != nil:
		return e
	case errors.Is(err, context.Canceled) && s.ctx.Err() != nil:
		return errStopping
	}
	s.log.Warn("token check failed", "err", err)
	return messages.ErrAuthUnavailable
}

// headerValue returns the first value of the header key, matched without
// regard to case (NATS headers are case-sensitive, HTTP ones are not, and
// `nats req -H` sends what the user typed).
func headerValue(h micro.Headers, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}
