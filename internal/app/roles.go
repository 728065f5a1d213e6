package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	DatabaseURL     string
	KeyFile         string
	Issuer          string
	Audience        string
	TokenTTL        time.Duration
	DatabaseBreaker breaker.Config
	// AllowDefaultPassword lets the role start while a user still has the
	// seed's password (only `dev` sets it).
	AllowDefaultPassword bool
}

// SensorConfig configures the sensor role.
type SensorConfig struct {
	Common
	DatabaseURL      string
	Workers          int
	MaxInFlight      int
	Lease            time.Duration
	Issuer           string
	Audience         string
	DatabaseBreaker  breaker.Config
	AuthBreaker      breaker.Config
	JetStreamBreaker breaker.Config
	StreamReplicas   int
	StreamMaxBytes   int64
}

// BridgeConfig configures the bridge role.
type BridgeConfig struct {
	Common
	KafkaBrokers   string
	KafkaTopic     string
	BatchSize      int
	KafkaBreaker   breaker.Config
	StreamReplicas int
	StreamMaxBytes int64
}

// EdgeConfig configures the HTTP edge.
type EdgeConfig struct {
	Common
	HTTP          string
	AuthBreaker   breaker.Config
	SensorBreaker breaker.Config
	BridgeBreaker breaker.Config
}

func subjects(c Common) (messages.Subjects, error) {
	return messages.NewSubjects(c.SubjectPrefix)
}

func connect(l *lifecycle, c Common, name string, logger *slog.Logger) (*nats.Conn, error) {
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: c.NATSURL, Name: name, Logger: logger})
	if err != nil {
		return nil, err
	}
	l.defer_("nats "+name, func() { natsx.Drain(nc, 3*time.Second) })
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
func startAuth(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, st store.Store, cfg AuthConfig, logger *slog.Logger) (*auth.Service, error) {
	subj, err := subjects(cfg.Common)
	if err != nil {
		return nil, err
	}
	svc, err := auth.Start(ctx, nc, system, auth.Config{
		Subjects:        subj,
		Store:           st,
		KeyFile:         cfg.KeyFile,
		Issuer:          cfg.Issuer,
		Audience:        cfg.Audience,
		TokenTTL:        cfg.TokenTTL,
		DatabaseBreaker: cfg.DatabaseBreaker,
		Logger:          logger,
		LogStacks:       cfg.LogStacks,
		OnGiveUp:        l.giveUp,
	})
	if err != nil {
		return nil, fmt.Errorf("start auth: %w", err)
	}
	l.defer_("auth actors", func() { _ = svc.Stop(stopTimeout) })
	return svc, nil
}

// startSensor starts the sensor role on nc, with its authenticator (online
// validation through auth, local JWKS fallback).
func startSensor(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, st store.Store, cfg SensorConfig, logger *slog.Logger) (*sensor.Service, error) {
	subj, err := subjects(cfg.Common)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
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
		Lease:            cfg.Lease,
		DatabaseBreaker:  cfg.DatabaseBreaker,
		JetStreamBreaker: cfg.JetStreamBreaker,
		Stream:           natsx.StreamConfig{Replicas: cfg.StreamReplicas, MaxBytes: cfg.StreamMaxBytes},
		Logger:           logger,
		LogStacks:        cfg.LogStacks,
		OnGiveUp:         l.giveUp,
	})
	if err != nil {
		return nil, fmt.Errorf("start sensor: %w", err)
	}
	l.defer_("sensor actors", func() { _ = svc.Stop(stopTimeout) })
	return svc, nil
}

func startBridge(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem, cfg BridgeConfig, logger *slog.Logger) (*bridge.Bridge, error) {
	subj, err := subjects(cfg.Common)
	if err != nil {
		return nil, err
	}
	brokers := splitList(cfg.KafkaBrokers)
	if len(brokers) == 0 {
		return nil, errors.New("no Kafka brokers: give --kafka-brokers")
	}
	b, err := bridge.Start(ctx, nc, system, bridge.Config{
		Subjects:  subj,
		Brokers:   brokers,
		Topic:     cfg.KafkaTopic,
		BatchSize: cfg.BatchSize,
		Breaker:   cfg.KafkaBreaker,
		Stream:    natsx.StreamConfig{Replicas: cfg.StreamReplicas, MaxBytes: cfg.StreamMaxBytes},
		Logger:    logger,
		LogStacks: cfg.LogStacks,
		OnGiveUp:  l.giveUp,
	})
	if err != nil {
		return nil, fmt.Errorf("start bridge: %w", err)
	}
	l.defer_("bridge actors", func() { _ = b.Stop(stopTimeout) })
	return b, nil
}

// startEdge listens on cfg.HTTP and serves until the lifecycle shuts down.
// It returns the bound address.
func startEdge(l *lifecycle, nc *nats.Conn, cfg EdgeConfig, logger *slog.Logger) (string, error) {
	subj, err := subjects(cfg.Common)
	if err != nil {
		return "", err
	}
	srv, err := edge.New(nc, edge.Config{
		Addr:          cfg.HTTP,
		Subjects:      subj,
		Logger:        logger,
		AuthBreaker:   cfg.AuthBreaker,
		SensorBreaker: cfg.SensorBreaker,
		BridgeBreaker: cfg.BridgeBreaker,
	})
	if err != nil {
		return "", fmt.Errorf("edge: %w", err)
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

// RunAuth runs the auth role until ctx ends or its supervisor gives up.
func RunAuth(ctx context.Context, cfg AuthConfig, logger *slog.Logger) error {
	rl := logger.With("role", messages.RoleAuth)
	l := newLifecycle(rl)
	defer l.shutdown()
	st, err := OpenStore(ctx, cfg.DatabaseURL, rl)
	if err != nil {
		return err
	}
	l.defer_("store", func() { _ = st.Close() })
	if !cfg.AllowDefaultPassword {
		if err := auth.RefuseDefaultPassword(ctx, st); err != nil {
			return err
		}
	}
	if err := l.startPprof(cfg.PprofAddr); err != nil {
		return err
	}
	nc, err := connect(l, cfg.Common, "sensorhub-auth", rl)
	if err != nil {
		return err
	}
	system := supervise.NewSystem(logger)
	svc, err := startAuth(ctx, l, nc, system, st, cfg, logger)
	if err != nil {
		return err
	}
	if err := startChaos(l, nc, cfg.Common, logger, chaosTarget{messages.RoleAuth, svc.Role(), auth.ActorLogin + "-0"}); err != nil {
		return err
	}

	return l.wait(ctx)
}

// RunSensor runs the sensor role.
func RunSensor(ctx context.Context, cfg SensorConfig, logger *slog.Logger) error {
	rl := logger.With("role", messages.RoleSensor)
	l := newLifecycle(rl)
	defer l.shutdown()
	st, err := OpenStore(ctx, cfg.DatabaseURL, rl)
	if err != nil {
		return err
	}
	l.defer_("store", func() { _ = st.Close() })
	if err := l.startPprof(cfg.PprofAddr); err != nil {
		return err
	}
	nc, err := connect(l, cfg.Common, "sensorhub-sensor", rl)
	if err != nil {
		return err
	}
	system := supervise.NewSystem(logger)
	svc, err := startSensor(ctx, l, nc, system, st, cfg, logger)
	if err != nil {
		return err
	}
	if err := startChaos(l, nc, cfg.Common, logger, chaosTarget{messages.RoleSensor, svc.Role(), "intake"}); err != nil {
		return err
	}

	return l.wait(ctx)
}

// RunBridge runs the bridge role.
func RunBridge(ctx context.Context, cfg BridgeConfig, logger *slog.Logger) error {
	rl := logger.With("role", messages.RoleBridge)
	l := newLifecycle(rl)
	defer l.shutdown()
	if err := l.startPprof(cfg.PprofAddr); err != nil {
		return err
	}
	nc, err := connect(l, cfg.Common, "sensorhub-bridge", rl)
	if err != nil {
		return err
	}
	system := supervise.NewSystem(logger)
	b, err := startBridge(ctx, l, nc, system, cfg, logger)
	if err != nil {
		return err
	}
	if err := startChaos(l, nc, cfg.Common, logger, chaosTarget{messages.RoleBridge, b.Role(), "relay"}); err != nil {
		return err
	}

	return l.wait(ctx)
}

// RunEdge runs the HTTP edge.
func RunEdge(ctx context.Context, cfg EdgeConfig, logger *slog.Logger) error {
	rl := logger.With("role", messages.RoleEdge)
	l := newLifecycle(rl)
	defer l.shutdown()
	if err := l.startPprof(cfg.PprofAddr); err != nil {
		return err
	}
	nc, err := connect(l, cfg.Common, "sensorhub-edge", rl)
	if err != nil {
		return err
	}
	if _, err := startEdge(l, nc, cfg, logger); err != nil {
		return err
	}
	return l.wait(ctx)
}
