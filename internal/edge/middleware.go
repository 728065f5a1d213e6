package edge

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/metrics"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// statusWriter remembers the status written, for the panic handler (which
// may only answer if nothing was written yet) and the debug log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument recovers panics into a 500 JSON envelope (logged with the
// stack), counts every request in the metrics (when set), traces it (when
// tracing is on; see traced) and logs one line per request at debug level.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		var span trace.Span
		if s.cfg.Tracer != nil && traced(r.URL.Path) {
			var ctx context.Context
			ctx, span = s.cfg.Tracer.StartHTTPServer(r)
			// The answer names the request's span, so that a user can
			// look their request up; set before any handler writes.
			w.Header().Set(messages.HeaderTraceparent, tracing.Traceparent(span.SpanContext()))
			// The mux sets Pattern on this request, which the deferred
			// function reads.
			r = r.WithContext(ctx)
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic in http handler", "method", r.Method, "route", r.Pattern,
					"panic", v, "stack", string(debug.Stack()))
				if sw.status != 0 {
					// Part of an answer is out: cut the connection rather
					// than let the client take it for a whole one.
					panic(http.ErrAbortHandler)
				}
				writeError(sw, errInternal)
			}
			if s.routeMetrics != nil {
				rt := s.routeMetrics[r.Pattern]
				if rt == nil {
					rt = s.routeMetrics[""]
				}
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				rt.Observe(status, time.Since(start))
			}
			if span != nil {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				tracing.EndHTTPServer(span, r.Method, r.Pattern, status)
			}
			if s.log.Enabled(r.Context(), slog.LevelDebug) {
				s.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
					slog.String("method", r.Method), slog.String("route", r.Pattern),
					slog.String("path", truncate(r.URL.Path, 128)), slog.Int("status", sw.status),
					slog.Duration("took", time.Since(start)))
			}
		}()
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(sw, r)
	})
}

// traced says whether requests for path get a span: all but liveness,
// readiness and the metrics scrape, which a collector would otherwise
// receive every few seconds from every probe.
func traced(path string) bool {
	switch path {
	case "/healthz", "/readyz", metrics.Path:
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// muxErrorWriter turns the ServeMux's own plain-text answers for requests
// that matched no route (404, 405 and the 400 for "*") into JSON envelopes.
// A request that matched a route has r.Pattern set and is left alone.
type muxErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (w *muxErrorWriter) WriteHeader(code int) {
	if w.r.Pattern == "" && !w.swallow {
		switch code {
		case http.StatusNotFound:
			w.swallow = true
			writeError(w.ResponseWriter, errNotFound)
			return
		case http.StatusMethodNotAllowed: // the mux has set Allow
			w.swallow = true
			writeError(w.ResponseWriter, errMethodNotAllowed)
			return
		case http.StatusBadRequest:
			w.swallow = true
			writeError(w.ResponseWriter, errBadRequestLine)
			return
		}
	}
	if w.swallow {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *muxErrorWriter) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *muxErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// jsonMuxErrors wraps mux so that even its built-in errors are envelopes.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&muxErrorWriter{ResponseWriter: w, r: r}, r)
	})
}
