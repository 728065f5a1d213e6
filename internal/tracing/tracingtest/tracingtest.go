// Package tracingtest records the spans of a tracing.Tracer in memory, for
// the tests of the roles that trace.
package tracingtest

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/tracing"
)

// Recorder is a Tracer whose ended spans a test reads back.
type Recorder struct {
	Tracer *tracing.Tracer
	rec    *tracetest.SpanRecorder
}

// New returns a recorder that samples every trace; it is shut down by
// t.Cleanup.
func New(t testing.TB) *Recorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &Recorder{Tracer: tracing.NewFromProvider(tp), rec: rec}
}

// Ended returns the spans ended so far.
func (r *Recorder) Ended() []sdktrace.ReadOnlySpan { return r.rec.Ended() }

// Named returns the ended spans whose name is name.
func (r *Recorder) Named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// Attr returns the value of span's attribute key ("" when it has none).
func Attr(span sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range span.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// HasAttrs says which of want (key, value pairs) span lacks ("" when none).
func HasAttrs(span sdktrace.ReadOnlySpan, want map[string]string) string {
	var missing []string
	for k, v := range want {
		if got := Attr(span, k); got != v {
			missing = append(missing, k+"="+v+" (got "+got+")")
		}
	}
	return strings.Join(missing, ", ")
}

// TraceOf parses a traceparent, failing the test if it is not valid.
func TraceOf(t testing.TB, traceparent string) trace.SpanContext {
	t.Helper()
	sc := tracing.SpanContext(tracing.FromTraceparent(context.Background(), traceparent))
	if !sc.IsValid() {
		t.Fatalf("traceparent %q is not valid", traceparent)
	}
	return sc
}
