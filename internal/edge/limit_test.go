package edge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/metrics"
	"sensorhub/internal/metrics/metricstest"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// Through the whole handler: submissions held at the sensor role while
// the limiter's clock moves on are a standing queue; as each is answered
// late the submission limit falls, until the next submission is refused
// 503 overloaded with Retry-After before its body is read and without a
// NATS message. /health and the metrics say so; the other routes keep
// MaxConcurrent alone. Once nothing is in flight the limit is back at
// MaxConcurrent and a submission passes.
func TestAdaptiveSubmitLimit(t *testing.T) {
	cfg, reg := withMetrics()
	cfg.MaxConcurrent = 8
	cfg.QueueTarget = testTarget
	cfg.SensorBreaker.CallTimeout = testenv.Wait(t)
	cfg.SubmitAttempts = 1
	e := newEnv(t, cfg)
	clk := newFakeClock()
	e.srv.submits = newSubmitLimiter(cfg.QueueTarget, testInterval, cfg.MaxConcurrent, clk.now)
	e.srv.submits.floor = 1 // so that a handful of submissions can show it
	reg.EdgeAdmission(messages.RoleEdge, func() metrics.EdgeAdmission { return metrics.EdgeAdmission(e.srv.Admission()) })

	// The stub answers one submission per value sent on release (its
	// handler takes them one at a time), and all of them once it is closed.
	release := make(chan struct{})
	var releaseAll sync.Once
	openAll := func() { releaseAll.Do(func() { close(release) }) }
	t.Cleanup(openAll)
	st := e.stub(messages.RoleSensor, "submit", func(req micro.Request) {
		<-release
		_ = natsx.ReplyJSON(req, messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing})
	})
	catalogue := messages.SensorTypesReply{Types: []messages.SensorSpec{{Type: "temperature", Unit: "C", Min: -40, Max: 125}}}
	e.stub(messages.RoleSensor, "types", replyJSON(catalogue))

	submit := func() int {
		return e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr).Code
	}
	const held = 4
	answered := make(chan int, held)
	for range held {
		go func() { answered <- submit() }()
	}
	testenv.Eventually(t, "four submissions in flight", func() bool { return e.srv.submits.inFlight.Load() == held })

	// Each answered a second after the one before: 8 -> 8 (the first
	// interval had no answer) -> 4 -> 2. A submission refused at once for
	// want of a token, in the last interval, waited in no queue and is not
	// measured (it would make that interval's minimum 0).
	for i := range 3 {
		clk.advance(1e9)
		release <- struct{}{}
		if code := <-answered; code != http.StatusAccepted {
			t.Fatalf("held submission %d ended %d", i+1, code)
		}
		if i == 1 {
			envelope(t, e.do(http.MethodPost, "/test/sensor/temperature", ""), http.StatusUnauthorized, messages.CodeUnauthorized)
		}
	}
	if got := e.srv.Admission().Limit; got != 2 {
		t.Fatalf("limit %d after three late answers, want 2", got)
	}

	// The next interval's end (by this admission) takes it to 1, with one
	// submission in flight: refused.
	clk.advance(1e9)
	sent := e.nc.Stats().OutMsgs
	body := &watchedBody{r: strings.NewReader(`{"readings":[1,2,3]}`)}
	req := httptest.NewRequest(http.MethodPost, "/test/sensor/temperature", body)
	req.Header.Set("Authorization", bearerHdr)
	rec := e.record(req)
	envelope(t, rec, http.StatusServiceUnavailable, messages.CodeOverloaded)
	if rec.Header().Get("Retry-After") != "1" || body.read.Load() {
		t.Fatalf("Retry-After %q, body read %v: want 1 and unread", rec.Header().Get("Retry-After"), body.read.Load())
	}
	if got := e.nc.Stats().OutMsgs; got != sent {
		t.Fatalf("the refused submission sent %d NATS messages, want none", got-sent)
	}
	// Only submissions: a catalogue request passes (MaxConcurrent is 8).
	if rec := e.do(http.MethodGet, "/sensor/types", ""); rec.Code != http.StatusOK {
		t.Fatalf("GET /sensor/types under the submission limit: %d %s", rec.Code, rec.Body)
	}

	var h messages.EdgeHealth
	if err := json.Unmarshal(e.do(http.MethodGet, "/health", "").Body.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	got := h.Services[messages.RoleEdge].Requests
	if got == nil || got.SubmitLimit != 1 || got.SubmitOverloaded != 1 || got.SubmitInFlight != 1 ||
		got.Overloaded != 0 || got.MaxConcurrent != 8 || got.QueueTargetMS != 20 || got.SubmitMinLatencyMS != 3000 {
		t.Fatalf("/health edge requests = %+v, want limit 1, 1 refused past it (none past max 8), 1 in flight, target 20ms, last minimum 3000ms", got)
	}
	s, err := metricstest.Parse(e.do(http.MethodGet, "/metrics", "").Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	edge := map[string]string{"role": messages.RoleEdge}
	for name, want := range map[string]float64{
		"sensorhub_edge_submit_limit":               1,
		"sensorhub_edge_submit_in_flight":           1,
		"sensorhub_edge_submit_overloaded_total":    1,
		"sensorhub_edge_submit_min_latency_seconds": 3,
	} {
		if v, ok := s.Get(name, edge); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if v := s.Value("sensorhub_http_requests_total", map[string]string{"role": "edge", "route": "POST /test/sensor/{sensor_type}", "code": "503"}); v != 1 {
		t.Errorf("submissions answered 503: %v, want 1", v)
	}

	// The queue is gone: nothing in flight, and the next submission finds
	// the whole limit.
	openAll()
	if code := <-answered; code != http.StatusAccepted {
		t.Fatalf("last held submission ended %d", code)
	}
	clk.advance(testInterval)
	if code := submit(); code != http.StatusAccepted {
		t.Fatalf("a submission on an idle edge: %d", code)
	}
	if a := e.srv.Admission(); a.Limit != 8 || a.InFlight != 0 || a.Refused != 1 {
		t.Fatalf("after the queue: %+v, want limit 8, none in flight, 1 refused", a)
	}
	if n := st.count(); n != held+1 {
		t.Fatalf("the sensor stub took %d submissions, want %d (the refused one never reached it)", n, held+1)
	}
}

// With the queue target at 0 the submission limit stays at MaxConcurrent
// however late the answers, and /health says it is off.
func TestAdaptiveSubmitLimitOff(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrent = 8
	e := newEnv(t, cfg)
	clk := newFakeClock()
	e.srv.submits = newSubmitLimiter(cfg.QueueTarget, testInterval, cfg.MaxConcurrent, clk.now)
	e.srv.submits.floor = 1
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e.stub(messages.RoleSensor, "submit", func(req micro.Request) {
		<-release
		_ = natsx.ReplyJSON(req, messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing})
	})
	answered := make(chan int, 8)
	for range 8 {
		go func() {
			answered <- e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr).Code
		}()
	}
	testenv.Eventually(t, "eight submissions in flight", func() bool { return e.srv.submits.inFlight.Load() == 8 })
	for i := range 7 {
		clk.advance(1e9)
		release <- struct{}{}
		if code := <-answered; code != http.StatusAccepted {
			t.Fatalf("held submission %d ended %d", i+1, code)
		}
	}
	var h messages.EdgeHealth
	if err := json.Unmarshal(e.do(http.MethodGet, "/health", "").Body.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	got := h.Services[messages.RoleEdge].Requests
	if got == nil || got.SubmitLimit != 8 || got.SubmitOverloaded != 0 || got.QueueTargetMS != 0 || got.SubmitMinLatencyMS != 0 {
		t.Fatalf("/health edge requests = %+v, want limit 8 (MaxConcurrent), none refused, target 0", got)
	}
}
