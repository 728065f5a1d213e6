package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/messages"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one export of a batch of spans to the
	// collector (the exporter's own retries included).
	DefaultTimeout = 5 * time.Second
	// ShutdownTimeout bounds the flush of the spans still queued when a
	// process stops.
	ShutdownTimeout = 5 * time.Second
	// TracesPath is the OTLP/HTTP path of traces, appended to an endpoint
	// given without a path.
	TracesPath = "/v1/traces"
	// instrumentationName names the tracer of every span sensorhub makes.
	instrumentationName = "sensorhub"
)

// Config configures tracing. The zero value is off.
type Config struct {
	// Endpoint is the OTLP/HTTP collector's URL, e.g.
	// http://127.0.0.1:4318 (TracesPath is appended when the URL has no
	// path) or https://collector:4318/v1/traces. Empty: tracing is off.
	Endpoint string
	// SampleRatio is the share of new traces recorded, 0 to 1 (default 1,
	// every trace); a request that arrives with a traceparent follows its
	// caller's decision (parent-based).
	SampleRatio float64
	// Timeout bounds one export (default DefaultTimeout).
	Timeout time.Duration
	// Version is the binary's version, a resource attribute of every span.
	Version string
	// Logger gets the exporter's errors (a collector that is down), at
	// most one line per errorLogEvery; nil leaves OpenTelemetry's default
	// (the standard log package).
	Logger *slog.Logger
}

// errorLogEvery bounds the lines about failed exports: while a collector
// is down every batch fails, and the log should say so, not repeat it.
const errorLogEvery = time.Minute

// errorLogger is the process's OpenTelemetry error handler: one slog line
// per errorLogEvery.
type errorLogger struct {
	log  *slog.Logger
	last atomic.Int64 // unix nanoseconds of the last line
}

func (e *errorLogger) Handle(err error) {
	now := time.Now().UnixNano()
	last := e.last.Load()
	if now-last < int64(errorLogEvery) || !e.last.CompareAndSwap(last, now) {
		return
	}
	e.log.Warn("tracing: spans not exported (more such errors are not logged for a minute)", "err", err)
}

// Validate refuses settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Endpoint != "" {
		if _, err := tracesURL(c.Endpoint); err != nil {
			errs = append(errs, err)
		}
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("otlp sample ratio must be within 0 and 1, got %v", c.SampleRatio))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("otlp timeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid tracing config: %w", err)
	}
	return nil
}

// tracesURL is the URL spans are posted to.
func tracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("otlp endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("otlp endpoint %q: want an http:// or https:// URL with a host", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = TracesPath
	}
	return u.String(), nil
}

// Tracer makes the spans of one role. A nil *Tracer is tracing off.
type Tracer struct {
	tracer   trace.Tracer
	provider *sdktrace.TracerProvider // nil when made by NewFromProvider
}

// New starts tracing for service (e.g. "sensorhub-edge") as cfg says: an
// OTLP/HTTP exporter behind a BatchSpanProcessor. It returns nil (tracing
// off) when cfg.Endpoint is empty. The exporter does not connect here: a
// collector that is down costs dropped spans, never a failed start.
func New(cfg Config, service string) (*Tracer, error) {
	if cfg.Endpoint == "" {
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SampleRatio == 0 {
		cfg.SampleRatio = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger != nil {
		// Process-wide in OpenTelemetry: the last role's logger wins, and
		// every role of a process logs through the same handler anyway.
		otel.SetErrorHandler(&errorLogger{log: cfg.Logger})
	}
	endpoint, _ := tracesURL(cfg.Endpoint)
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(endpoint),
		otlptracehttp.WithTimeout(cfg.Timeout),
		// Retries of one batch stay within the export timeout.
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond,
			MaxInterval: time.Second, MaxElapsedTime: cfg.Timeout}))
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service), semconv.ServiceVersion(cfg.Version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithExportTimeout(cfg.Timeout)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return &Tracer{tracer: tp.Tracer(instrumentationName), provider: tp}, nil
}

// NewFromProvider makes a Tracer on tp (tests use an in-memory recorder).
// Its Shutdown does nothing: tp's owner shuts it down.
func NewFromProvider(tp trace.TracerProvider) *Tracer {
	return &Tracer{tracer: tp.Tracer(instrumentationName)}
}

// Shutdown exports the spans still queued and stops the exporter, within
// ctx's deadline (ShutdownTimeout when it has none).
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ShutdownTimeout)
		defer cancel()
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down tracing: %w", err)
	}
	return nil
}

// Start starts a span as a child of the span in ctx (a new trace when
// there is none).
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, name, opts...)
}

// propagator reads and writes traceparent (and tracestate) values.
var propagator = propagation.TraceContext{}

// Traceparent is the W3C traceparent of sc ("" when sc is not valid).
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	c := make(propagation.MapCarrier, 1)
	propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c[HeaderTraceparent]
}

// FromTraceparent returns ctx with the remote span context that tp names
// as its parent. A malformed or empty tp leaves ctx as it is, so that the
// next span starts a new trace.
func FromTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{HeaderTraceparent: tp})
}

// HeaderTraceparent is the W3C Trace Context header (messages spells it
// for every transport).
const HeaderTraceparent = messages.HeaderTraceparent

// SpanContext is the span context of the span in ctx.
func SpanContext(ctx context.Context) trace.SpanContext { return trace.SpanContextFromContext(ctx) }
