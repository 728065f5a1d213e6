package bench

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"sensorhub/messages"
)

// Run logs in, sends the load, waits for the completions and, with
// cfg.Baseline, measures the bare handler. It returns the report, and
// ErrIncomplete (with the report) when accepted tests did not complete
// within cfg.Wait. ctx ending stops everything early.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	subj, _ := messages.NewSubjects(cfg.SubjectPrefix)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.PollWorkers + 1},
	}
	defer client.CloseIdleConnections()
	token, err := login(ctx, client, cfg.URL, cfg.Username, cfg.Password)
	if err != nil {
		return Report{}, err
	}
	nom := 0.0
	if cfg.Readings > 0 {
		nom = nominal(ctx, client, cfg.URL, cfg.Sensor)
	}
	targets := submitTargets(cfg.URL, cfg.Sensor, cfg.Readings, nom, cfg.SensorIDs, token)

	rep := Report{
		Date:    time.Now().UTC().Truncate(time.Second),
		Machine: Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH, LoadAvg: loadAverage()},
		Target:  TargetInfo{URL: cfg.URL, Sensor: cfg.Sensor, Readings: cfg.Readings, SensorIDs: max(cfg.SensorIDs, 1), Mode: "rate", Rate: cfg.Rate, DurationS: cfg.Duration.Seconds()},
	}
	if cfg.Burst > 0 {
		rep.Target = TargetInfo{URL: cfg.URL, Sensor: cfg.Sensor, Readings: cfg.Readings, SensorIDs: max(cfg.SensorIDs, 1), Mode: "burst", Burst: cfg.Burst}
	}

	// Completions are followed from before the first submission.
	t := newTracker()
	source := "polling"
	var pl *poller
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var pollers sync.WaitGroup
	if cfg.NATSURL != "" {
		source = "events"
		unsubscribe, err := followEvents(cfg.NATSURL, cfg.NATSTLS, cfg.Username, cfg.Password, subj, t)
		if err != nil {
			return Report{}, err
		}
		defer unsubscribe()
	} else {
		pl = newPoller(client, cfg.URL, token, cfg.PollInterval, t)
		pollers.Go(func() { pl.run(pollCtx, cfg.PollWorkers) })
	}

	mem := startMemorySampler(cfg.PIDs)
	var c counters
	var phase atomic.Value
	phase.Store("load")
	prog := startProgress(cfg.Progress, cfg.ProgressTTY, cfg.ProgressInterval, &c, t, func() string { return phase.Load().(string) })

	cpuStart := takeCPU(mem.pids)
	prof := startServerProfile(ctx, cfg)
	defer prof.stop()
	res := runLoad(ctx, targets,
		load{Rate: cfg.Rate, Duration: cfg.Duration, Burst: cfg.Burst, Timeout: cfg.Timeout, Connections: cfg.Connections}, &c,
		func(s sample) {
			if s.testID == "" {
				return
			}
			t.accepted(s.testID, s.start)
			if pl != nil {
				pl.add(s.testID, s.start)
			}
		})
	phase.Store("waiting")
	wctx, cancel := context.WithTimeout(ctx, cfg.Wait)
	t.wait(wctx)
	cancel()
	cpuEnd := takeCPU(mem.pids)
	stopPolling()
	pollers.Wait()
	prog.finish()

	rep.Run = RunStats{
		LoadStats:    res.stats(),
		Completion:   t.stats(source, res.firstStart),
		ServerMemory: mem.finish(),
	}
	rep.Run.CPU = cpuBetween(cpuStart, cpuEnd, rep.Machine.CPUs, rep.Run.Completion.Completed, rep.Machine.LoadAvg)
	rep.Run.CPUProfile, rep.Run.CPUBudget = prof.finish(rep.Run.CPU.ServerPerTestUS, len(mem.pids))
	if pl != nil {
		rep.Run.Completion.PollErrors = pl.errors.Load()
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("bench interrupted: %w", err)
	}

	if cfg.Baseline {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bench: measuring the bare handler (%s, then %s at full speed)\n", cfg.shape(), cfg.BaselineDuration)
		}
		b, err := runBaseline(ctx, cfg, targets)
		if err != nil {
			return rep, err
		}
		b.Ratios = ratios(rep.Run.LoadStats, b)
		rep.Baseline = b
	}
	if n := rep.Run.Completion.NotCompleted; n > 0 {
		return rep, fmt.Errorf("%w: %d of %d within %s", ErrIncomplete, n, rep.Run.Accepted, cfg.Wait)
	}
	return rep, nil
}
