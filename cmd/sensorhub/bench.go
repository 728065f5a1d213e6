package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"sensorhub/internal/bench"
)

func benchCommand() *command {
	const summary = "load an edge with sensor tests and report latencies, completions, memory and CPU (--baseline: beside a bare handler; --cpu-profile: the server's CPU by component)"
	return &command{name: "bench", summary: summary, flags: func() (*flag.FlagSet, runner) {
		fs := newFlagSet("bench", summary)
		var (
			cfg      bench.Config
			pids     string
			asJSON   bool
			noStatus bool
			cpuProf  string
		)
		fs.StringVar(&cfg.URL, "url", bench.DefaultURL, "base URL of the edge")
		fs.StringVar(&cfg.Username, "username", "admin", "user to log in as (once)")
		fs.StringVar(&cfg.Password, "password", "admin123", "password of --username")
		fs.IntVar(&cfg.Rate, "rate", 100, "submissions started per second (open model: on schedule, answered or not)")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long --rate lasts")
		fs.IntVar(&cfg.Burst, "burst", 0, "start this many submissions at once instead of --rate")
		fs.StringVar(&cfg.Sensor, "sensor", bench.DefaultSensor, "sensor type submitted")
		fs.IntVar(&cfg.Readings, "readings", 0, "readings per submission (0: no body, the simulated path)")
		fs.IntVar(&cfg.SensorIDs, "sensor-ids", 1, "sensors the submissions name in turn (bench-0, bench-1...; 1: one sensor, the default one without readings)")
		fs.StringVar(&cfg.NATSURL, "nats-url", "", "follow completions through the events on this NATS server (else poll GET /test/{id})")
		natsTLSFlags(fs, &cfg.NATSTLS)
		fs.StringVar(&cfg.SubjectPrefix, "subject-prefix", "sensorhub", "prefix of the event subjects")
		fs.IntVar(&cfg.PollWorkers, "poll-workers", bench.DefaultPollWorkers, "concurrent GET /test/{id} when polling")
		fs.DurationVar(&cfg.Wait, "wait", bench.DefaultWait, "longest wait for the completions once the load has ended")
		fs.DurationVar(&cfg.Timeout, "timeout", bench.DefaultTimeout, "deadline of one submission")
		fs.IntVar(&cfg.Connections, "connections", bench.DefaultConnections, "most connections to the edge; a request finding all busy waits, and the wait counts in its latency")
		fs.StringVar(&cfg.CPUProfileURL, "cpu-profile", "", "base URL of the server's net/http/pprof (dev --pprof 127.0.0.1:6060: http://127.0.0.1:6060, or that address): profile its CPU during the load, after a warm-up, and report it by component (not for --burst; --cpuprofile is the bench's own)")
		fs.StringVar(&pids, "pid", "", "comma-separated server PIDs whose memory to report (default: every other process named sensorhub)")
		fs.BoolVar(&cfg.Baseline, "baseline", false, "also measure a bare in-process handler answering 202: under the same load, and at full speed (the ceiling)")
		fs.DurationVar(&cfg.BaselineDuration, "baseline-duration", bench.DefaultBaselineDuration, "how long the ceiling is measured")
		fs.IntVar(&cfg.BaselineConcurrency, "baseline-concurrency", bench.DefaultBaselineConcurrency, "requests in flight while the ceiling is measured")
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		fs.BoolVar(&noStatus, "quiet", false, "no progress line on stderr")
		fs.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the bench itself to this file (the load generator's own cost; --cpu-profile is the server's)")
		return fs, func(ctx context.Context, e env) error {
			for _, p := range strings.Split(pids, ",") {
				if p = strings.TrimSpace(p); p == "" {
					continue
				}
				n, err := strconv.Atoi(p)
				if err != nil || n <= 0 {
					fmt.Fprintf(e.stderr, "sensorhub bench: --pid %q: want process ids\n", pids)
					return errUsage
				}
				cfg.PIDs = append(cfg.PIDs, n)
			}
			if !noStatus {
				cfg.Progress, cfg.ProgressTTY = e.stderr, isTerminal(e.stderr)
			}
			// The load generator shares the machine it measures: collecting
			// its garbage less often leaves more CPU to the server, at the
			// price of memory the bench can spare.
			defer debug.SetGCPercent(debug.SetGCPercent(benchGCPercent))
			if cpuProf != "" {
				stop, err := startCPUProfile(cpuProf)
				if err != nil {
					return err
				}
				defer stop()
			}
			rep, err := bench.Run(ctx, cfg)
			if err != nil && !errors.Is(err, bench.ErrIncomplete) {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if werr := enc.Encode(rep); werr != nil {
					return werr
				}
			} else if werr := bench.WriteText(e.stdout, rep); werr != nil {
				return werr
			}
			return err
		}
	}}
}

// isTerminal reports whether w is a character device (a terminal), where a
// progress line may be rewritten in place.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// benchGCPercent is the bench's GOGC while it runs.
const benchGCPercent = 400

// startCPUProfile profiles this process into path until the returned func
// runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}
