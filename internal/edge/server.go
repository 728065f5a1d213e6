package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/breaker"
	"sensorhub/internal/dashboard"
	"sensorhub/internal/health"
	"sensorhub/internal/metrics"
	"sensorhub/internal/natsx"
	"sensorhub/internal/ratelimit"
	"sensorhub/messages"
)

// Server is the HTTP edge. Its handler is safe for concurrent use.
type Server struct {
	nc       *nats.Conn
	cfg      Config
	log      *slog.Logger
	subj     messages.Subjects
	breakers *breaker.Set
	health   *health.Tracker // the edge's own entry in GET /health
	auth     *breaker.Breaker
	sensor   *breaker.Breaker
	bridge   *breaker.Breaker
	logins   *loginLimiter
	jwks     jwksCache
	handler  http.Handler
	now      func() time.Time
	stats    requestStats
	// submits is the adaptive bound on submissions, inside MaxConcurrent.
	submits *submitLimiter
	// routeMetrics are each route pattern's metrics (nil without
	// Config.Metrics), made with the routes and only read after.
	routeMetrics map[string]*metrics.Route
	// dash is the live health page (GET /ui/).
	dash *dashboard.Dashboard
}

// New returns an edge that talks to the other roles over nc.
func New(nc *nats.Conn, cfg Config) (*Server, error) {
	if nc == nil {
		return nil, ErrNoConn
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("role", messages.RoleEdge)
	s := &Server{
		nc:       nc,
		cfg:      cfg,
		log:      log,
		subj:     cfg.Subjects,
		breakers: &breaker.Set{},
		logins:   newLoginLimiter(cfg.LoginPerAddr, ratelimit.DefaultMaxKeys),
		now:      time.Now,
	}
	s.stats.max = int64(cfg.MaxConcurrent)
	s.submits = newSubmitLimiter(cfg.QueueTarget, cfg.QueueInterval, cfg.MaxConcurrent, time.Now)
	// Only "the service did not answer" opens a breaker: a 4xx envelope
	// proves the service is up, and a client that went away proves nothing.
	s.auth = s.breakers.Add(breaker.New("edge.auth", cfg.AuthBreaker, natsx.IsUnreachable, log))
	s.sensor = s.breakers.Add(breaker.New("edge.sensor", cfg.SensorBreaker, natsx.IsUnreachable, log))
	s.bridge = s.breakers.Add(breaker.New("edge.bridge", cfg.BridgeBreaker, natsx.IsUnreachable, log))
	s.health = health.New(messages.RoleEdge, log, s.breakers)
	s.dash = dashboard.New(dashboard.Config{
		Conn: nc, Subjects: cfg.Subjects, Health: s.Health, EdgeBreakers: s.breakers,
		Timeout: max(cfg.HealthTimeout, dashboard.DefaultTimeout), Logger: log,
	})
	s.handler = s.routes()
	return s, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, h)
		if s.cfg.Metrics != nil {
			s.routeMetrics[pattern] = s.cfg.Metrics.Route(pattern)
		}
	}
	if s.cfg.Metrics != nil {
		s.routeMetrics = map[string]*metrics.Route{"": s.cfg.Metrics.Route(metrics.RouteUnmatched)}
	}
	// Every route that may wait on NATS counts against MaxConcurrent;
	// liveness and readiness answer from memory and stay outside it.
	// Submissions, the one route a client floods, also count against the
	// adaptive bound (limitSubmit).
	handle("POST /auth/token", s.limit(s.handleLogin))
	handle("POST /test/sensor/{sensor_type}", s.limitSubmit(s.handleSubmit))
	handle("GET /test/{test_id}", s.limit(s.handleResult))
	handle("GET /sensor/types", s.limit(s.handleSensorTypes))
	handle("GET /kafka/stats", s.limit(s.handleBridgeStats))
	handle("GET /health", s.limit(s.handleHealth))
	handle("GET /healthz", s.handleHealthz)
	handle("GET /readyz", s.handleReadyz)
	handle("GET /.well-known/jwks.json", s.limit(s.handleJWKS))
	if s.cfg.MetricsHandler != nil {
		handle("GET "+metrics.Path, s.cfg.MetricsHandler.ServeHTTP)
	}
	// The dashboard bounds its own streams (an open stream must not hold
	// a request slot for as long as a browser watches); its snapshot may
	// wait on NATS like /health.
	for _, rt := range s.dash.Routes() {
		h := rt.Handler
		if rt.Pattern == "GET "+dashboard.PathState {
			h = s.limit(h)
		}
		handle(rt.Pattern, h)
	}
	return s.instrument(jsonMuxErrors(mux))
}

// Handler is the edge's HTTP handler, middleware included.
func (s *Server) Handler() http.Handler { return s.handler }

// Dashboard is the edge's live health page.
func (s *Server) Dashboard() *dashboard.Dashboard { return s.dash }

// Breakers are the edge's breakers: "edge.auth", "edge.sensor", "edge.bridge".
func (s *Server) Breakers() *breaker.Set { return s.breakers }

func (s *Server) httpServer() *http.Server {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		// A 1 MiB body over a slow link, then the NATS call and the answer.
		ReadTimeout:    15 * time.Second,
		WriteTimeout:   15*time.Second + max(s.cfg.RequestTimeout, s.cfg.HealthTimeout, s.cfg.SubmitTimeout),
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for idle connections; the dashboard's streams never
	// are, so they end when it begins.
	srv.RegisterOnShutdown(s.dash.Close)
	return srv
}

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully,
// giving in-flight requests up to ShutdownTimeout. It returns nil after a
// shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	svc, err := s.startService()
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	srv := s.httpServer()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("shut down http server: %w", err)
	}
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("serve http on %s: %w", ln.Addr(), serr)
	}
	return err
}

// ListenAndServe listens on cfg.Addr and serves until ctx ends; see Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.log.Info("http edge listening", "addr", ln.Addr().String())
	return s.Serve(ctx, ln)
}
