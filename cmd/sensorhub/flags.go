package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"sensorhub/actors/sensor"
	"sensorhub/bridge"
	"sensorhub/internal/app"
	"sensorhub/internal/breaker"
	"sensorhub/internal/edge"
	"sensorhub/internal/metrics"
	"sensorhub/internal/natsx"
	"sensorhub/internal/tracing"
)

var (
	errHelp  = errors.New("help shown")
	errUsage = errors.New("usage error")
)

// env is what a command may read from its surroundings.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// runner runs a command whose flags were parsed into its config.
type runner func(ctx context.Context, e env) error

// command is one subcommand. flags builds its flag set bound to a fresh
// config, and the runner that uses that config.
type command struct {
	name    string
	summary string
	flags   func() (*flag.FlagSet, runner)
	// dispatch, when set, runs the command instead (for one with
	// subcommands of its own, like `user add`); flags is then its first
	// subcommand's.
	dispatch func(ctx context.Context, args []string, e env) error
}

func (c *command) run(ctx context.Context, args []string, e env) error {
	if c.dispatch != nil {
		return c.dispatch(ctx, args, e)
	}
	fs, r := c.flags()
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "sensorhub %s: unexpected arguments %q\n", c.name, fs.Args())
		return errUsage
	}
	return r(ctx, e)
}

// EnvPrefix prefixes the environment variable of every flag:
// --nats-url is SENSORHUB_NATS_URL.
const EnvPrefix = "SENSORHUB_"

// EnvName is the environment variable that sets flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func commands() map[string]*command {
	cmds := []*command{
		devCommand(), edgeCommand(), authCommand(), sensorCommand(), bridgeCommand(),
		migrateCommand(), userCommand(), healthCommand(), benchCommand(), drillCommand(), natsConfigCommand(),
		statusCommand(), dlqCommand(),
	}
	m := make(map[string]*command, len(cmds))
	for _, c := range cmds {
		m[c.name] = c
	}
	return m
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sensorhub: a resilient sensor-testing platform (NATS actors, PostgreSQL, Kafka)")
	fmt.Fprintln(w, "\nUsage: sensorhub <command> [flags]\n\nCommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'sensorhub <command> --help' for its flags. Every flag can also be set")
	fmt.Fprintln(w, "through the environment: --nats-url is SENSORHUB_NATS_URL.")
}

// parse parses args into fs, then fills every flag not given on the command
// line from its SENSORHUB_* variable.
func parse(fs *flag.FlagSet, args []string, e env) error {
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var bad error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || bad != nil {
			return
		}
		if v := e.getenv(EnvName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				bad = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err)
			}
		}
	})
	if bad != nil {
		fmt.Fprintln(e.stderr, bad)
		return errUsage
	}
	return nil
}

// newFlagSet returns a flag set whose usage lists each flag's variable.
func newFlagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("sensorhub "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: sensorhub %s [flags]\n\n%s\n\nFlags (environment variable in brackets):\n", name, summary)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s [%s]\n      %s%s\n", f.Name, EnvName(f.Name), f.Usage, def)
		})
	}
	return fs
}

// commonFlags are shared by every long-running role.
type commonFlags struct {
	natsURL   string
	nats      natsIdentityFlags
	natsTLS   natsx.TLSFiles
	prefix    string
	logFormat string
	logLevel  string
	logStacks bool
	chaos     bool
	pprof     string
	metrics   string
	tracing   tracing.Config
}

func (c *commonFlags) register(fs *flag.FlagSet, withNATSURL bool) {
	if withNATSURL {
		fs.StringVar(&c.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
		c.nats.register(fs)
	}
	natsTLSFlags(fs, &c.natsTLS)
	fs.StringVar(&c.prefix, "subject-prefix", "sensorhub", "prefix of every NATS subject")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.logStacks, "log-stacks", false, "add the stack of a panic to supervision log lines")
	fs.BoolVar(&c.chaos, "chaos", false, "enable the sensorhub.chaos.panic endpoint, and in dev sensorhub.chaos.control (stop and start Kafka, the database, a role; admin only) (demos only)")
	fs.StringVar(&c.pprof, "pprof", "", "serve net/http/pprof on this localhost address (e.g. 127.0.0.1:6060)")
	fs.StringVar(&c.metrics, "metrics-listen", metrics.DefaultListen,
		"serve Prometheus metrics at /metrics on this address, e.g. :9090 (empty: off; the edge and dev also serve them at GET /metrics on their HTTP port)")
	fs.StringVar(&c.tracing.Endpoint, "otlp-endpoint", "",
		"send OpenTelemetry traces over OTLP/HTTP to this collector URL, e.g. http://127.0.0.1:4318 ("+tracing.TracesPath+" is added to a URL without a path; empty: tracing off)")
	fs.Float64Var(&c.tracing.SampleRatio, "otlp-sample-ratio", 1,
		"share of new traces recorded with --otlp-endpoint, 0 to 1; a request with a traceparent follows its caller's decision")
	fs.DurationVar(&c.tracing.Timeout, "otlp-timeout", tracing.DefaultTimeout, "deadline of one export of spans to --otlp-endpoint")
}

func (c *commonFlags) logger(w io.Writer) (*slog.Logger, error) {
	return app.NewLogger(w, c.logFormat, c.logLevel)
}

func (c *commonFlags) common() (app.Common, error) {
	creds, err := c.nats.credentials()
	if err != nil {
		return app.Common{}, err
	}
	if err := c.tracing.Validate(); err != nil {
		return app.Common{}, err
	}
	return app.Common{NATSURL: c.natsURL, NATSCreds: creds, NATSTLS: c.natsTLS, SubjectPrefix: c.prefix, LogStacks: c.logStacks,
		Chaos: c.chaos, PprofAddr: c.pprof, MetricsListen: c.metrics, Tracing: c.tracing}, nil
}

// natsIdentityFlags are who a process is on the bus: a role's nkey seed
// file (what `sensorhub nats-config` writes), or a user and a password
// file (for a deployment that defines its own users).
type natsIdentityFlags struct {
	nkeyFile     string
	user         string
	passwordFile string
}

func (n *natsIdentityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.nkeyFile, "nats-nkey-file", "", "this role's NATS nkey seed file (see sensorhub nats-config)")
	fs.StringVar(&n.user, "nats-user", "", "NATS user, instead of an nkey")
	fs.StringVar(&n.passwordFile, "nats-password-file", "", "file holding the password of --nats-user")
}

func (n *natsIdentityFlags) credentials() (natsx.Credentials, error) {
	c := natsx.Credentials{NkeyFile: n.nkeyFile, User: n.user}
	if n.passwordFile != "" {
		data, err := os.ReadFile(n.passwordFile)
		if err != nil {
			return natsx.Credentials{}, fmt.Errorf("--nats-password-file: %w", err)
		}
		c.Password = strings.TrimRight(string(data), "\r\n")
	}
	if c.NkeyFile != "" && c.User != "" {
		return natsx.Credentials{}, errors.New("give --nats-nkey-file or --nats-user, not both")
	}
	return c, nil

}

// natsTLSFlags registers the TLS files of a NATS client as --nats-tls-*.
func natsTLSFlags(fs *flag.FlagSet, f *natsx.TLSFiles) {
	fs.StringVar(&f.CAFile, "nats-tls-ca", "", "CA certificates (PEM) that verify the NATS server; any --nats-tls-* file turns TLS on")
	fs.StringVar(&f.CertFile, "nats-tls-cert", "", "client certificate (PEM) for a NATS server that requires mutual TLS (with --nats-tls-key)")
	fs.StringVar(&f.KeyFile, "nats-tls-key", "", "private key (PEM) of --nats-tls-cert")
}

// kafkaPasswordEnv holds the Kafka SASL password. It is not a flag's
// variable: there is no password flag, since arguments show in ps.
const kafkaPasswordEnv = EnvPrefix + "KAFKA_SASL_PASSWORD"

// kafkaSecurityFlags registers --kafka-tls* and --kafka-sasl-*, and returns
// where --kafka-sasl-password-file lands (see kafkaSASLPassword).
func kafkaSecurityFlags(fs *flag.FlagSet, t *bridge.TLSConfig, s *bridge.SASLConfig) *string {
	fs.BoolVar(&t.Enabled, "kafka-tls", false, "TLS to Kafka, verifying the brokers with the system's root CAs (any --kafka-tls-* file turns TLS on too)")
	fs.StringVar(&t.CAFile, "kafka-tls-ca", "", "CA certificates (PEM) that verify the Kafka brokers; turns TLS on")
	fs.StringVar(&t.CertFile, "kafka-tls-cert", "", "client certificate (PEM) for brokers that require mutual TLS (with --kafka-tls-key)")
	fs.StringVar(&t.KeyFile, "kafka-tls-key", "", "private key (PEM) of --kafka-tls-cert")
	fs.StringVar(&s.Mechanism, "kafka-sasl-mechanism", "", "SASL authentication to Kafka: plain, scram-sha-256 or scram-sha-512 (none when empty)")
	fs.StringVar(&s.Username, "kafka-sasl-user", "", "SASL user name")
	return fs.String("kafka-sasl-password-file", "", "file whose first line is the SASL password; or set "+kafkaPasswordEnv+" (there is no password flag: arguments show in ps)")
}

// kafkaSASLPassword reads the Kafka SASL password from file (its first
// line) or from SENSORHUB_KAFKA_SASL_PASSWORD; both at once is a mistake.
func kafkaSASLPassword(file string, getenv func(string) string) (string, error) {
	fromEnv := getenv(kafkaPasswordEnv)
	if file == "" {
		return fromEnv, nil
	}
	if fromEnv != "" {
		return "", fmt.Errorf("give the Kafka SASL password once: --kafka-sasl-password-file or %s, not both", kafkaPasswordEnv)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the Kafka SASL password: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}

// breakerFlags registers the settings of one breaker as --<name>-breaker-*.
func breakerFlags(fs *flag.FlagSet, name string, cfg *breaker.Config, defTimeout time.Duration) {
	fs.DurationVar(&cfg.CallTimeout, name+"-breaker-timeout", defTimeout, "deadline of each call to "+name)
	fs.DurationVar(&cfg.OpenFor, name+"-breaker-open-for", breaker.DefaultOpenFor, "how long the "+name+" breaker stays open before a probe")
	fs.Func(name+"-breaker-failures", fmt.Sprintf("consecutive failures that open the %s breaker (default %d)", name, breaker.DefaultFailures), func(s string) error {
		var n uint32
		if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n == 0 {
			return fmt.Errorf("want a positive integer")
		}
		cfg.Failures = n
		return nil
	})
}

// outboxBacklogFlag registers --max-outbox-backlog: the outbox rows past
// which the sensor role refuses submissions with 503 backlog_full.
func outboxBacklogFlag(fs *flag.FlagSet, v *int64) {
	fs.Int64Var(v, "max-outbox-backlog", sensor.DefaultMaxOutboxBacklog, "events waiting in the outbox at which submissions are refused with 503 backlog_full (0: no bound)")
}

// edgeFlags registers the edge's bounds, in `edge` and in `dev`: the
// retries of a submission whose answer was lost, the requests in flight,
// and the queue target of the adaptive submission limit.
func edgeFlags(fs *flag.FlagSet, cfg *app.EdgeConfig) {
	fs.IntVar(&cfg.SubmitAttempts, "edge-submit-attempts", edge.DefaultSubmitAttempts,
		"sends of a submission at most when its answer is lost (timeout, or no responders), under one idempotency key")
	fs.DurationVar(&cfg.SubmitTimeout, "edge-submit-timeout", edge.DefaultSubmitTimeout,
		"deadline of a submission with all its sends and the waits between them")
	fs.IntVar(&cfg.MaxConcurrent, "edge-max-concurrent", edge.DefaultMaxConcurrent,
		"requests served at once; past it 503 overloaded with Retry-After, before the body is read")
	fs.DurationVar(&cfg.QueueTarget, "edge-queue-target", edge.DefaultQueueTarget,
		"latency of a submission at the edge past which, when even the fastest of a 100ms interval took longer (a standing queue), the edge lowers the submissions it admits at once; past that adaptive limit 503 overloaded, before the body is read (0: only --edge-max-concurrent)")
}
