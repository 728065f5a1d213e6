package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"

	"sensorhub/internal/drill"
)

func drillCommand() *command {
	const summary = "run the four failure drills against dev --chaos (auth, Kafka, the database, everything back) and print what a user saw"
	return &command{name: "drill", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("drill", summary)
		var cfg drill.Config
		var asJSON bool
		fs.StringVar(&cfg.URL, "url", drill.DefaultURL, "base URL of dev's edge")
		fs.StringVar(&cfg.NATSURL, "nats-url", drill.DefaultNATSURL, "dev's NATS server (the chaos control, as --username)")
		natsTLSFlags(fs, &cfg.NATSTLS)
		fs.StringVar(&cfg.SubjectPrefix, "subject-prefix", "sensorhub", "prefix of every NATS subject")
		fs.StringVar(&cfg.Username, "username", drill.DefaultUsername, "an admin: logs in over HTTP and connects to NATS")
		fs.StringVar(&cfg.Password, "password", drill.DefaultPassword, "password of --username")
		fs.StringVar(&cfg.Sensor, "sensor", drill.DefaultSensor, "sensor type submitted")
		fs.IntVar(&cfg.Submissions, "submissions", drill.DefaultSubmissions, "submissions per step")
		fs.DurationVar(&cfg.Hold, "hold", drill.DefaultHold, "how long each step keeps its part away once shown, for a dashboard to show it")
		fs.DurationVar(&cfg.StepTimeout, "step-timeout", drill.DefaultStepTimeout, "longest wait for what a step expects (a breaker open, the database shown down, submissions accepted again)")
		fs.DurationVar(&cfg.Wait, "wait", drill.DefaultWait, "longest wait at the end for every accepted test to complete and every queued event to reach Kafka")
		fs.DurationVar(&cfg.Timeout, "timeout", drill.DefaultTimeout, "deadline of one HTTP request or chaos control call")
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON on stdout (the steps go to stderr then)")
		return fs, func(ctx context.Context, e env) error {
			cfg.Out = e.stdout
			if asJSON {
				cfg.Out = e.stderr
			}
			rep, err := drill.Run(ctx, cfg)
			if asJSON && (err == nil || errors.Is(err, drill.ErrFailed)) {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if werr := enc.Encode(rep); werr != nil {
					return werr
				}
			}
			return err
		}
	}}
}
