package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsx"
	"sensorhub/internal/tracing"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Common is configuration shared by every long-running role.
type Common struct {
	NATSURL string
	// NATSCreds is the role's identity on the bus (its nkey seed file, or
	// a user and password). Its InboxPrefix is set per role by connect.
	NATSCreds     natsx.Credentials
	NATSTLS       natsx.TLSFiles // TLS to NATS for every connection of the process
	SubjectPrefix string
	LogStacks     bool
	Chaos         bool
	PprofAddr     string
	// MetricsListen, when set, serves the process's Prometheus metrics at
	// /metrics on this address (a role's metrics are off without it; the
	// edge also serves them at GET /metrics on its HTTP port).
	MetricsListen string
	// Tracing, when its Endpoint is set, exports the spans of the edge,
	// sensor and bridge roles over OTLP/HTTP, each as its own service
	// (sensorhub-<role>); off without it.
	Tracing tracing.Config
}

// tracer starts tracing for role as c says (nil: off) and registers its
// shutdown, which flushes the spans still queued within
// tracing.ShutdownTimeout. Registered before the role's actors, it runs
// after they stopped, so that their last spans are sent.
func (l *lifecycle) tracer(c Common, role string) (*tracing.Tracer, error) {
	cfg := c.Tracing
	cfg.Version = natsx.BuildVersion()
	cfg.Logger = l.logger
	service := "sensorhub-" + role
	tr, err := tracing.New(cfg, service)
	if err != nil || tr == nil {
		return nil, err
	}
	l.logger.Info("tracing on", "service", service, "otlp_endpoint", cfg.Endpoint)
	l.defer_("tracing "+role, func() {
		ctx, cancel := context.WithTimeout(context.Background(), tracing.ShutdownTimeout)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			l.logger.Warn("tracing: spans not flushed at shutdown", "service", service, "err", err)
		}
	})
	return tr, nil
}

// lifecycle collects what a process must undo at shutdown, in reverse
// order, and the "a role supervisor gave up" signal.
type lifecycle struct {
	logger  *slog.Logger
	mu      sync.Mutex
	closers []namedCloser
	conns   []*nats.Conn
	gaveUp  chan error
}

// addConn remembers a NATS connection for flush.
func (l *lifecycle) addConn(nc *nats.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns = append(l.conns, nc)
}

// flush makes sure the server has seen every subscription the roles made
// (each role has its own connection), so that "up" means reachable.
func (l *lifecycle) flush(timeout time.Duration) {
	l.mu.Lock()
	conns := append([]*nats.Conn(nil), l.conns...)
	l.mu.Unlock()
	for _, nc := range conns {
		if err := nc.FlushTimeout(timeout); err != nil {
			l.logger.Warn("NATS flush", "conn", nc.Opts.Name, "err", err)
		}
	}
}

type namedCloser struct {
	name string
	fn   func()
}

func newLifecycle(logger *slog.Logger) *lifecycle {
	return &lifecycle{logger: logger, gaveUp: make(chan error, 1)}
}

// child is a lifecycle of its own for one part of the process (a role of
// dev that --chaos stops and starts): its steps run at its own shutdown,
// and a role supervisor of it giving up ends the whole process.
func (l *lifecycle) child(logger *slog.Logger) *lifecycle {
	c := newLifecycle(logger)
	c.gaveUp = l.gaveUp
	return c
}

// defer registers fn to run at shutdown (last registered, first run).
func (l *lifecycle) defer_(name string, fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, namedCloser{name, fn})
}

// giveUp is the OnGiveUp of every role supervisor.
func (l *lifecycle) giveUp(err error) {
	select {
	case l.gaveUp <- err:
	default:
	}
}

// wait blocks until ctx ends (nil: a requested shutdown) or a role gives up
// (its error: the process must exit non-zero).
func (l *lifecycle) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		l.logger.Info("shutting down")
		return nil
	case err := <-l.gaveUp:
		l.logger.Error("a role supervisor gave up; exiting so the orchestrator restarts the process", "err", err)
		return err
	}
}

// shutdown runs the closers in reverse order, each bounded so that the
// whole shutdown stays within a few seconds.
func (l *lifecycle) shutdown() {
	l.mu.Lock()
	closers := l.closers
	l.closers = nil
	l.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		c := closers[i]
		done := make(chan struct{})
		go func() { defer close(done); c.fn() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			l.logger.Warn("shutdown step took too long; going on", "step", c.name)
		}
	}
}

// startPprof serves net/http/pprof on addr (meant for localhost) until
// shutdown.
func (l *lifecycle) startPprof(addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	l.logger.Info("pprof listening", "addr", ln.Addr().String())
	l.defer_("pprof", func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return nil
}
