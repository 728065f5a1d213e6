package edge

import (
	"context"
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// call sends req to subject through b and decodes the reply into out (when
// not nil). The raw reply is returned for success answers, which the edge
// passes on as they came. While tracing is on, each send that passes the
// breaker is a client span, named in the request's traceparent header.
func (s *Server) call(ctx context.Context, b *breaker.Breaker, subject string, req any, hdr nats.Header, out any) (*nats.Msg, error) {
	return breaker.Call(ctx, b, func(ctx context.Context) (*nats.Msg, error) {
		if s.cfg.Tracer == nil {
			return natsx.Request(ctx, s.nc, subject, req, hdr, out)
		}
		return s.tracedRequest(ctx, subject, req, hdr, out)
	})
}

// tracedRequest is one NATS request as a messaging client span, with the
// span's traceparent in a copy of hdr (the caller's headers are reused by
// its retries and may be shared).
func (s *Server) tracedRequest(ctx context.Context, subject string, req any, hdr nats.Header, out any) (*nats.Msg, error) {
	m := tracing.Messaging{System: tracing.SystemNATS, Destination: subject, Operation: "request", Kind: trace.SpanKindClient}
	if data, ok := req.([]byte); ok {
		m.BodySize = len(data)
	}
	ctx, span := s.cfg.Tracer.StartMessaging(ctx, m)
	h := make(nats.Header, len(hdr)+1)
	for k, v := range hdr {
		h[k] = v
	}
	h.Set(messages.HeaderTraceparent, tracing.Traceparent(span.SpanContext()))
	msg, err := natsx.Request(ctx, s.nc, subject, req, h, out)
	tracing.End(span, err)
	return msg, err
}

// fail answers a failed call: the service's own envelope as it came, the
// service's "unavailable" envelope when it did not answer or its breaker
// is open, and an internal error for a reply that could not be read.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, b *breaker.Breaker, unavailable *messages.Error, err error) {
	var e *messages.Error
	switch {
	case errors.As(err, &e):
		writeError(w, e)
	case errors.Is(err, breaker.ErrOpen), natsx.IsUnreachable(err):
		s.log.DebugContext(r.Context(), "downstream unavailable", "breaker", b.Name(), "route", r.Pattern, "err", err)
		writeError(w, unavailable)
	case r.Context().Err() != nil:
		writeError(w, errCancelled)
	default:
		s.log.WarnContext(r.Context(), "bad reply from downstream", "breaker", b.Name(), "route", r.Pattern, "err", err)
		writeError(w, errInternal)
	}
}
