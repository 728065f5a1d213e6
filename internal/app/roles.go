package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/actors/auth"
	"sensorhub/actors/sensor"
	"sensorhub/actors/supervise"
	"sensorhub/bridge"
	"sensorhub/internal/breaker"
	"sensorhub/internal/edge"
	"sensorhub/internal/metrics"
	"sensorhub/internal/natsauth"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

// stopTimeout bounds the stop of one role's actor tree at shutdown.
const stopTimeout = 5 * time.Second

// AuthConfig configures the auth role.
type AuthConfig struct {
	Common
	DatabaseURL string
	KeyFile     string
	Issuer      string
	Audience    string
	TokenTTL    time.Duration
	// JWKSReplicas is the replication factor of the JWKS key-value bucket
	// (auth.Config.KeysReplicas; 3 on a NATS cluster).
	JWKSReplicas    int
	DatabaseBreaker breaker.Config
	// AllowDefaultPassword lets the role start while a user still has the
	// seed's password (only `dev` sets it).
	AllowDefaultPassword bool
	// CalloutIssuerFile and CalloutXKeyFile are the auth callout's nkey
	// seeds (see `sensorhub nats-config`); with both set the role answers
	// the NATS server's callout, so people connect as themselves.
	CalloutIssuerFile, CalloutXKeyFile string
	// CalloutUserTTL bounds a connection admitted by password (default the
	// token lifetime).
	CalloutUserTTL time.Duration
}

// callout loads the callout's keys named by cfg (nil when none are named).
func (cfg AuthConfig) callout() (*auth.CalloutConfig, error) {
	if cfg.CalloutIssuerFile == "" && cfg.CalloutXKeyFile == "" {
		return nil, nil
	}
	if cfg.CalloutIssuerFile == "" || cfg.CalloutXKeyFile == "" {
		return nil, errors.New("the auth callout needs both --callout-issuer-file and --callout-xkey-file")
	}
	issuer, err := natsauth.ReadSeedFile(cfg.CalloutIssuerFile)
	if err != nil {
		return nil, fmt.Errorf("callout issuer: %w", err)
	}
	xkey, err := natsauth.ReadSeedFile(cfg.CalloutXKeyFile)
	if err != nil {
		return nil, fmt.Errorf("callout xkey: %w", err)
	}
	return &auth.CalloutConfig{Issuer: issuer, XKey: xkey, UserTTL: cfg.CalloutUserTTL}, nil
}

// SensorConfig configures the sensor role.
type SensorConfig struct {
	Common
	DatabaseURL      string
	Workers          int
	MaxInFlight      int
	MaxInFlightBytes int64 // sensor.Config.MaxInFlightBytes
	// MaxOutboxBacklog bounds the outbox (sensor.Config.MaxOutboxBacklog;
	// 0: no bound).
	MaxOutboxBacklog int64
	Lease            time.Duration
	Issuer           string
	Audience         string
	DatabaseBreaker  breaker.Config
	AuthBreaker      breaker.Config
	JetStreamBreaker breaker.Config
	StreamReplicas   int
	StreamMaxBytes   int64
	// StreamDuplicateWindow is how long JetStream drops a republished
	// event by its id (natsx.StreamConfig.DuplicateWindow).
	StreamDuplicateWindow time.Duration
}

// BridgeConfig configures the bridge role.
type BridgeConfig struct {
	Common
	KafkaBrokers   string
	KafkaTopic     string
	KafkaTLS       bridge.TLSConfig
	KafkaSASL      bridge.SASLConfig
	BatchSize      int
	AckWait        time.Duration
	KafkaBreaker   breaker.Config
	StreamReplicas int
	StreamMaxBytes int64
	// StreamDuplicateWindow: as in SensorConfig (both roles ensure the
	// stream, so give them the same).
	StreamDuplicateWindow time.Duration
}

// EdgeConfig configures the HTTP edge.
type EdgeConfig struct {
	Common
	HTTP string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed for the client address (see edge.Config).
	TrustedProxies []netip.Prefix
	AuthBreaker    breaker.Config
	SensorBreaker  breaker.Config
	BridgeBreaker  breaker.Config
	// SubmitAttempts, SubmitTimeout and MaxConcurrent: see edge.Config
	// (zero takes the edge's defaults).
	SubmitAttempts int
	SubmitTimeout  time.Duration
	MaxConcurrent  int
	// QueueTarget makes the submission limit adaptive (see edge.Config;
	// zero: only MaxConcurrent). The commands default it to
	// edge.DefaultQueueTarget.
	QueueTarget time.Duration
}

func subjects(c Common) (messages.Subjects, error) {
	return messages.NewSubjects(c.SubjectPrefix)
}

// connectWait bounds how long a role waits for its first NATS connection
// before it starts anyway (it keeps reconnecting in the background, so a
// role comes up while NATS is down and serves as soon as it is back).
const connectWait = 5 * time.Second

// connect dials NATS as role, with the role's own inbox prefix (the only
// place its permissions let it read replies).
func connect(l *lifecycle, c Common, role string, logger *slog.Logger) (*nats.Conn, error) {
	name := "sensorhub-" + role
	creds := c.NATSCreds
	creds.InboxPrefix = messages.InboxPrefix(role)
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: c.NATSURL, Name: name, Credentials: creds, TLS: c.NATSTLS, Logger: logger})
	if err != nil {
		return nil, err
	}
	l.defer_("nats "+name, func() { natsx.Drain(nc, 3*time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), connectWait)
	defer cancel()
	if err := natsx.WaitConnected(ctx, nc); err != nil {
		logger.Warn("NATS not reachable yet; starting anyway and reconnecting in the background", "url", c.NATSURL)
	}
	l.addConn(nc)
	return nc, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// startAuth starts the auth role on nc and registers its shutdown.
func startAuth(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, st store.Store, cfg AuthConfig, reg *metrics.Registry, logger *slog.Logger) (*auth.Service, error) {
	subj, err := subjects(cfg.Common)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		st = reg.Store(messages.RoleAuth, st)
	}
	callout, err := cfg.callout()
	if err != nil {
		return nil, fmt.Errorf("start auth: %w", err)
	}
	svc, err := auth.Start(ctx, nc, system, auth.Config{
		Callout:         callout,
		Subjects:        subj,
		Store:           st,
		KeyFile:         cfg.KeyFile,
		Issuer:          cfg.Issuer,
		Audience:        cfg.Audience,
		TokenTTL:        cfg.TokenTTL,
		KeysReplicas:    cfg.JWKSReplicas,
		DatabaseBreaker: cfg.DatabaseBreaker,
		Logger:          logger,
		LogStacks:       cfg.LogStacks,
		OnGiveUp:        l.giveUp,
	})
	if err != nil {
		return nil, fmt.Errorf("start auth: %w", err)
	}
	l.defer_("auth actors", func() { _ = svc.Stop(stopTimeout) })
	registerAuth(reg, messages.RoleAuth, svc)
	return svc, nil
}

// startSensor starts the sensor role on nc, with its authenticator (online
// validation through auth, local JWKS fallback).
func startSensor(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, st store.Store, cfg SensorConfig, reg *metrics.Registry, logger *slog.Logger) (*sensor.Service, error) {
	subj, err := subjects(cfg.Common)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		st = reg.Store(messages.RoleSensor, st)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	tracer, err := l.tracer(cfg.Common, messages.RoleSensor)
	if err != nil {
		return nil, err
	}
	keys := token.NewKeySource(js, token.VerifierConfig{Issuer: cfg.Issuer, Audience: cfg.Audience}, logger)
	kctx, stopKeys := context.WithCancel(context.Background())
	keysDone := make(chan struct{})
	go func() { defer close(keysDone); keys.Run(kctx) }()
	l.defer_("jwks watcher", func() { stopKeys(); <-keysDone })
	authBreaker := cfg.AuthBreaker
	validator := auth.NewValidator(nc, subj, keys, auth.ValidatorConfig{Breaker: authBreaker, BreakerName: "sensor.auth", Logger: logger})
	svc, err := sensor.Start(ctx, nc, system, sensor.Config{
		Subjects:         subj,
		Store:            st,
		Auth:             validator,
		Workers:          cfg.Workers,
		MaxInFlight:      cfg.MaxInFlight,
		MaxInFlightBytes: cfg.MaxInFlightBytes,
		MaxOutboxBacklog: cfg.MaxOutboxBacklog,
		Lease:            cfg.Lease,
		DatabaseBreaker:  cfg.DatabaseBreaker,
		JetStreamBreaker: cfg.JetStreamBreaker,
		Stream:           natsx.StreamConfig{Replicas: cfg.StreamReplicas, MaxBytes: cfg.StreamMaxBytes, DuplicateWindow: cfg.StreamDuplicateWindow},
		Logger:           logger,
		Tracer:           tracer,
		LogStacks:        cfg.LogStacks,
		OnGiveUp:         l.giveUp,
	})
	if err != nil {
		return nil, fmt.Errorf("start sensor: %w", err)
	}
	l.defer_("sensor actors", func() { _ = svc.Stop(stopTimeout) })
	registerSensor(reg, messages.RoleSensor, svc)
	return svc, nil
}

func startBridge(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, cfg BridgeConfig, reg *metrics.Registry, logger *slog.Logger) (*bridge.Bridge, error) {
	subj, err := subjects(cfg.Common)
	if err != nil {
		return nil, err
	}
	brokers := splitList(cfg.KafkaBrokers)
	if len(brokers) == 0 {
		return nil, errors.New("no Kafka brokers: give --kafka-brokers")
	}
	tracer, err := l.tracer(cfg.Common, messages.RoleBridge)
	if err != nil {
		return nil, err
	}
	b, err := bridge.Start(ctx, nc, system, bridge.Config{
		Subjects:  subj,
		Brokers:   brokers,
		Topic:     cfg.KafkaTopic,
		TLS:       cfg.KafkaTLS,
		SASL:      cfg.KafkaSASL,
		BatchSize: cfg.BatchSize,
		AckWait:   cfg.AckWait,
		Breaker:   cfg.KafkaBreaker,
		Stream:    natsx.StreamConfig{Replicas: cfg.StreamReplicas, MaxBytes: cfg.StreamMaxBytes, DuplicateWindow: cfg.StreamDuplicateWindow},
		Logger:    logger,
		Tracer:    tracer,
		LogStacks: cfg.LogStacks,
		OnGiveUp:  l.giveUp,
	})
	if err != nil {
		return nil, fmt.Errorf("start bridge: %w", err)
	}
	l.defer_("bridge actors", func() { _ = b.Stop(stopTimeout) })
	registerBridge(reg, messages.RoleBridge, b)
	return b, nil
}

// startEdge listens on cfg.HTTP and serves until the lifecycle shuts down.
// It returns the bound address. It serves reg at GET /metrics, and counts
// its requests and breakers in it.
func startEdge(l *lifecycle, nc *nats.Conn, cfg EdgeConfig, reg *metrics.Registry, logger *slog.Logger) (string, error) {
	subj, err := subjects(cfg.Common)
	if err != nil {
		return "", err
	}
	var httpMetrics *metrics.HTTP
	var metricsHandler http.Handler
	if reg != nil {
		httpMetrics, metricsHandler = reg.HTTP(messages.RoleEdge), reg.Handler()
	}
	tracer, err := l.tracer(cfg.Common, messages.RoleEdge)
	if err != nil {
		return "", err
	}
	srv, err := edge.New(nc, edge.Config{
		Tracer:         tracer,
		Metrics:        httpMetrics,
		MetricsHandler: metricsHandler,
		Addr:           cfg.HTTP,
		TrustedProxies: cfg.TrustedProxies,
		Subjects:       subj,
		Logger:         logger,
		AuthBreaker:    cfg.AuthBreaker,
		SensorBreaker:  cfg.SensorBreaker,
		BridgeBreaker:  cfg.BridgeBreaker,
		SubmitAttempts: cfg.SubmitAttempts,
		SubmitTimeout:  cfg.SubmitTimeout,
		MaxConcurrent:  cfg.MaxConcurrent,
		QueueTarget:    cfg.QueueTarget,
	})
	if err != nil {
		return "", fmt.Errorf("edge: %w", err)
	}
	if reg != nil {
		reg.Breakers(messages.RoleEdge, srv.Breakers())
		reg.EdgeAdmission(messages.RoleEdge, func() metrics.EdgeAdmission { return metrics.EdgeAdmission(srv.Admission()) })
	}
	addr := cfg.HTTP
	if addr == "" {
		addr = edge.DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("edge listen %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			l.giveUp(fmt.Errorf("edge http: %w", err))
		}
	}()
	l.defer_("edge http", func() { cancel(); <-done })
	logger.Info("edge listening", "addr", ln.Addr().String())
	return ln.Addr().String(), nil
}

// roleSpec is one role process: what it needs besides NATS, and how it
// starts its tree on the shared plumbing of runRole.
type roleSpec struct {
	role        string
	common      Common
	needsStore  bool
	databaseURL string
	// beforeNATS checks the store before anything is announced.
	beforeNATS func(ctx context.Context, st store.Store) error
	// start starts the role and returns its actor tree (nil for the edge)
	// and the actor that {"actor":"<role>"} names on the chaos endpoint.
	// start gets the process's metrics registry, nil while they are off.
	start func(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, st store.Store, reg *metrics.Registry) (tree *supervise.Role, primary string, err error)
	// alwaysMetrics: the role serves metrics even without MetricsListen
	// (the edge, at GET /metrics on its HTTP port).
	alwaysMetrics bool
}

// runRole runs one role process until ctx ends (nil) or a role supervisor
// gives up (its error: the process exits non-zero). Shutdown runs in
// reverse: actors poisoned, NATS drained, the store closed.
func runRole(ctx context.Context, spec roleSpec, logger *slog.Logger) error {
	rl := logger.With("role", spec.role)
	l := newLifecycle(rl)
	defer l.shutdown()
	var st store.Store
	if spec.needsStore {
		var err error
		if st, err = openStoreWaiting(ctx, spec.databaseURL, rl); err != nil {
			return err
		}
		l.defer_("store", func() { _ = st.Close() })
		if spec.beforeNATS != nil {
			if err := spec.beforeNATS(ctx, st); err != nil {
				return err
			}
		}
	}
	if err := l.startPprof(spec.common.PprofAddr); err != nil {
		return err
	}
	var reg *metrics.Registry
	if spec.common.MetricsListen != "" || spec.alwaysMetrics {
		reg = newMetrics()
		if _, err := l.startMetrics(spec.common.MetricsListen, reg); err != nil {
			return err
		}
	}
	nc, err := connect(l, spec.common, spec.role, rl)
	if err != nil {
		return err
	}
	l.observeNATS(reg, spec.role, nc)
	tree, primary, err := spec.start(ctx, l, nc, supervise.NewSystem(logger), st, reg)
	if err != nil {
		return err
	}
	if tree != nil {
		if err := startChaos(l, nc, spec.common, logger, chaosTarget{spec.role, func() *supervise.Role { return tree }, primary}); err != nil {
			return err
		}
	}
	return l.wait(ctx)
}

// RunAuth runs the auth role until ctx ends or its supervisor gives up.
func RunAuth(ctx context.Context, cfg AuthConfig, logger *slog.Logger) error {
	return runRole(ctx, roleSpec{
		role: messages.RoleAuth, common: cfg.Common, needsStore: true, databaseURL: cfg.DatabaseURL,
		beforeNATS: func(ctx context.Context, st store.Store) error {
			if cfg.AllowDefaultPassword {
				return nil
			}
			return auth.RefuseDefaultPassword(ctx, st)
		},
		start: func(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, st store.Store, reg *metrics.Registry) (*supervise.Role, string, error) {
			svc, err := startAuth(ctx, l, nc, system, st, cfg, reg, logger)
			if err != nil {
				return nil, "", err
			}
			return svc.Role(), auth.ActorLogin + "-0", nil
		},
	}, logger)
}

// RunSensor runs the sensor role.
func RunSensor(ctx context.Context, cfg SensorConfig, logger *slog.Logger) error {
	return runRole(ctx, roleSpec{
		role: messages.RoleSensor, common: cfg.Common, needsStore: true, databaseURL: cfg.DatabaseURL,
		start: func(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, st store.Store, reg *metrics.Registry) (*supervise.Role, string, error) {
			svc, err := startSensor(ctx, l, nc, system, st, cfg, reg, logger)
			if err != nil {
				return nil, "", err
			}
			return svc.Role(), "intake", nil
		},
	}, logger)
}

// RunBridge runs the bridge role.
func RunBridge(ctx context.Context, cfg BridgeConfig, logger *slog.Logger) error {
	return runRole(ctx, roleSpec{
		role: messages.RoleBridge, common: cfg.Common,
		start: func(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, _ store.Store, reg *metrics.Registry) (*supervise.Role, string, error) {
			b, err := startBridge(ctx, l, nc, system, cfg, reg, logger)
			if err != nil {
				return nil, "", err
			}
			return b.Role(), bridge.RelayActor, nil
		},
	}, logger)
}

// RunEdge runs the HTTP edge.
func RunEdge(ctx context.Context, cfg EdgeConfig, logger *slog.Logger) error {
	return runRole(ctx, roleSpec{
		role: messages.RoleEdge, common: cfg.Common, alwaysMetrics: true,
		start: func(_ context.Context, l *lifecycle, nc *nats.Conn, _ *actor.ActorSystem, _ store.Store, reg *metrics.Registry) (*supervise.Role, string, error) {
			_, err := startEdge(l, nc, cfg, reg, logger)
			return nil, "", err
		},
	}, logger)
}
