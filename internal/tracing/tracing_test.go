package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/tracing"
	"sensorhub/internal/tracing/tracingtest"
)

const (
	validTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	validParent  = "00-" + validTraceID + "-00f067aa0ba902b7-01"
)

func TestTraceparentRoundTrip(t *testing.T) {
	sc := tracing.SpanContext(tracing.FromTraceparent(context.Background(), validParent))
	if !sc.IsValid() || !sc.IsRemote() || sc.TraceID().String() != validTraceID || !sc.IsSampled() {
		t.Fatalf("FromTraceparent(%q) = %+v", validParent, sc)
	}
	if got := tracing.Traceparent(sc); got != validParent {
		t.Fatalf("Traceparent = %q, want %q", got, validParent)
	}
	if got := tracing.Traceparent(trace.SpanContext{}); got != "" {
		t.Fatalf("Traceparent of no span = %q, want empty", got)
	}
}

// A malformed traceparent is ignored: the next span starts a new trace.
func TestMalformedTraceparentStartsANewTrace(t *testing.T) {
	rec := tracingtest.New(t)
	for _, bad := range []string{
		"garbage",
		"00-" + validTraceID + "-00f067aa0ba902b7",                // no flags
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
		"00-" + validTraceID + "-0000000000000000-01",             // zero span id
		"ff-" + validTraceID + "-00f067aa0ba902b7-01",             // forbidden version
		"00-" + strings.ToUpper(validTraceID) + "-00f067aa0ba902b7-01",
		"00-" + validTraceID + "-00f067aa0ba902b7-01-extra",
		strings.Repeat("0", 4096),
	} {
		ctx := tracing.FromTraceparent(context.Background(), bad)
		if sc := tracing.SpanContext(ctx); sc.IsValid() {
			t.Errorf("FromTraceparent(%q) = valid %v, want none", bad, sc)
		}
		_, span := rec.Tracer.Start(ctx, "x")
		if span.SpanContext().TraceID().String() == validTraceID {
			t.Errorf("%q: span continued trace %s", bad, validTraceID)
		}
		span.End()
	}
	for _, s := range rec.Ended() {
		if s.Parent().IsValid() {
			t.Errorf("span of a malformed traceparent has parent %v", s.Parent())
		}
	}
}

func TestNewIsOffWithoutEndpoint(t *testing.T) {
	tr, err := tracing.New(tracing.Config{}, "sensorhub-test")
	if err != nil || tr != nil {
		t.Fatalf("New without endpoint = %v, %v; want nil, nil", tr, err)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of nil: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg tracing.Config
		ok  bool
	}{
		{tracing.Config{}, true},
		{tracing.Config{Endpoint: "http://127.0.0.1:4318"}, true},
		{tracing.Config{Endpoint: "https://collector:4318/v1/traces", SampleRatio: 0.5}, true},
		{tracing.Config{Endpoint: "127.0.0.1:4318"}, false},
		{tracing.Config{Endpoint: "ftp://x"}, false},
		{tracing.Config{Endpoint: "http://x", SampleRatio: 1.5}, false},
		{tracing.Config{Endpoint: "http://x", SampleRatio: -1}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tc.cfg, err, tc.ok)
		}
	}
}

// A line logged with a span's context carries its trace and span ids;
// one without carries neither.
func TestLogHandlerAddsTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("role", "test")
	rec := tracingtest.New(t)
	ctx, span := rec.Tracer.Start(context.Background(), "x")
	defer span.End()
	log.InfoContext(ctx, "in a request")
	log.Info("outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log: %q", buf.String())
	}
	var in, out map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &out); err != nil {
		t.Fatal(err)
	}
	if in[tracing.LogTraceID] != span.SpanContext().TraceID().String() || in[tracing.LogSpanID] != span.SpanContext().SpanID().String() || in["role"] != "test" {
		t.Fatalf("line in a request = %v, want trace %s", in, span.SpanContext().TraceID())
	}
	if _, ok := out[tracing.LogTraceID]; ok {
		t.Fatalf("line outside a request = %v, want no trace_id", out)
	}
}
