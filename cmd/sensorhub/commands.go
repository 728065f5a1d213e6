package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"sensorhub/actors/auth"
	"sensorhub/actors/sensor"
	"sensorhub/bridge"
	"sensorhub/internal/app"
	"sensorhub/internal/edge"
	"sensorhub/internal/natsx"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

// devReady, when set (by tests), receives the addresses dev ended up on.
var devReady chan<- app.DevAddrs

func devCommand() *command {
	const summary = "run every role in one process on embedded NATS, SQLite and Kafka (for trying it out)"
	return &command{name: "dev", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("dev", summary)
		var c commonFlags
		c.register(fs, false)
		var cfg app.DevConfig
		fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:8000", "HTTP listen address of the edge (dev has admin/admin123: --http :8000 opens it to the network on purpose)")
		fs.StringVar(&cfg.DataDir, "data-dir", "./sensorhub-data", "directory for the SQLite database, JetStream files, the JWT key and the NATS identities")
		natsContext := "sensorhub-dev"
		fs.StringVar(&natsContext, "nats-context", natsContext, "name of the nats CLI context dev writes for admin (empty: none)")
		fs.StringVar(&cfg.NATSListen, "nats-listen", "127.0.0.1:4222", "listen address of the embedded NATS server (a free port if busy)")
		// Bound to the common flags: cfg.Common is replaced by c.common().
		fs.StringVar(&c.natsURL, "nats-url", "", "use this NATS server instead of the embedded one (with --nats-key-dir)")
		fs.StringVar(&cfg.NATSKeyDir, "nats-key-dir", "", "the roles' NATS identities: a directory written by sensorhub nats-config (default <data-dir>/nats, created)")
		fs.StringVar(&cfg.DatabaseURL, "database-url", "", "use this PostgreSQL database instead of SQLite in --data-dir")
		fs.StringVar(&cfg.KafkaListen, "kafka-listen", "127.0.0.1:9092", "listen address of the embedded Kafka-protocol broker (a free port if busy)")
		fs.StringVar(&cfg.KafkaBrokers, "kafka-brokers", "", "use these Kafka brokers (comma-separated) instead of the embedded one")
		fs.StringVar(&cfg.KafkaTopic, "kafka-topic", messages.DefaultKafkaTopic, "Kafka topic of the events")
		fs.IntVar(&cfg.Workers, "workers", 0, "sensor processor actors (0: two per CPU)")
		edgeFlags(fs, &cfg.Edge)
		cfg.KafkaRetention = 16 << 20
		fs.Var(&cfg.KafkaRetention, "kafka-retention-bytes", "what the embedded Kafka broker keeps per partition, in memory (e.g. 16MiB; 0: every event)")
		fs.Var(&cfg.MemoryLimit, "memory-limit", "soft memory limit of the process, like GOMEMLIMIT (e.g. 256MiB; 0: none)")
		metricsOn := true
		fs.BoolVar(&metricsOn, "metrics", metricsOn, "keep Prometheus metrics and serve them at GET /metrics (false: none, to measure what they cost)")
		return fs, func(ctx context.Context, e env) error {
			logger, err := c.logger(e.stderr)
			if err != nil {
				return err
			}
			if cfg.Common, err = c.common(); err != nil {
				return err
			}
			cfg.NoMetrics = !metricsOn
			cfg.Ready = devReady
			cfg.NATSContextFile = natsContextFile(e, natsContext)
			return app.RunDev(ctx, cfg, logger)
		}
	}}
}

func edgeCommand() *command {
	const summary = "run the HTTP edge (talks to the other roles over NATS)"
	return &command{name: "edge", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("edge", summary)
		var c commonFlags
		c.register(fs, true)
		var cfg app.EdgeConfig
		fs.StringVar(&cfg.HTTP, "http", edge.DefaultAddr, "HTTP listen address")
		fs.Func("trusted-proxies", "comma-separated addresses or CIDR prefixes of the reverse proxies whose X-Forwarded-For is believed (default none: the TCP peer is the client)", func(v string) error {
			ps, err := parsePrefixes(v)
			cfg.TrustedProxies = ps
			return err
		})
		edgeFlags(fs, &cfg)
		breakerFlags(fs, "auth", &cfg.AuthBreaker, edge.DefaultLoginTimeout)
		breakerFlags(fs, "sensor", &cfg.SensorBreaker, edge.DefaultRequestTimeout)
		breakerFlags(fs, "bridge", &cfg.BridgeBreaker, time.Second)
		return fs, roleRunner(&c, &cfg.Common, func(ctx context.Context, logger *slog.Logger) error {
			return app.RunEdge(ctx, cfg, logger)
		})
	}}
}

func authCommand() *command {
	const summary = "run the auth role: login, token validation, JWKS"
	return &command{name: "auth", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("auth", summary)
		var c commonFlags
		c.register(fs, true)
		var cfg app.AuthConfig
		fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://...) or sqlite:PATH")
		fs.StringVar(&cfg.KeyFile, "jwt-key-file", "./jwt-ed25519.pem", "Ed25519 private key (PKCS#8 PEM); created with mode 0600 if missing")
		fs.StringVar(&cfg.Issuer, "jwt-issuer", token.DefaultIssuer, "token issuer")
		fs.StringVar(&cfg.Audience, "jwt-audience", token.DefaultAudience, "token audience")
		fs.DurationVar(&cfg.TokenTTL, "token-ttl", token.DefaultTTL, "token lifetime")
		fs.IntVar(&cfg.JWKSReplicas, "jwks-replicas", 1, "replicas of the JWKS key-value bucket (3 on a NATS cluster; give every auth copy the same)")
		fs.StringVar(&cfg.CalloutIssuerFile, "callout-issuer-file", "", "the NATS auth callout's issuer seed (see sensorhub nats-config); with --callout-xkey-file people connect to NATS as themselves")
		fs.StringVar(&cfg.CalloutXKeyFile, "callout-xkey-file", "", "the NATS auth callout's curve key seed")
		fs.DurationVar(&cfg.CalloutUserTTL, "callout-user-ttl", 0, "how long a NATS connection admitted by password lasts before it re-authenticates (0: the token lifetime)")
		breakerFlags(fs, "database", &cfg.DatabaseBreaker, auth.DefaultDatabaseCallTimeout)
		return fs, roleRunner(&c, &cfg.Common, func(ctx context.Context, logger *slog.Logger) error {
			return app.RunAuth(ctx, cfg, logger)
		})
	}}
}

func sensorCommand() *command {
	const summary = "run the sensor role: intake, processors, store writer, sweeper, outbox relay"
	return &command{name: "sensor", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("sensor", summary)
		var c commonFlags
		c.register(fs, true)
		var cfg app.SensorConfig
		fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://...) or sqlite:PATH")
		fs.IntVar(&cfg.Workers, "workers", 0, "processor actors (0: two per CPU)")
		fs.IntVar(&cfg.MaxInFlight, "max-in-flight", sensor.DefaultMaxInFlight, "submissions being accepted at once before answering 503 overloaded")
		fs.Int64Var(&cfg.MaxInFlightBytes, "max-in-flight-bytes", sensor.DefaultMaxInFlightBytes, "bytes the submissions and queued tests may hold in memory before answering 503 overloaded")
		outboxBacklogFlag(fs, &cfg.MaxOutboxBacklog)
		fs.DurationVar(&cfg.Lease, "lease", sensor.DefaultLease, "how long a test may stay processing before the sweeper retries it")
		fs.StringVar(&cfg.Issuer, "jwt-issuer", token.DefaultIssuer, "token issuer (for the fallback verification)")
		fs.StringVar(&cfg.Audience, "jwt-audience", token.DefaultAudience, "token audience (for the fallback verification)")
		breakerFlags(fs, "database", &cfg.DatabaseBreaker, sensor.DefaultDatabaseCallTimeout)
		breakerFlags(fs, "auth", &cfg.AuthBreaker, auth.DefaultValidateCallTimeout)
		breakerFlags(fs, "jetstream", &cfg.JetStreamBreaker, sensor.DefaultJetStreamCallTimeout)
		fs.IntVar(&cfg.StreamReplicas, "stream-replicas", 1, "replicas of the SENSOR_EVENTS stream (3 on a NATS cluster)")
		fs.Int64Var(&cfg.StreamMaxBytes, "stream-max-bytes", natsx.DefaultStreamMaxBytes, "size bound of the SENSOR_EVENTS stream (full = explicit error, never silent loss)")
		fs.DurationVar(&cfg.StreamDuplicateWindow, "stream-duplicate-window", natsx.DefaultDuplicateWindow, "how long SENSOR_EVENTS drops a republished event by its id (give the bridge the same)")
		return fs, roleRunner(&c, &cfg.Common, func(ctx context.Context, logger *slog.Logger) error {
			return app.RunSensor(ctx, cfg, logger)
		})
	}}
}

func bridgeCommand() *command {
	const summary = "run the bridge role: JetStream SENSOR_EVENTS to Kafka"
	return &command{name: "bridge", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("bridge", summary)
		var c commonFlags
		c.register(fs, true)
		var cfg app.BridgeConfig
		fs.StringVar(&cfg.KafkaBrokers, "kafka-brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
		fs.StringVar(&cfg.KafkaTopic, "kafka-topic", messages.DefaultKafkaTopic, "Kafka topic of the events")
		passwordFile := kafkaSecurityFlags(fs, &cfg.KafkaTLS, &cfg.KafkaSASL)
		fs.IntVar(&cfg.BatchSize, "batch-size", bridge.DefaultBatchSize, "events per fetch and per Kafka write")
		fs.DurationVar(&cfg.AckWait, "ack-wait", bridge.DefaultAckWait, "how long JetStream waits for the bridge's ack before redelivering (at least twice --kafka-breaker-timeout)")
		breakerFlags(fs, "kafka", &cfg.KafkaBreaker, bridge.DefaultKafkaCallTime)
		fs.IntVar(&cfg.StreamReplicas, "stream-replicas", 1, "replicas of the SENSOR_EVENTS stream (3 on a NATS cluster)")
		fs.Int64Var(&cfg.StreamMaxBytes, "stream-max-bytes", natsx.DefaultStreamMaxBytes, "size bound of the SENSOR_EVENTS stream")
		fs.DurationVar(&cfg.StreamDuplicateWindow, "stream-duplicate-window", natsx.DefaultDuplicateWindow, "how long SENSOR_EVENTS drops a republished event by its id (give the sensor role the same)")
		return fs, func(ctx context.Context, e env) error {
			logger, err := c.logger(e.stderr)
			if err != nil {
				return err
			}
			if cfg.Common, err = c.common(); err != nil {
				return err
			}
			if cfg.KafkaSASL.Password, err = kafkaSASLPassword(*passwordFile, e.getenv); err != nil {
				return err
			}
			return app.RunBridge(ctx, cfg, logger)
		}
	}}
}

func migrateCommand() *command {
	const summary = "apply the database schema migrations and exit"
	return &command{name: "migrate", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("migrate", summary)
		var url, logFormat string
		fs.StringVar(&url, "database-url", "", "PostgreSQL URL (postgres://...) or sqlite:PATH")
		fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
		return fs, func(ctx context.Context, e env) error {
			logger, err := app.NewLogger(e.stderr, logFormat, "info")
			if err != nil {
				return err
			}
			if url == "" {
				return errors.New("--database-url is required")
			}
			return app.Migrate(ctx, url, logger)
		}
	}}
}

func healthCommand() *command {
	const summary = "check a role's health and exit 0 if it answers (for container health checks)"
	return &command{name: "health", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("health", summary)
		var cfg app.HealthCheckConfig
		fs.StringVar(&cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL")
		var id natsIdentityFlags
		id.register(fs)
		natsTLSFlags(fs, &cfg.NATSTLS)
		fs.StringVar(&cfg.SubjectPrefix, "subject-prefix", "sensorhub", "prefix of every NATS subject")
		fs.StringVar(&cfg.Role, "role", "", "role to ask over NATS: auth, sensor or bridge")
		fs.StringVar(&cfg.URL, "url", "", "HTTP URL to GET instead (the edge's /readyz)")
		fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "deadline of the check")
		return fs, func(ctx context.Context, e env) error {
			var err error
			if cfg.NATSCreds, err = id.credentials(); err != nil {
				return err
			}
			return app.CheckHealth(ctx, cfg, e.stdout)
		}
	}}
}

// natsContextFile is where the nats CLI looks for context name:
// $XDG_CONFIG_HOME/nats/context/<name>.json, else under ~/.config.
func natsContextFile(e env, name string) string {
	if name == "" {
		return ""
	}
	dir := e.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := e.getenv("HOME")
		if home == "" {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "nats", "context", name+".json")
}

// parsePrefixes reads a comma-separated list of addresses (as /32 or /128)
// and CIDR prefixes.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func natsConfigCommand() *command {
	const summary = "write the nats-server configuration (accounts, role users, auth callout) and one credential per role"
	return &command{name: "nats-config", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("nats-config", summary)
		var cfg app.NATSConfigConfig
		fs.StringVar(&cfg.Out, "out", "", "directory to write (existing keys in it are kept)")
		fs.StringVar(&cfg.SubjectPrefix, "subject-prefix", "sensorhub", "prefix of every NATS subject")
		fs.StringVar(&cfg.Listen, "listen", "0.0.0.0:4222", "client listen address of the server")
		fs.StringVar(&cfg.StoreDir, "store-dir", "/data/jetstream", "JetStream store directory of the server")
		fs.StringVar(&cfg.Monitor, "monitor", "", "HTTP monitoring address of the server (e.g. 127.0.0.1:8222 for a health check; empty: none)")
		fs.BoolVar(&cfg.SyncAlways, "sync-always", true, "fsync every JetStream write (survives power loss; see the README)")
		fs.StringVar(&cfg.TLS.CertFile, "tls-cert", "", "server TLS certificate (PEM), as the server sees the path")
		fs.StringVar(&cfg.TLS.KeyFile, "tls-key", "", "server TLS key (PEM)")
		fs.StringVar(&cfg.TLS.CAFile, "tls-ca", "", "CA of client certificates (with --tls-verify)")
		fs.BoolVar(&cfg.TLS.Verify, "tls-verify", false, "require client certificates signed by --tls-ca")
		fs.StringVar(&cfg.ServerName, "server-name", "", "name of the server (default sensorhub); each node of a cluster needs its own")
		fs.StringVar(&cfg.ClusterName, "cluster-name", "", "make the server a node of this NATS cluster (writes nats-server-<server-name>.conf; routes authenticate with a password kept in --out)")
		fs.StringVar(&cfg.ClusterListen, "cluster-listen", "0.0.0.0:6222", "route listen address of a cluster node")
		routes := fs.String("routes", "", "route addresses of the cluster's nodes (host:port), comma-separated")
		return fs, func(_ context.Context, e env) error {
			cfg.Routes = splitComma(*routes)
			return app.WriteNATSConfig(cfg, e.stdout)
		}
	}}
}

// roleRunner is the runner of a long-running role: the logger and the
// common settings (NATS identity and TLS included) from c into common,
// then run.
func roleRunner(c *commonFlags, common *app.Common, run func(context.Context, *slog.Logger) error) runner {
	return func(ctx context.Context, e env) error {
		logger, err := c.logger(e.stderr)
		if err != nil {
			return err
		}
		if *common, err = c.common(); err != nil {
			return err
		}
		return run(ctx, logger)
	}
}

// splitComma splits a comma-separated flag value, dropping empty entries.
func splitComma(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
