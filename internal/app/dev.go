package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/segmentio/kafka-go"

	"golang.org/x/crypto/bcrypt"

	"sensorhub/actors/auth"
	"sensorhub/actors/sensor"
	"sensorhub/actors/supervise"
	"sensorhub/bridge"
	"sensorhub/internal/faultproxy"
	"sensorhub/internal/kafkadev"
	"sensorhub/internal/metrics"
	"sensorhub/internal/natsauth"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/messages"
)

// DevConfig configures `sensorhub dev`: every role in one process.
type DevConfig struct {
	Common
	HTTP         string
	DataDir      string
	NATSListen   string // embedded NATS, unless NATSURL is set
	DatabaseURL  string // PostgreSQL instead of SQLite in DataDir
	KafkaListen  string // embedded Kafka-protocol broker, unless KafkaBrokers is set
	KafkaBrokers string
	KafkaTopic   string
	Workers      int
	// Edge holds the edge's bounds (submit attempts and timeout, max
	// concurrent, queue target), as `sensorhub edge` takes them; its
	// Common and HTTP are dev's own and ignored here.
	Edge EdgeConfig
	// KafkaRetention, when positive, bounds what the embedded Kafka broker
	// keeps of each partition of KafkaTopic (its retention.bytes, in
	// segments of a quarter of it): the broker holds everything in memory,
	// so without a bound dev's memory grows with every event. Zero keeps
	// every event. Ignored with KafkaBrokers.
	KafkaRetention ByteSize
	// MemoryLimit, when positive, is the process's soft memory limit
	// (runtime/debug.SetMemoryLimit): the garbage collector works harder as
	// the heap nears it instead of letting it grow to twice the live data.
	// Zero leaves the Go default (GOMEMLIMIT, else none).
	MemoryLimit ByteSize
	// NATSKeyDir holds the bus identities (default DevKeyDir(DataDir),
	// created on first start). With NATSURL, name the directory that
	// `sensorhub nats-config` wrote for that server.
	NATSKeyDir string
	// NoMetrics keeps no metrics at all (GET /metrics answers 404), so
	// that their cost can be measured against the same binary.
	NoMetrics bool
	// NATSContextFile, when set, is where dev writes a `nats` CLI context
	// for admin (URL, user, password, inbox prefix) while admin still has
	// the seed's password: `nats --context sensorhub-dev ...` then works.
	NATSContextFile string
	// Ready, if set, receives the addresses once every role serves (tests).
	Ready chan<- DevAddrs
}

// DevKeyDir is where dev keeps the bus identities, below its data dir: one
// nkey per role, the callout's keys, and the server configuration made
// from them (the same that `sensorhub nats-config` writes).
func DevKeyDir(dataDir string) string { return filepath.Join(dataDir, "nats") }

// DevAddrs are the addresses `dev` ended up on (ports may differ from the
// flags when those were busy).
type DevAddrs struct {
	HTTP  string
	NATS  string
	Kafka string
	// Metrics is MetricsListen's bound address (empty without it; the
	// metrics are at GET /metrics on HTTP either way).
	Metrics string
}

// RunDev runs everything in one process until ctx ends.
func RunDev(ctx context.Context, cfg DevConfig, logger *slog.Logger) error {
	l := newLifecycle(logger)
	defer l.shutdown()
	start := time.Now()
	if cfg.DataDir == "" {
		cfg.DataDir = "./sensorhub-data"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	l.defer_("data dir lock", unlock)
	if err := l.startPprof(cfg.PprofAddr); err != nil {
		return err
	}
	if cfg.KafkaTopic == "" {
		cfg.KafkaTopic = messages.DefaultKafkaTopic
	}
	if cfg.MemoryLimit > 0 {
		prev := debug.SetMemoryLimit(int64(cfg.MemoryLimit))
		defer debug.SetMemoryLimit(prev)
	}

	if cfg.NATSURL == "" && cfg.NATSTLS.Enabled() {
		return errors.New("NATS TLS files need a NATS URL: the embedded server has no TLS")
	}
	// The bus identities: made on first start, kept after.
	subj, err := subjects(cfg.Common)
	if err != nil {
		return err
	}
	keyDir := cfg.NATSKeyDir
	if keyDir == "" {
		keyDir = DevKeyDir(cfg.DataDir)
	}
	ids, created, err := natsauth.LoadOrCreate(keyDir)
	if err != nil {
		return err
	}
	if len(created) > 0 {
		logger.Info("created the NATS identities", "dir", keyDir, "files", created)
	}
	serverConf := natsauth.ServerConfig{Subjects: subj, Keys: ids.Public()}.Render()

	// NATS: embedded, JetStream on disk under the data dir, locked by the
	// same configuration as production.
	if cfg.NATSURL == "" {
		if err := os.WriteFile(filepath.Join(keyDir, "nats-server.conf"), []byte(serverConf), 0o600); err != nil {
			return fmt.Errorf("write nats configuration: %w", err)
		}
		ns, err := natsx.StartEmbedded(natsx.EmbeddedConfig{
			Listen:           cfg.NATSListen,
			FallbackFreePort: true,
			StoreDir:         filepath.Join(cfg.DataDir, "jetstream"),
			Config:           serverConf,
			Logger:           logger,
		})
		if err != nil {
			return err
		}
		l.defer_("embedded nats", func() { natsx.ShutdownEmbedded(ns) })
		cfg.NATSURL = "nats://" + ns.Addr().String()
	}

	// What --chaos may stop and start (sensorhub.chaos.control).
	switches := map[string]chaosSwitch{}

	// Kafka: an in-process Kafka-protocol broker (memory only).
	if cfg.KafkaBrokers == "" {
		kcfg := kafkadev.Config{
			Listen:           cfg.KafkaListen,
			FallbackFreePort: true,
			Topics:           []string{cfg.KafkaTopic},
			Logger:           logger,
		}
		if cfg.KafkaRetention > 0 {
			kcfg.BrokerConfigs = retentionBrokerConfigs()
		}
		kb, err := kafkadev.Start(kcfg)
		if err != nil {
			return fmt.Errorf("start embedded kafka: %w", err)
		}
		l.defer_("embedded kafka", kb.Close)
		cfg.KafkaBrokers = kb.Addr()
		switches[messages.ChaosTargetKafka] = chaosSwitch{
			stop:    func(context.Context) error { kb.Stop(); return nil },
			start:   func(context.Context) error { return kb.Start() },
			running: kb.Running,
		}
		if cfg.KafkaRetention > 0 {
			if err := limitKafkaRetention(ctx, kb.Addr(), cfg.KafkaTopic, int64(cfg.KafkaRetention)); err != nil {
				return err
			}
		}
	}

	// The store: SQLite in the data dir unless PostgreSQL was given.
	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(cfg.DataDir, "sensorhub.db")
	}
	openURL := dbURL
	var dbProxy *faultproxy.Proxy
	if cfg.Chaos && cfg.DatabaseURL != "" {
		// PostgreSQL through a fault proxy, which the database switch cuts.
		if dbProxy, openURL, err = proxyDatabase(l, dbURL); err != nil {
			return err
		}
	}
	st, err := OpenStore(ctx, openURL, logger)
	if err != nil {
		return err
	}
	l.defer_("store", func() { _ = st.Close() })
	switch {
	case dbProxy != nil:
		switches[messages.ChaosTargetDatabase] = chaosSwitch{
			stop:    func(context.Context) error { return dbProxy.Cut() },
			start:   func(context.Context) error { return dbProxy.Restore() },
			running: func() bool { return !dbProxy.IsCut() },
		}
	case cfg.Chaos:
		// SQLite has no socket: the switch is at the store's boundary.
		cut := &cutStore{st: st}
		st = cut
		switches[messages.ChaosTargetDatabase] = chaosSwitch{
			stop:    func(context.Context) error { cut.cut.Store(true); return nil },
			start:   func(context.Context) error { cut.cut.Store(false); return nil },
			running: func() bool { return !cut.cut.Load() },
		}
	}
	adminDefault, err := ensureDevAdmin(ctx, st, logger)
	if err != nil {
		return err
	}

	// One registry for the process: every role's series carry its role.
	var reg *metrics.Registry
	if !cfg.NoMetrics {
		reg = newMetrics()
	}
	metricsAddr, err := l.startMetrics(cfg.MetricsListen, reg)
	if err != nil {
		return err
	}

	// Each role connects as itself, as it would in its own process, in a
	// lifecycle and actor system of its own, so that --chaos can stop and
	// start it alone.
	as := func(role string) Common {
		c := cfg.Common
		c.NATSCreds = natsx.Credentials{NkeyFile: filepath.Join(keyDir, natsauth.RoleFile(role))}
		return c
	}
	role := func(name string, run func(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem) (*supervise.Role, error)) (*devRole, error) {
		rl := logger.With("role", name)
		r, err := newDevRole(ctx, l, reg, name, rl, func(ctx context.Context, l *lifecycle, system *actor.ActorSystem) (*supervise.Role, error) {
			nc, err := connect(l, as(name), name, rl)
			if err != nil {
				return nil, err
			}
			l.observeNATS(reg, name, nc)
			return run(ctx, l, nc, system)
		})
		if err == nil {
			switches[name] = r.chaosSwitch()
		}
		return r, err
	}

	authRole, err := role(messages.RoleAuth, func(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem) (*supervise.Role, error) {
		svc, err := startAuth(ctx, l, nc, system, st, AuthConfig{
			Common:               as(messages.RoleAuth),
			CalloutIssuerFile:    filepath.Join(keyDir, natsauth.IssuerFile),
			CalloutXKeyFile:      filepath.Join(keyDir, natsauth.XKeyFile),
			KeyFile:              filepath.Join(cfg.DataDir, "jwt-ed25519.pem"),
			Issuer:               "sensorhub",
			Audience:             "sensorhub",
			TokenTTL:             time.Hour,
			AllowDefaultPassword: true,
		}, reg, logger)
		if err != nil {
			return nil, err
		}
		return svc.Role(), nil
	})
	if err != nil {
		return err
	}

	sensorRole, err := role(messages.RoleSensor, func(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem) (*supervise.Role, error) {
		svc, err := startSensor(ctx, l, nc, system, st, SensorConfig{
			Common:           as(messages.RoleSensor),
			Workers:          cfg.Workers,
			MaxOutboxBacklog: sensor.DefaultMaxOutboxBacklog,
			Issuer:           "sensorhub",
			Audience:         "sensorhub",
		}, reg, logger)
		if err != nil {
			return nil, err
		}
		return svc.Role(), nil
	})
	if err != nil {
		return err
	}

	bridgeRole, err := role(messages.RoleBridge, func(ctx context.Context, l *lifecycle, nc *nats.Conn, system *actor.ActorSystem) (*supervise.Role, error) {
		b, err := startBridge(ctx, l, nc, system, BridgeConfig{
			Common:       as(messages.RoleBridge),
			KafkaBrokers: cfg.KafkaBrokers,
			KafkaTopic:   cfg.KafkaTopic,
		}, reg, logger)
		if err != nil {
			return nil, err
		}
		return b.Role(), nil
	})
	if err != nil {
		return err
	}

	// The edge stays up: the drills and the dashboard watch through it.
	ncEdge, err := connect(l, as(messages.RoleEdge), messages.RoleEdge, logger.With("role", "edge"))
	if err != nil {
		return err
	}
	l.observeNATS(reg, messages.RoleEdge, ncEdge)
	edgeCfg := cfg.Edge
	edgeCfg.Common, edgeCfg.HTTP = as(messages.RoleEdge), cfg.HTTP
	httpAddr, err := startEdge(l, ncEdge, edgeCfg, reg, logger)
	if err != nil {
		return err
	}
	if cfg.Chaos {
		// The chaos endpoints on a connection of their own (with auth's
		// identity, which may answer there), so that stopping a role never
		// takes them away.
		ncChaos, err := connect(l, as(messages.RoleAuth), "chaos", logger.With("role", "chaos"))
		if err != nil {
			return err
		}
		if err := startChaos(l, ncChaos, cfg.Common, logger,
			chaosTarget{messages.RoleAuth, authRole.Role, auth.ActorLogin + "-0"},
			chaosTarget{messages.RoleSensor, sensorRole.Role, "intake"},
			chaosTarget{messages.RoleBridge, bridgeRole.Role, bridge.RelayActor},
		); err != nil {
			return err
		}
		if err := startChaosControl(l, ncChaos, cfg.Common, logger, switches); err != nil {
			return err
		}
	}
	l.flush(5 * time.Second)
	if cfg.NATSContextFile != "" && adminDefault {
		if err := writeNATSContext(cfg.NATSContextFile, cfg.NATSURL); err != nil {
			logger.Warn("could not write the nats CLI context", "file", cfg.NATSContextFile, "err", err)
		} else {
			logger.Info("wrote a nats CLI context for admin", "file", cfg.NATSContextFile, "use", "nats --context "+strings.TrimSuffix(filepath.Base(cfg.NATSContextFile), ".json")+" ...")
		}
	}
	logger.Info("sensorhub dev is up",
		"http", "http://"+displayAddr(httpAddr),
		"nats", cfg.NATSURL,
		"kafka", cfg.KafkaBrokers,
		"data_dir", cfg.DataDir,
		"database", redact(dbURL),
		"startup", time.Since(start).Round(time.Millisecond).String())
	if cfg.Ready != nil {
		cfg.Ready <- DevAddrs{HTTP: httpAddr, NATS: cfg.NATSURL, Kafka: cfg.KafkaBrokers, Metrics: metricsAddr}
	}
	return l.wait(ctx)
}

// retentionBrokerConfigs make the embedded broker apply retention every
// second (its default: hourly).
func retentionBrokerConfigs() map[string]string {
	return map[string]string{"log.cleaner.backoff.ms": "1000"}
}

// limitKafkaRetention sets the retention.bytes of topic on the broker at
// addr, with segments of a quarter of it (retention drops whole segments).
func limitKafkaRetention(ctx context.Context, addr, topic string, bytes int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	segment := max(bytes/4, 64<<10)
	// Its own transport, closed after: kafka-go's default one keeps a pool
	// and its metadata goroutine for the life of the process.
	transport := &kafka.Transport{DialTimeout: 5 * time.Second}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: transport}
	resp, err := client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafka.ResourceTypeTopic,
			ResourceName: topic,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{
				{Name: "retention.bytes", Value: strconv.FormatInt(bytes, 10), ConfigOperation: kafka.ConfigOperationSet},
				{Name: "segment.bytes", Value: strconv.FormatInt(segment, 10), ConfigOperation: kafka.ConfigOperationSet},
			},
		}},
	})
	if err == nil {
		for _, r := range resp.Resources {
			err = errors.Join(err, r.Error)
		}
	}
	if err != nil {
		return fmt.Errorf("limit the retention of embedded kafka topic %s: %w", topic, err)
	}
	return nil
}

// ensureDevAdmin creates the seed's admin/admin123 for dev, loudly. An
// existing admin keeps its password. It reports whether admin has the
// seed's password.
func ensureDevAdmin(ctx context.Context, st store.Store, logger *slog.Logger) (bool, error) {
	u, err := st.GetUser(ctx, "admin")
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := upsertUser(ctx, st, "admin", DefaultPassword, []string{messages.RoleAdmin}, false); err != nil {
			return false, err
		}
		logger.Warn("DEV MODE: created user admin with password admin123. Never use this outside dev: the auth role refuses to start while a user has this password.")
		return true, nil
	case err != nil:
		return false, fmt.Errorf("look up admin: %w", err)
	default:
		if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(DefaultPassword)) == nil {
			logger.Warn("DEV MODE: user admin has the password admin123. Never use this outside dev.")
			return true, nil
		}
		return false, nil
	}
}

// writeNATSContext writes a `nats` CLI context for dev's admin: the CLI
// then connects through the auth callout as admin, with admin's inbox.
func writeNATSContext(path, url string) error {
	ctx := map[string]string{
		"description":  "sensorhub dev as admin (written by sensorhub dev)",
		"url":          url,
		"user":         "admin",
		"password":     DefaultPassword,
		"inbox_prefix": messages.InboxPrefix("admin"),
	}
	data, err := json.MarshalIndent(ctx, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

// displayAddr turns a wildcard listen address into one a person can paste.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
