package main

import (
	"context"
	"flag"
	"time"

	"sensorhub/internal/app"
)

// natsPasswordEnv holds the password of --nats-user for the operator
// commands (status, dlq) when no --nats-password-file is given. It is not a
// flag's variable: there is no password flag, since arguments show in ps.
const natsPasswordEnv = EnvPrefix + "NATS_PASSWORD"

// personCredentials are the identity flags' credentials, the password of
// --nats-user also from SENSORHUB_NATS_PASSWORD.
func personCredentials(id *natsIdentityFlags, e env) (app.DLQConfig, error) {
	creds, err := id.credentials()
	if err != nil {
		return app.DLQConfig{}, err
	}
	if creds.User != "" && id.passwordFile == "" {
		creds.Password = e.getenv(natsPasswordEnv)
	}
	return app.DLQConfig{NATSCreds: creds}, nil
}

func statusCommand() *command {
	const summary = "print the system's health, breakers and flow once (or --watch); exit 0 ok, 1 degraded, 2 down"
	return &command{name: "status", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("status", summary)
		var cfg app.StatusConfig
		var watch bool
		fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8000", "base URL of the edge to ask (GET /health, GET /kafka/stats)")
		fs.StringVar(&cfg.NATSURL, "nats-url", "", "ask NATS directly instead of the edge (with --nats-user and its password in --nats-password-file or "+natsPasswordEnv+")")
		var id natsIdentityFlags
		id.register(fs)
		natsTLSFlags(fs, &cfg.NATSTLS)
		fs.StringVar(&cfg.SubjectPrefix, "subject-prefix", "sensorhub", "prefix of every NATS subject")
		fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "deadline of one picture")
		fs.BoolVar(&watch, "watch", false, "redraw the picture every --interval until interrupted (then exit 0)")
		fs.DurationVar(&cfg.Watch, "interval", 2*time.Second, "how often --watch redraws")
		fs.BoolVar(&cfg.JSON, "json", false, "print the picture as JSON (one object a line with --watch)")
		return fs, func(ctx context.Context, e env) error {
			p, err := personCredentials(&id, e)
			if err != nil {
				return err
			}
			cfg.NATSCreds = p.NATSCreds
			if !watch {
				cfg.Watch = 0
			} else if cfg.Watch <= 0 {
				cfg.Watch = 2 * time.Second
			}
			return app.Status(ctx, cfg, e.stdout)
		}
	}}
}
