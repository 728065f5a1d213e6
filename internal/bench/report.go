package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one bench run; its JSON form is the output of
// `sensorhub bench --json`.
type Report struct {
	Date    time.Time  `json:"date"`
	Machine Machine    `json:"machine"`
	Target  TargetInfo `json:"target"`
	Run     RunStats   `json:"run"`
	// Baseline is set with Config.Baseline.
	Baseline *BaselineStats `json:"baseline,omitempty"`
}

// Machine is where the bench ran.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	// LoadAvg is the 1-minute load average when the run began (from
	// /proc/loadavg; 0 where there is none): above the CPU count, other
	// work was competing for the machine.
	LoadAvg float64 `json:"load_avg_1m"`
}

// TargetInfo is what was measured and how.
type TargetInfo struct {
	URL      string `json:"url"`
	Sensor   string `json:"sensor"`
	Readings int    `json:"readings"`
	// SensorIDs is how many sensor ids the submissions name, in turn.
	SensorIDs int `json:"sensor_ids"`
	// Mode is "rate" (Rate per second for DurationS) or "burst" (Burst at once).
	Mode      string  `json:"mode"`
	Rate      int     `json:"rate,omitempty"`
	DurationS float64 `json:"duration_s,omitempty"`
	Burst     int     `json:"burst,omitempty"`
}

// LoadStats describes the answers to one load.
type LoadStats struct {
	// Requests were sent; Accepted were answered 202 with a test id.
	Requests int `json:"requests"`
	Accepted int `json:"accepted"`
	// AchievedRate is Accepted per second from the first request sent to
	// the last 202; SendRate is requests started per second.
	AchievedRate float64 `json:"achieved_rate"`
	SendRate     float64 `json:"send_rate"`
	// AcceptSpanMS runs from the first request sent to the last 202.
	AcceptSpanMS float64 `json:"accept_span_ms"`
	// Acceptance is the latency of the 202 answers.
	Acceptance Latency `json:"acceptance_latency"`
	// Refusal is the latency of the other answers (any HTTP status but
	// 202, such as 503 overloaded): how fast a refusal is. Transport
	// failures got no answer and are not in it.
	Refusal Latency `json:"refusal_latency"`
	// Errors counts the other outcomes by the JSON code of the answer
	// (http_<status> when it had none) or by the transport failure
	// (timeout, connection_refused, connection_reset, eof...).
	Errors map[string]int `json:"errors"`
}

// CompletionStats describes how the accepted tests ended.
type CompletionStats struct {
	// Source is "events" (NATS) or "polling" (GET /test/{id}).
	Source    string `json:"source"`
	Completed int    `json:"completed"`
	// NotCompleted were accepted but not completed within the wait; it
	// includes Failed, those that ended "failed". It must be 0.
	NotCompleted int `json:"not_completed"`
	Failed       int `json:"failed"`
	// Latency runs from the submission to the completion: the event's
	// arrival at the bench, or the record's completed_at when polling.
	Latency Latency `json:"latency"`
	// SpanMS runs from the first request sent to the last completion.
	SpanMS float64 `json:"span_ms"`
	// PollErrors counts failed reads while polling.
	PollErrors int64 `json:"poll_errors,omitempty"`
}

// RunStats is the run against sensorhub.
type RunStats struct {
	LoadStats
	Completion   CompletionStats `json:"completion"`
	ServerMemory Memory          `json:"server_memory"`
	CPU          CPU             `json:"cpu"`
	// CPUProfile and CPUBudget are set with Config.CPUProfileURL: the
	// server's profile, and its samples by component (budget.go), the
	// largest first. A profile that could not be taken leaves a note and
	// no budget.
	CPUProfile *CPUProfile  `json:"cpu_profile,omitempty"`
	CPUBudget  []BudgetItem `json:"cpu_budget,omitempty"`
}

// BaselineStats is the bare handler's measure.
type BaselineStats struct {
	// SameLoad is the bare handler under the run's load.
	SameLoad LoadStats `json:"same_load"`
	// Ceiling is the bare handler at full speed.
	Ceiling CeilingStats `json:"ceiling"`
	// Ratios compare the run with the above.
	Ratios Ratios `json:"ratios"`
}

// CeilingStats is the bare handler at full speed: Concurrency requests in
// flight for DurationS.
type CeilingStats struct {
	Rate        float64        `json:"rate"`
	Requests    int            `json:"requests"`
	Concurrency int            `json:"concurrency"`
	DurationS   float64        `json:"duration_s"`
	Latency     Latency        `json:"latency"`
	Errors      map[string]int `json:"errors"`
}

// Ratios put the run beside the baseline measured in the same run.
type Ratios struct {
	// RateToCeiling is the run's achieved rate over the ceiling's rate.
	RateToCeiling float64 `json:"rate_to_ceiling"`
	// Acceptance* are the run's acceptance latencies over the bare
	// handler's under the same load (how many times slower).
	AcceptanceP50 float64 `json:"acceptance_p50"`
	AcceptanceP90 float64 `json:"acceptance_p90"`
	AcceptanceP99 float64 `json:"acceptance_p99"`
	AcceptanceMax float64 `json:"acceptance_max"`
}

// ratios compares run with b.
func ratios(run LoadStats, b *BaselineStats) Ratios {
	return Ratios{
		RateToCeiling: ratio(run.AchievedRate, b.Ceiling.Rate),
		AcceptanceP50: ratio(run.Acceptance.P50, b.SameLoad.Acceptance.P50),
		AcceptanceP90: ratio(run.Acceptance.P90, b.SameLoad.Acceptance.P90),
		AcceptanceP99: ratio(run.Acceptance.P99, b.SameLoad.Acceptance.P99),
		AcceptanceMax: ratio(run.Acceptance.Max, b.SameLoad.Acceptance.Max),
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return float64(int64(a/b*1000+0.5)) / 1000
}

// WriteText writes r for a person: the run, and the baseline beside it.
func WriteText(w io.Writer, r Report) error {
	t := r.Target
	load := fmt.Sprintf("%d/s for %s", t.Rate, time.Duration(t.DurationS*float64(time.Second)))
	if t.Mode == "burst" {
		load = fmt.Sprintf("burst of %d", t.Burst)
	}
	body := "no body (simulated acquisition)"
	if t.Readings > 0 {
		body = fmt.Sprintf("%d readings", t.Readings)
	}
	fmt.Fprintf(w, "sensorhub bench %s: POST %s/test/sensor/%s, %s, %s\n",
		r.Date.Format(time.RFC3339), t.URL, t.Sensor, load, body)
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s/%s, load average %.2f at the start; completion followed by %s\n\n",
		r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.OS, r.Machine.Arch, r.Machine.LoadAvg, r.Run.Completion.Source)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	run, b := r.Run, r.Baseline
	row := func(name, value, base, rat string) {
		if b == nil {
			fmt.Fprintf(tw, "%s\t%s\n", name, value)
			return
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, value, base, rat)
	}
	if b != nil {
		row("", "sensorhub", "bare handler", "ratio")
	}
	sl := LoadStats{}
	if b != nil {
		sl = b.SameLoad
	}
	row("requests", fmt.Sprint(run.Requests), fmt.Sprint(sl.Requests), "")
	row("accepted (202)", fmt.Sprint(run.Accepted), fmt.Sprint(sl.Accepted), "")
	row("achieved rate", fmt.Sprintf("%.1f/s", run.AchievedRate), fmt.Sprintf("%.1f/s", sl.AchievedRate), "")
	if b != nil {
		row("ceiling (full speed)", "", fmt.Sprintf("%.1f/s (%d in flight, %gs)", b.Ceiling.Rate, b.Ceiling.Concurrency, b.Ceiling.DurationS),
			fmt.Sprintf("%.1f%% of ceiling", 100*b.Ratios.RateToCeiling))
	}
	lat := []struct {
		name   string
		v, bv  float64
		factor float64
	}{
		{"acceptance p50", run.Acceptance.P50, sl.Acceptance.P50, ratiosOf(b).AcceptanceP50},
		{"acceptance p90", run.Acceptance.P90, sl.Acceptance.P90, ratiosOf(b).AcceptanceP90},
		{"acceptance p99", run.Acceptance.P99, sl.Acceptance.P99, ratiosOf(b).AcceptanceP99},
		{"acceptance max", run.Acceptance.Max, sl.Acceptance.Max, ratiosOf(b).AcceptanceMax},
	}
	for _, l := range lat {
		row(l.name, fmtMS(l.v), fmtMS(l.bv), fmt.Sprintf("%.1fx", l.factor))
	}
	row("last 202 after", fmtMS(run.AcceptSpanMS), fmtMS(sl.AcceptSpanMS), "")
	c := run.Completion
	row("completion p50", fmtMS(c.Latency.P50), "", "")
	row("completion p99", fmtMS(c.Latency.P99), "", "")
	row("completion max", fmtMS(c.Latency.Max), "", "")
	row("last completion after", fmtMS(c.SpanMS), "", "")
	row("completed", fmt.Sprintf("%d of %d accepted", c.Completed, run.Accepted), "", "")
	row("accepted, not completed", fmt.Sprintf("%d (failed: %d)", c.NotCompleted, c.Failed), "", "")
	row("errors", FormatErrors(run.Errors), FormatErrors(sl.Errors), "")
	if run.Refusal.Count > 0 {
		row("refusal p50 / p99 / max", fmt.Sprintf("%s / %s / %s (%d answers)", fmtMS(run.Refusal.P50), fmtMS(run.Refusal.P99),
			fmtMS(run.Refusal.Max), run.Refusal.Count), "", "")
	}
	if c.PollErrors > 0 {
		row("poll errors", fmt.Sprint(c.PollErrors), "", "")
	}
	row("server peak RSS", fmtMemory(run.ServerMemory), "", "")
	row("CPU per completed test", fmtCPU(run.CPU), "", "")
	if run.CPUProfile != nil {
		row("server CPU profile", fmtProfile(*run.CPUProfile), "", "")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range run.CPU.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	return writeBudget(w, run.CPUProfile, run.CPUBudget)
}

func fmtProfile(p CPUProfile) string {
	if p.SampleS == 0 && p.DurationS == 0 {
		return p.Note
	}
	s := fmt.Sprintf("%.1fs from %s, %gs into the load: %.2f CPU-s of samples", p.DurationS, p.URL, p.WarmUpS, p.SampleS)
	if p.Note != "" {
		s += "; " + p.Note
	}
	return s
}

// writeBudget prints the CPU budget as a table, the largest first.
func writeBudget(w io.Writer, p *CPUProfile, items []BudgetItem) error {
	if p == nil || len(items) == 0 {
		return nil
	}
	perTest := p.ServerPerTestUS > 0
	if perTest {
		fmt.Fprintf(w, "\nserver CPU by component: share of the profile's samples, and of the server's %.0fµs per completed test\n", p.ServerPerTestUS)
	} else {
		fmt.Fprintf(w, "\nserver CPU by component: share of the profile's samples\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "component\tshare\tCPU-s\tµs/test\n")
	for _, it := range items {
		per := "-"
		if perTest {
			per = fmt.Sprintf("%.1f", it.PerTestUS)
		}
		fmt.Fprintf(tw, "%s\t%.1f%%\t%.2f\t%s\n", it.Component, 100*it.Share, it.SampleS, per)
	}
	return tw.Flush()
}

func fmtCPU(c CPU) string {
	if c.Note != "" {
		return c.Note
	}
	return fmt.Sprintf("server %.0fµs, postgres %.0fµs, bench %.0fµs (of %.1f CPU-s busy in %.1fs: server %.1f, postgres %.1f, bench %.1f = %.0f%%, other %.1f)",
		c.ServerPerTestUS, c.PostgresPerTestUS, c.BenchPerTestUS, c.MachineS, c.WindowS, c.ServerS, c.PostgresS, c.BenchS, 100*c.BenchShare, c.OtherS)
}

func ratiosOf(b *BaselineStats) Ratios {
	if b == nil {
		return Ratios{}
	}
	return b.Ratios
}

func fmtMS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2fs", v/1000)
	}
	return fmt.Sprintf("%.2fms", v)
}

// FormatErrors writes errors by code as "code=n code=n" in code order, or
// "none".
func FormatErrors(errs map[string]int) string {
	if len(errs) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, errs[k]))
	}
	return strings.Join(parts, " ")
}

func fmtMemory(m Memory) string {
	if len(m.Processes) == 0 {
		return "not seen (" + m.Note + ")"
	}
	var parts []string
	for _, p := range m.Processes {
		parts = append(parts, fmt.Sprintf("pid %d %s: %.1f MiB, %.1f MiB during the run", p.PID, p.Name, p.PeakRSSMiB, p.RunPeakRSSMiB))
	}
	return fmt.Sprintf("%.1f MiB (%s)", m.PeakRSSMiB, strings.Join(parts, "; "))
}
