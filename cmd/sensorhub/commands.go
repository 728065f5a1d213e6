package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"sensorhub/internal/app"
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
		fs.StringVar(&cfg.HTTP, "http", ":8000", "HTTP listen address of the edge")
		fs.StringVar(&cfg.DataDir, "data-dir", "./sensorhub-data", "directory for the SQLite database, JetStream files and the JWT key")
		fs.StringVar(&cfg.NATSListen, "nats-listen", "127.0.0.1:4222", "listen address of the embedded NATS server (a free port if busy)")
		// Bound to the common flags: cfg.Common is replaced by c.common().
		fs.StringVar(&c.natsURL, "nats-url", "", "use this NATS server instead of the embedded one")
		fs.StringVar(&cfg.DatabaseURL, "database-url", "", "use this PostgreSQL database instead of SQLite in --data-dir")
		fs.StringVar(&cfg.KafkaListen, "kafka-listen", "127.0.0.1:9092", "listen address of the embedded Kafka-protocol broker (a free port if busy)")
		fs.StringVar(&cfg.KafkaBrokers, "kafka-brokers", "", "use these Kafka brokers (comma-separated) instead of the embedded one")
		fs.StringVar(&cfg.KafkaTopic, "kafka-topic", "sensor-events", "Kafka topic of the events")
		fs.IntVar(&cfg.Workers, "workers", 0, "sensor processor actors (0: two per CPU)")
		cfg.KafkaRetention = 16 << 20
		fs.Var(&cfg.KafkaRetention, "kafka-retention-bytes", "what the embedded Kafka broker keeps per partition, in memory (e.g. 16MiB; 0: every event)")
		fs.Var(&cfg.MemoryLimit, "memory-limit", "soft memory limit of the process, like GOMEMLIMIT (e.g. 256MiB; 0: none)")
		return fs, func(ctx context.Context, e env) error {
			logger, err := c.logger(e.stderr)
			if err != nil {
				return err
			}
			cfg.Common = c.common()
			cfg.Ready = devReady
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
		fs.StringVar(&cfg.HTTP, "http", ":8000", "HTTP listen address")
		breakerFlags(fs, "auth", &cfg.AuthBreaker, 5*time.Second)
		breakerFlags(fs, "sensor", &cfg.SensorBreaker, 2*time.Second)
		breakerFlags(fs, "bridge", &cfg.BridgeBreaker, time.Second)
		return fs, func(ctx context.Context, e env) error {
			logger, err := c.logger(e.stderr)
			if err != nil {
				return err
			}
			cfg.Common = c.common()
			return app.RunEdge(ctx, cfg, logger)
		}
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
		fs.StringVar(&cfg.Issuer, "jwt-issuer", "sensorhub", "token issuer")
		fs.StringVar(&cfg.Audience, "jwt-audience", "sensorhub", "token audience")
		fs.DurationVar(&cfg.TokenTTL, "token-ttl", time.Hour, "token lifetime")
		breakerFlags(fs, "database", &cfg.DatabaseBreaker, 2*time.Second)
		return fs, func(ctx context.Context, e env) error {
			logger, err := c.logger(e.stderr)
			if err != nil {
				return err
			}
			cfg.Common = c.common()
			return app.RunAuth(ctx, cfg, logger)
		}
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
		fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 20000, "submissions being accepted at once before answering 503 overloaded")
		fs.DurationVar(&cfg.Lease, "lease", 30*time.Second, "how long a test may stay processing before the sweeper retries it")
		fs.StringVar(&cfg.Issuer, "jwt-issuer", "sensorhub", "token issuer (for the fallback verification)")
		fs.StringVar(&cfg.Audience, "jwt-audience", "sensorhub", "token audience (for the fallback verification)")
		breakerFlags(fs, "database", &cfg.DatabaseBreaker, 2*time.Second)
		breakerFlags(fs, "auth", &cfg.AuthBreaker, 500*time.Millisecond)
		breakerFlags(fs, "jetstream", &cfg.JetStreamBreaker, 5*time.Second)
		fs.IntVar(&cfg.StreamReplicas, "stream-replicas", 1, "replicas of the SENSOR_EVENTS stream (3 on a NATS cluster)")
		fs.Int64Var(&cfg.StreamMaxBytes, "stream-max-bytes", 1<<30, "size bound of the SENSOR_EVENTS stream (full = explicit error, never silent loss)")
		return fs, func(ctx context.Context, e env) error {
			logger, err := c.logger(e.stderr)
			if err != nil {
				return err
			}
			cfg.Common = c.common()
			return app.RunSensor(ctx, cfg, logger)
		}
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
		fs.StringVar(&cfg.KafkaTopic, "kafka-topic", "sensor-events", "Kafka topic of the events")
		passwordFile := kafkaSecurityFlags(fs, &cfg.KafkaTLS, &cfg.KafkaSASL)
		fs.IntVar(&cfg.BatchSize, "batch-size", 500, "events per fetch and per Kafka write")
		fs.DurationVar(&cfg.AckWait, "ack-wait", 30*time.Second, "how long JetStream waits for the bridge's ack before redelivering (at least twice --kafka-breaker-timeout)")
		breakerFlags(fs, "kafka", &cfg.KafkaBreaker, 10*time.Second)
		fs.IntVar(&cfg.StreamReplicas, "stream-replicas", 1, "replicas of the SENSOR_EVENTS stream (3 on a NATS cluster)")
		fs.Int64Var(&cfg.StreamMaxBytes, "stream-max-bytes", 1<<30, "size bound of the SENSOR_EVENTS stream")
		return fs, func(ctx context.Context, e env) error {
			logger, err := c.logger(e.stderr)
			if err != nil {
				return err
			}
			cfg.Common = c.common()
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

func userCommand() *command {
	const summary = "manage users: 'sensorhub user add --username U --password-stdin --roles admin'"
	return &command{name: "user", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("user add", "create a user or update its password and roles (bcrypt)")
		var (
			u                       app.UserConfig
			roles, logFormat        string
			passwordStdin, disabled bool
		)
		fs.StringVar(&u.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://...) or sqlite:PATH")
		fs.StringVar(&u.Username, "username", "", "user name")
		fs.StringVar(&u.Password, "password", "", "password (prefer --password-stdin: arguments are visible to other users)")
		fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
		fs.StringVar(&roles, "roles", "user", "comma-separated roles (admin may read every test)")
		fs.BoolVar(&disabled, "disabled", false, "create the user disabled (cannot log in; its tokens are refused)")
		fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
		return fs, func(ctx context.Context, e env) error {
			logger, err := app.NewLogger(e.stderr, logFormat, "info")
			if err != nil {
				return err
			}
			if passwordStdin {
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("read password from stdin: %w", err)
				}
				u.Password = strings.TrimRight(line, "\r\n")
			}
			for _, r := range strings.Split(roles, ",") {
				if r = strings.TrimSpace(r); r != "" {
					u.Roles = append(u.Roles, r)
				}
			}
			u.Disabled = disabled
			return app.AddUser(ctx, u, logger)
		}
	}}
}

func healthCommand() *command {
	const summary = "check a role's health and exit 0 if it answers (for container health checks)"
	return &command{name: "health", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("health", summary)
		var cfg app.HealthCheckConfig
		fs.StringVar(&cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL")
		natsTLSFlags(fs, &cfg.NATSTLS)
		fs.StringVar(&cfg.SubjectPrefix, "subject-prefix", "sensorhub", "prefix of every NATS subject")
		fs.StringVar(&cfg.Role, "role", "", "role to ask over NATS: auth, sensor or bridge")
		fs.StringVar(&cfg.URL, "url", "", "HTTP URL to GET instead (the edge's /readyz)")
		fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "deadline of the check")
		return fs, func(ctx context.Context, e env) error {
			return app.CheckHealth(ctx, cfg, e.stdout)
		}
	}}
}
