package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func resultOf(status int, body, errText string) *vegeta.Result {
	return &vegeta.Result{Code: uint16(status), Body: []byte(body), Error: errText, Timestamp: time.Unix(0, 0), Latency: time.Millisecond}
}

func sampleReport() Report {
	run := LoadStats{Requests: 100, Accepted: 99, AchievedRate: 49.5, SendRate: 50, AcceptSpanMS: 2000,
		Acceptance: Latency{Count: 99, P50: 2, P90: 4, P99: 8, Max: 9}, Errors: map[string]int{"overloaded": 1}}
	b := &BaselineStats{
		SameLoad: LoadStats{Requests: 100, Accepted: 100, AchievedRate: 50, Acceptance: Latency{Count: 100, P50: 0.5, P90: 1, P99: 2, Max: 3}, Errors: map[string]int{}},
		Ceiling:  CeilingStats{Rate: 1000, Requests: 5000, Concurrency: 64, DurationS: 5, Errors: map[string]int{}},
	}
	b.Ratios = ratios(run, b)
	return Report{
		Date:    time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		Machine: Machine{CPUs: 2, GOMAXPROCS: 2, OS: "linux", Arch: "amd64", LoadAvg: 1.5},
		Target:  TargetInfo{URL: "http://127.0.0.1:8000", Sensor: "temperature", Mode: "rate", Rate: 50, DurationS: 2},
		Run: RunStats{LoadStats: run,
			Completion:   CompletionStats{Source: "events", Completed: 99, Latency: Latency{Count: 99, P50: 20, P99: 90, Max: 95}, SpanMS: 2100},
			ServerMemory: Memory{Processes: []ProcessMemory{{PID: 42, Name: "sensorhub", PeakRSSMiB: 120.5, RunPeakRSSMiB: 110}}, PeakRSSMiB: 120.5},
			CPUProfile:   &CPUProfile{URL: "http://127.0.0.1:6060", WarmUpS: 2, RequestedS: 28, DurationS: 28.01, SampleS: 40.5, ServerPerTestUS: 230},
			CPUBudget: []BudgetItem{
				{Component: "edge: submit handler", Share: 0.25, SampleS: 10.13, PerTestUS: 57.5},
				{Component: "GC background", Share: 0.1, SampleS: 4.05, PerTestUS: 23},
			}},
		Baseline: b,
	}
}

func TestRatios(t *testing.T) {
	r := sampleReport().Baseline.Ratios
	want := Ratios{RateToCeiling: 0.05, AcceptanceP50: 4, AcceptanceP90: 4, AcceptanceP99: 4, AcceptanceMax: 3}
	if r != want {
		t.Fatalf("ratios = %+v, want %+v", r, want)
	}
	if ratio(1, 0) != 0 {
		t.Error("ratio to zero is not 0")
	}
}

// The JSON report keeps its documented shape: `sensorhub bench --json` is
// read by scripts.
func TestReportJSONShape(t *testing.T) {
	data, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"date", "machine.cpus", "machine.load_avg_1m", "target.mode", "target.rate", "target.duration_s",
		"run.requests", "run.accepted", "run.achieved_rate", "run.send_rate", "run.accept_span_ms",
		"run.acceptance_latency.p50_ms", "run.acceptance_latency.p90_ms", "run.acceptance_latency.p99_ms", "run.acceptance_latency.max_ms",
		"run.errors.overloaded", "run.completion.source", "run.completion.completed", "run.completion.not_completed",
		"run.completion.failed", "run.completion.latency.p50_ms", "run.completion.latency.p99_ms", "run.completion.span_ms",
		"run.server_memory.peak_rss_mib", "run.server_memory.processes",
		"run.cpu_profile.url", "run.cpu_profile.duration_s", "run.cpu_profile.sample_s", "run.cpu_profile.server_per_test_us", "run.cpu_budget",
		"baseline.same_load.acceptance_latency.p99_ms", "baseline.ceiling.rate", "baseline.ceiling.concurrency",
		"baseline.ratios.rate_to_ceiling", "baseline.ratios.acceptance_p99",
	} {
		var v any = m
		for _, k := range strings.Split(path, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = obj[k]
		}
		if v == nil {
			t.Errorf("report JSON lacks %s:\n%s", path, data)
		}
	}
	budget, _ := m["run"].(map[string]any)["cpu_budget"].([]any)
	if len(budget) != 2 {
		t.Fatalf("cpu_budget is not the list of components:\n%s", data)
	}
	for _, k := range []string{"component", "share", "sample_s", "per_test_us"} {
		if budget[0].(map[string]any)[k] == nil {
			t.Errorf("cpu_budget item lacks %s:\n%s", k, data)
		}
	}
}

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"50/s for 2s", "bare handler", "1000.0/s", "5.0% of ceiling", "acceptance p99", "8.00ms", "4.0x",
		"completion p99", "90.00ms", "99 of 99 accepted", "overloaded=1", "120.5 MiB", "load average 1.50",
		"server CPU profile", "28.0s from http://127.0.0.1:6060, 2s into the load: 40.50 CPU-s of samples", "server's 230µs per completed test",
		"edge: submit handler  25.0%  10.13  57.5", "GC background         10.0%  4.05   23.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	rep := sampleReport()
	rep.Baseline = nil
	rep.Run.ServerMemory = Memory{Processes: []ProcessMemory{}, Note: "none visible"}
	rep.Run.CPUProfile, rep.Run.CPUBudget = &CPUProfile{URL: "http://x", Note: "no CPU profile: connection refused"}, nil
	buf.Reset()
	if err := WriteText(&buf, rep); err != nil {
		t.Fatal(err)
	}
	out = buf.String()
	if strings.Contains(out, "bare handler") || !strings.Contains(out, "not seen (none visible)") ||
		!strings.Contains(out, "no CPU profile: connection refused") || strings.Contains(out, "by component") {
		t.Errorf("text report without baseline nor profile:\n%s", out)
	}
}
