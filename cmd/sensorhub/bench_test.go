package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"sensorhub/internal/bench"
)

// `sensorhub bench` against dev, for a couple of seconds at a low rate:
// following the events on NATS, then polling GET /test/{id} (with the
// baseline). Its JSON must be well-formed and every accepted test must be
// completed. A functional test: no timing is asserted.
func TestBenchAgainstDev(t *testing.T) {
	addrs := startDev(t)
	edgeURL := "http://" + addrs.HTTP
	natsURL := addrs.NATS
	if u, err := url.Parse(natsURL); err != nil || u.Host == "" {
		t.Fatalf("dev NATS address %q", natsURL)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		source string
	}{
		{"events", []string{"--nats-url", natsURL, "--readings", "20"}, "events"},
		{"polling with baseline", []string{"--baseline", "--baseline-duration", "300ms", "--baseline-concurrency", "4"}, "polling"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"bench", "--url", edgeURL, "--rate", "20", "--duration", "2s", "--wait", "60s", "--json", "--quiet"}, tc.args...)
			code, stdout, stderr := runCmd(t, "", nil, args...)
			if code != 0 {
				t.Fatalf("bench exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.DisallowUnknownFields()
			var rep bench.Report
			if err := dec.Decode(&rep); err != nil {
				t.Fatalf("bench --json is not a report: %v\n%s", err, stdout)
			}
			r := rep.Run
			if r.Requests == 0 || r.Accepted != r.Requests || len(r.Errors) != 0 {
				t.Fatalf("requests %d, accepted %d, errors %v", r.Requests, r.Accepted, r.Errors)
			}
			if c := r.Completion; c.Source != tc.source || c.Completed != r.Accepted || c.NotCompleted != 0 || c.Latency.Count != c.Completed {
				t.Fatalf("accepted %d, completion %+v", r.Accepted, c)
			}
			if rep.Target.Mode != "rate" || rep.Target.Rate != 20 || rep.Machine.CPUs == 0 {
				t.Errorf("report header: %+v %+v", rep.Target, rep.Machine)
			}
			if tc.source == "polling" && (rep.Baseline == nil || rep.Baseline.Ceiling.Rate <= 0 || rep.Baseline.SameLoad.Accepted == 0) {
				t.Errorf("baseline: %+v", rep.Baseline)
			}
		})
	}
	if code, _, stderr := runCmd(t, "", nil, "bench", "--url", edgeURL, "--password", "wrong", "--burst", "1", "--quiet"); code != 1 || !strings.Contains(stderr, "log in") {
		t.Errorf("wrong password: exit %d, stderr %q", code, stderr)
	}
}

// --cpu-profile reaches the bench's config: a URL that is not one is
// refused before the bench logs in (from the flag, or from its variable).
func TestBenchCPUProfileFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{args: []string{"--cpu-profile", "http://127.0.0.1:6060/debug/pprof/profile?seconds=5"}},
		{env: map[string]string{"SENSORHUB_CPU_PROFILE": "ftp://127.0.0.1:6060"}},
	} {
		args := append([]string{"bench", "--url", "http://127.0.0.1:1", "--burst", "1", "--quiet"}, tc.args...)
		code, _, stderr := runCmd(t, "", func(k string) string { return tc.env[k] }, args...)
		if code != 1 || !strings.Contains(stderr, "cpu profile url") || strings.Contains(stderr, "log in") {
			t.Errorf("%v %v: exit %d, stderr %q; want the URL refused", tc.args, tc.env, code, stderr)
		}
	}
}
