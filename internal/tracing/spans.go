package tracing

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Messaging systems, as the semantic conventions name them.
const (
	SystemNATS  = "nats"
	SystemKafka = "kafka"
)

// Messaging describes a messaging span in the terms of the OpenTelemetry
// semantic conventions: its name is "<operation> <destination>".
type Messaging struct {
	System      string // SystemNATS or SystemKafka
	Destination string // the subject or topic
	// Operation is the operation's name ("request", "publish", "process",
	// "send"); its type follows from Kind: "send" for a client or
	// producer span, "process" for a server or consumer span.
	Operation string
	Kind      trace.SpanKind
	MessageID string // "" for none
	BodySize  int    // bytes of the payload; 0 for unknown
}

// StartMessaging starts a messaging span as a child of the span in ctx.
func (t *Tracer) StartMessaging(ctx context.Context, m Messaging, extra ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs := make([]attribute.KeyValue, 0, 6+len(extra))
	opType := semconv.MessagingOperationTypeSend
	if m.Kind == trace.SpanKindServer || m.Kind == trace.SpanKindConsumer {
		opType = semconv.MessagingOperationTypeProcess
	}
	attrs = append(attrs,
		semconv.MessagingSystemKey.String(m.System),
		semconv.MessagingDestinationName(m.Destination),
		semconv.MessagingOperationName(m.Operation),
		opType,
	)
	if m.MessageID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(m.MessageID))
	}
	if m.BodySize > 0 {
		attrs = append(attrs, semconv.MessagingMessageBodySize(m.BodySize))
	}
	attrs = append(attrs, extra...)
	return t.tracer.Start(ctx, m.Operation+" "+m.Destination, trace.WithSpanKind(m.Kind), trace.WithAttributes(attrs...))
}

// StartHTTPServer starts the server span of an HTTP request, continuing the
// trace of its traceparent header (a malformed one is ignored: a new trace
// starts). Its name is the method until EndHTTPServer knows the route.
func (t *Tracer) StartHTTPServer(r *http.Request) (context.Context, trace.Span) {
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(r.Method),
		semconv.URLPath(r.URL.Path),
		semconv.URLScheme(scheme),
		semconv.NetworkProtocolVersion(strings.TrimPrefix(r.Proto, "HTTP/")),
	))
}

// EndHTTPServer names the span after its route ("POST /test/sensor/{sensor_type}";
// the method alone for a request no route matched), records the status
// (a 5xx is an error, as the conventions say for a server) and ends it.
func EndHTTPServer(span trace.Span, method, route string, status int) {
	if route != "" {
		span.SetName(route)
		span.SetAttributes(semconv.HTTPRoute(strings.TrimPrefix(route, method+" ")))
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
