package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sensorhub/messages"
)

// fakeEdge answers like the edge: a token for admin/admin123, 202 with a
// new test id (503 overloaded for every refuseEvery-th submission when
// set), and GET /test/{id} "processing" on the first read, then completed
// (never, with neverDone).
type fakeEdge struct {
	refuseEvery int64
	neverDone   bool

	submitted atomic.Int64
	mu        sync.Mutex
	reads     map[string]int
	bodies    []string
}

func (f *fakeEdge) start(t *testing.T) string {
	t.Helper()
	f.reads = map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("username") != "admin" || r.FormValue("password") != "admin123" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid username or password","code":"invalid_credentials"}`)
			return
		}
		_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"bearer","expires_in":3600}`)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /sensor/types", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"types":[{"type":"humidity","nominal":45}]}`)
	})
	mux.HandleFunc("POST /test/sensor/{type}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		if len(f.bodies) < 1 {
			f.bodies = append(f.bodies, string(body))
		}
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"unauthorized","code":"unauthorized"}`)
			return
		}
		n := f.submitted.Add(1)
		if f.refuseEvery > 0 && n%f.refuseEvery == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"sensor service overloaded, retry later","code":"overloaded"}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"test_id":"00000000-0000-7000-8000-%012d","status":"processing"}`, n)
	})
	mux.HandleFunc("GET /test/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		f.mu.Lock()
		f.reads[id]++
		first := f.reads[id] == 1
		f.mu.Unlock()
		if first || f.neverDone {
			fmt.Fprintf(w, `{"test_id":%q,"status":"processing"}`, id)
			return
		}
		fmt.Fprintf(w, `{"test_id":%q,"status":"completed","completed_at":%q}`, id, time.Now().UTC().Format(time.RFC3339Nano))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func runBench(t *testing.T, cfg Config) (Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg.Username, cfg.Password = "admin", "admin123"
	cfg.PollInterval = 10 * time.Millisecond
	return Run(ctx, cfg)
}

func TestRunRatePollingWithErrors(t *testing.T) {
	f := &fakeEdge{refuseEvery: 5}
	rep, err := runBench(t, Config{URL: f.start(t), Rate: 100, Duration: 300 * time.Millisecond, Sensor: "humidity", Readings: 3})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Run
	if r.Requests == 0 || r.Requests != r.Accepted+r.Errors["overloaded"] || r.Errors["overloaded"] == 0 {
		t.Fatalf("requests %d, accepted %d, errors %v", r.Requests, r.Accepted, r.Errors)
	}
	c := r.Completion
	if c.Source != "polling" || c.Completed != r.Accepted || c.NotCompleted != 0 || c.Latency.Count != r.Accepted {
		t.Fatalf("completion: %+v (accepted %d)", c, r.Accepted)
	}
	if r.Acceptance.Count != r.Accepted || r.AchievedRate <= 0 || r.Acceptance.Max < r.Acceptance.P50 {
		t.Errorf("acceptance: %+v, rate %v", r.Acceptance, r.AchievedRate)
	}
	// Every refusal was an answer, timed apart from the 202s.
	if r.Refusal.Count != r.Errors["overloaded"] || r.Refusal.Max <= 0 || r.Refusal.Max < r.Refusal.P50 {
		t.Errorf("refusal latency: %+v (overloaded %d)", r.Refusal, r.Errors["overloaded"])
	}
	if rep.Target.Mode != "rate" || rep.Target.Rate != 100 || rep.Machine.CPUs == 0 || rep.Baseline != nil {
		t.Errorf("report header: %+v %+v", rep.Target, rep.Machine)
	}
	// The readings are generated around the catalogue's nominal value.
	var body messages.SubmitTest
	if err := json.Unmarshal([]byte(f.bodies[0]), &body); err != nil || len(body.Readings) != 3 || body.Readings[0] < 44 || body.Readings[0] > 46 {
		t.Errorf("submitted body %s: %+v %v", f.bodies[0], body, err)
	}
}

func TestRunBurstWithBaseline(t *testing.T) {
	f := &fakeEdge{}
	rep, err := runBench(t, Config{URL: f.start(t), Burst: 20, Baseline: true, BaselineDuration: 200 * time.Millisecond, BaselineConcurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Target.Mode != "burst" || rep.Run.Requests != 20 || rep.Run.Accepted != 20 || rep.Run.Completion.Completed != 20 {
		t.Fatalf("burst: %+v %+v", rep.Target, rep.Run)
	}
	b := rep.Baseline
	if b == nil {
		t.Fatal("no baseline")
	}
	if b.SameLoad.Requests != 20 || b.SameLoad.Accepted != 20 || b.Ceiling.Rate <= 0 || b.Ceiling.Requests == 0 || b.Ceiling.Concurrency != 4 {
		t.Fatalf("baseline: %+v", b)
	}
	if b.Ratios.RateToCeiling <= 0 || b.Ratios.AcceptanceP50 <= 0 {
		t.Errorf("ratios: %+v", b.Ratios)
	}
}

func TestRunReportsTestsThatNeverComplete(t *testing.T) {
	f := &fakeEdge{neverDone: true}
	rep, err := runBench(t, Config{URL: f.start(t), Burst: 3, Wait: 100 * time.Millisecond})
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	if c := rep.Run.Completion; c.NotCompleted != 3 || c.Completed != 0 {
		t.Fatalf("completion: %+v", c)
	}
}

func TestRunRefusedLogin(t *testing.T) {
	f := &fakeEdge{}
	_, err := Run(context.Background(), Config{URL: f.start(t), Burst: 1, Username: "admin", Password: "nope"})
	if !errors.Is(err, ErrLogin) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want ErrLogin naming the status", err)
	}
}

func TestBaselineServerAnswers202(t *testing.T) {
	b, err := StartBaseline()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	resp, err := http.Post(b.URL()+"/test/sensor/temperature", "application/json", strings.NewReader(`{"readings":[1,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var acc messages.TestAccepted
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Content-Type") != "application/json" ||
		json.NewDecoder(resp.Body).Decode(&acc) != nil || acc.Status != messages.StatusProcessing || !messages.ValidTestID(acc.TestID) {
		t.Fatalf("baseline answered %d %+v", resp.StatusCode, acc)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		err    string
		code   string
		id     string
	}{
		{202, `{"test_id":"abc","status":"processing"}`, "", "", "abc"},
		{202, `{"status":"processing"}`, "", "accepted_without_test_id", ""},
		{503, `{"error":"Database unavailable","code":"database_unavailable"}`, "503 Service Unavailable", "database_unavailable", ""},
		{502, `<html>bad gateway</html>`, "502 Bad Gateway", "http_502", ""},
		{0, "", "Post \"http://x\": dial tcp: connect: connection refused", "connection_refused", ""},
		{0, "", "Post \"http://x\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", "timeout", ""},
		{0, "", "read tcp: connection reset by peer", "connection_reset", ""},
		{0, "", "dial tcp: socket: too many open files", "too_many_open_files", ""},
		{0, "", "unexpected EOF", "eof", ""},
		{0, "", "something else", "transport_error", ""},
	} {
		s := classify(resultOf(tc.status, tc.body, tc.err))
		if s.code != tc.code || s.testID != tc.id {
			t.Errorf("%d %q %q: code %q id %q, want %q %q", tc.status, tc.body, tc.err, s.code, s.testID, tc.code, tc.id)
		}
	}
}

func TestTracker(t *testing.T) {
	tr := newTracker()
	t0 := time.Unix(1000, 0)
	tr.ended("a", finish{at: t0.Add(300 * time.Millisecond), status: messages.StatusCompleted}) // event before the 202
	tr.accepted("a", t0)
	tr.accepted("b", t0.Add(time.Second))
	tr.accepted("c", t0)
	tr.ended("b", finish{at: t0.Add(1500 * time.Millisecond), status: messages.StatusCompleted})
	tr.ended("b", finish{at: t0.Add(9 * time.Second), status: messages.StatusCompleted}) // redelivered: ignored
	tr.ended("c", finish{at: t0.Add(time.Second), status: messages.StatusFailed})
	tr.ended("z", finish{at: t0, status: messages.StatusCompleted}) // not ours
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !tr.wait(ctx) {
		t.Fatal("wait did not see every accepted test end")
	}
	c := tr.stats("events", t0)
	if c.Completed != 2 || c.Failed != 1 || c.NotCompleted != 1 || c.Latency.Max != 500 || c.SpanMS != 1500 {
		t.Fatalf("stats = %+v", c)
	}
}

func TestEventFields(t *testing.T) {
	e := messages.TestCompleted{Schema: 1, EventID: "e", Type: messages.EventTypeCompleted, TestID: "t-1", SensorType: "co2",
		SensorID: "x", Owner: "admin", Status: messages.StatusCompleted}
	payload, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ data, id, status string }{
		{string(payload), "t-1", "completed"},
		{`{"status" : "failed", "test_id" : "t-2"}`, "t-2", "failed"}, // spaced: through encoding/json
		{`{"test_id":"t\u002d3","status":"completed"}`, "t-3", "completed"},
		{`not json`, "", ""},
	} {
		if id, st := eventFields([]byte(tc.data)); id != tc.id || st != tc.status {
			t.Errorf("eventFields(%s) = %q %q, want %q %q", tc.data, id, st, tc.id, tc.status)
		}
	}
}

func TestSubmitBody(t *testing.T) {
	if b := submitBody(0, 20, ""); b != nil {
		t.Errorf("no readings: body %s", b)
	}
	var s messages.SubmitTest
	if err := json.Unmarshal(submitBody(100, 1013.25, ""), &s); err != nil || len(s.Readings) != 100 || s.SensorID != "bench" {
		t.Fatalf("100 readings: %+v %v", s, err)
	}
	s = messages.SubmitTest{}
	if err := json.Unmarshal(submitBody(0, 20, "bench-7"), &s); err != nil || len(s.Readings) != 0 || s.SensorID != "bench-7" {
		t.Fatalf("a sensor id without readings: %+v %v", s, err)
	}
}

// With several sensor ids the submissions name each in turn, and each
// body still decodes as a valid submission.
func TestSubmitTargetsNameTheSensorsInTurn(t *testing.T) {
	if ts := submitTargets("http://x", "humidity", 0, 45, 1, "tok"); len(ts) != 1 || ts[0].Body != nil {
		t.Fatalf("one sensor: %d targets, body %q", len(ts), ts[0].Body)
	}
	ts := submitTargets("http://x", "humidity", 3, 45, 4, "tok")
	if len(ts) != 4 {
		t.Fatalf("%d targets, want 4", len(ts))
	}
	for i, tg := range ts {
		req, err := messages.DecodeSubmitTest(tg.Body, "humidity")
		if err != nil || req.SensorID != fmt.Sprintf("bench-%d", i) || len(req.Readings) != 3 {
			t.Errorf("target %d: %+v %v", i, req, err)
		}
		if tg.URL != "http://x/test/sensor/humidity" || tg.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("target %d: %s %v", i, tg.URL, tg.Header)
		}
	}
}
