package edge

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// retryConfig sends a submission up to attempts times, each send waiting
// callTimeout for its answer, all within the test's deadline; the sensor
// breaker never opens (these tests are about the retries, not the breaker).
func retryConfig(t *testing.T, attempts int, callTimeout time.Duration) Config {
	cfg := testConfig()
	cfg.SensorBreaker.Failures = 1 << 20
	cfg.SensorBreaker.CallTimeout = callTimeout
	cfg.SubmitAttempts = attempts
	cfg.SubmitTimeout = testenv.Wait(t)
	return cfg
}

// keys are the Idempotency-Key headers the stub received, in order.
func (st *stub) keys() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]string, len(st.headers))
	for i, h := range st.headers {
		out[i] = h.Get(messages.HeaderIdempotencyKey)
	}
	return out
}

func sameKey(t *testing.T, st *stub, want string) {
	t.Helper()
	for i, k := range st.keys() {
		if k != want {
			t.Fatalf("send %d carried key %q, want %q on every send", i+1, k, want)
		}
	}
}

// The answer to the first send is lost (the sensor took it and never
// answered): the edge sends it again under the same key and answers 202.
func TestSubmitRetriesALostAnswerUnderTheSameKey(t *testing.T) {
	e := newEnv(t, retryConfig(t, 10, 200*time.Millisecond))
	var n atomic.Int64
	st := e.stub(messages.RoleSensor, "submit", func(req micro.Request) {
		if n.Add(1) == 1 {
			return // taken, never answered
		}
		_ = natsx.ReplyJSON(req, messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing, Duplicate: true})
	})
	rec := e.do(http.MethodPost, "/test/sensor/temperature", `{"readings":[21.5]}`, "Authorization", bearerHdr)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	key := rec.Header().Get(messages.HeaderIdempotencyKey)
	if st.count() < 2 || key == "" {
		t.Fatalf("%d sends, key %q: want a retry under the edge's key", st.count(), key)
	}
	sameKey(t, st, key)
	got := e.srv.stats.snapshot()
	if got.SubmitRetries != int64(st.count()-1) || got.SubmitsRecovered != 1 || got.OutcomeUnknown != 0 || got.SensorRefused != 0 {
		t.Fatalf("stats %+v after %d sends", got, st.count())
	}
	// The client's own key is the one retried.
	n.Store(0)
	rec = e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr, "Idempotency-Key", "mine-1")
	if rec.Code != http.StatusAccepted || rec.Header().Get(messages.HeaderIdempotencyKey) != "mine-1" {
		t.Fatalf("client key: %d %s, key %q", rec.Code, rec.Body, rec.Header().Get(messages.HeaderIdempotencyKey))
	}
}

// No sensor process listens (one restarting): the edge keeps trying until
// one does, within its deadline.
func TestSubmitWaitsForASensorToComeBack(t *testing.T) {
	e := newEnv(t, retryConfig(t, 1000, testenv.Wait(t)))
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		done <- e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr)
	}()
	testenv.Eventually(t, "the edge to retry", func() bool { return e.srv.stats.submitRetries.Load() >= 2 })
	st := e.stub(messages.RoleSensor, "submit", replyJSON(messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing}))
	var rec *httptest.ResponseRecorder
	select {
	case rec = <-done:
	case <-t.Context().Done():
		t.Fatal("no answer")
	}
	if rec.Code != http.StatusAccepted || st.count() != 1 {
		t.Fatalf("%d %s after %d sends to the sensor", rec.Code, rec.Body, st.count())
	}
	if got := e.srv.stats.snapshot(); got.SubmitsRecovered != 1 || got.SensorRefused != 0 {
		t.Fatalf("stats %+v", got)
	}
}

// The two 503s: nothing delivered on any send is refused for sure; a send
// that went out unanswered is outcome unknown, even when a later send got
// a 5xx. Both carry the key; a 4xx after an unanswered send is the
// sensor's answer as it came.
func TestSubmitTwoKindsOf503(t *testing.T) {
	t.Run("no responders on every send", func(t *testing.T) {
		e := newEnv(t, retryConfig(t, 3, testenv.Wait(t)))
		rec := e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr)
		envelope(t, rec, http.StatusServiceUnavailable, messages.CodeSensorUnavailable)
		if !messages.ValidTestID(rec.Header().Get(messages.HeaderIdempotencyKey)) {
			t.Fatalf("no key in %v", rec.Header())
		}
		if got := e.srv.stats.snapshot(); got.SubmitRetries != 2 || got.SensorRefused != 1 || got.OutcomeUnknown != 0 {
			t.Fatalf("stats %+v, want 2 retries and one refusal", got)
		}
	})
	t.Run("breaker open before sending", func(t *testing.T) {
		cfg := retryConfig(t, 3, testenv.Wait(t))
		cfg.SensorBreaker.Failures = 1
		e := newEnv(t, cfg)
		envelope(t, e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr), 503, messages.CodeSensorUnavailable)
		st := e.stub(messages.RoleSensor, "submit", replyJSON(messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing}))
		rec := e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr)
		envelope(t, rec, http.StatusServiceUnavailable, messages.CodeSensorUnavailable)
		if st.count() != 0 || rec.Header().Get(messages.HeaderIdempotencyKey) == "" {
			t.Fatalf("%d sends through an open breaker; key %q", st.count(), rec.Header().Get(messages.HeaderIdempotencyKey))
		}
	})
	t.Run("never answered", func(t *testing.T) {
		e := newEnv(t, retryConfig(t, 2, 100*time.Millisecond))
		st := e.stub(messages.RoleSensor, "submit", func(micro.Request) {})
		rec := e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr, "Idempotency-Key", "k-9")
		envelope(t, rec, http.StatusServiceUnavailable, messages.CodeOutcomeUnknown)
		if rec.Header().Get(messages.HeaderIdempotencyKey) != "k-9" || rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("headers %v: want the key and Retry-After", rec.Header())
		}
		if st.count() != 2 {
			t.Fatalf("%d sends, want 2", st.count())
		}
		sameKey(t, st, "k-9")
		if got := e.srv.stats.snapshot(); got.OutcomeUnknown != 1 || got.SensorRefused != 0 {
			t.Fatalf("stats %+v", got)
		}
	})
	for _, tc := range []struct {
		name   string
		second *messages.Error
		status int
		code   messages.Code
	}{
		{"unanswered, then database unavailable", messages.ErrDatabaseUnavailable, 503, messages.CodeOutcomeUnknown},
		{"unanswered, then overloaded", messages.NewError(messages.CodeOverloaded, "full"), 503, messages.CodeOutcomeUnknown},
		{"unanswered, then unauthorized", messages.ErrUnauthorized, 401, messages.CodeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, retryConfig(t, 3, 200*time.Millisecond))
			var n atomic.Int64
			st := e.stub(messages.RoleSensor, "submit", func(req micro.Request) {
				if n.Add(1) > 1 {
					_ = natsx.ReplyError(req, tc.second)
				}
			})
			rec := e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr)
			envelope(t, rec, tc.status, tc.code)
			if rec.Header().Get(messages.HeaderIdempotencyKey) == "" || st.count() < 2 {
				t.Fatalf("%d sends; key %q", st.count(), rec.Header().Get(messages.HeaderIdempotencyKey))
			}
		})
	}
}

// A definite answer of the sensor is never sent again, and carries the key.
func TestSubmitDefiniteAnswerIsNotRetried(t *testing.T) {
	for _, answer := range []*messages.Error{
		messages.ErrDatabaseUnavailable, messages.ErrIdempotencyReused, messages.ErrSensorUnavailable,
		messages.NewError(messages.CodeOverloaded, "full"), messages.NewError(messages.CodeInternal, "crashed"),
	} {
		t.Run(string(answer.Code), func(t *testing.T) {
			e := newEnv(t, retryConfig(t, 5, testenv.Wait(t)))
			st := e.stub(messages.RoleSensor, "submit", func(req micro.Request) { _ = natsx.ReplyError(req, answer) })
			rec := e.do(http.MethodPost, "/test/sensor/temperature", `{"readings":[1]}`, "Authorization", bearerHdr, "Idempotency-Key", "k-1")
			envelope(t, rec, answer.HTTPStatus(), answer.Code)
			if st.count() != 1 || rec.Header().Get(messages.HeaderIdempotencyKey) != "k-1" {
				t.Fatalf("%d sends, key %q: want one send and the key", st.count(), rec.Header().Get(messages.HeaderIdempotencyKey))
			}
			if got := e.srv.stats.snapshot(); got.SubmitRetries != 0 {
				t.Fatalf("stats %+v", got)
			}
		})
	}
}

// A retry of a known key answers the test's current status: 202 while it
// is processing, 200 once it is finished.
func TestSubmitDuplicateAnswersCurrentStatus(t *testing.T) {
	e := newEnv(t, testConfig())
	status := map[string]string{"p": messages.StatusProcessing, "c": messages.StatusCompleted, "f": messages.StatusFailed}
	e.stub(messages.RoleSensor, "submit", func(req micro.Request) {
		r, _ := messages.DecodeSubmitTest(req.Data(), "")
		_ = natsx.ReplyJSON(req, messages.TestAccepted{TestID: testID, Status: status[r.SensorID], Duplicate: true})
	})
	for id, want := range map[string]int{"p": 202, "c": 200, "f": 200} {
		rec := e.do(http.MethodPost, "/test/sensor/temperature", `{"sensor_id":"`+id+`"}`, "Authorization", bearerHdr, "Idempotency-Key", "k")
		got := decodeBody[messages.TestAccepted](t, rec)
		if rec.Code != want || got.Status != status[id] || !got.Duplicate || got.TestID != testID {
			t.Errorf("%s: %d %s, want %d with status %s", status[id], rec.Code, rec.Body, want, status[id])
		}
		if rec.Header().Get("Location") != "/test/"+testID {
			t.Errorf("%s: Location %q", status[id], rec.Header().Get("Location"))
		}
	}
}

// watchedBody records whether anyone read it.
type watchedBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

// Past MaxConcurrent requests in flight the edge answers 503 overloaded
// with Retry-After at once, without reading the body; liveness still
// answers, and so does the next request once one has finished.
func TestMaxConcurrent(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrent = 2
	cfg.SensorBreaker.CallTimeout = testenv.Wait(t)
	cfg.SubmitAttempts = 1
	e := newEnv(t, cfg)
	gate := make(chan struct{})
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(open)
	e.stub(messages.RoleSensor, "submit", func(req micro.Request) {
		<-gate
		_ = natsx.ReplyJSON(req, messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing})
	})
	held := make(chan int, 2)
	for range 2 {
		go func() {
			held <- e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr).Code
		}()
	}
	testenv.Eventually(t, "two requests in flight", func() bool { return e.srv.stats.inFlight.Load() == 2 })

	body := &watchedBody{r: strings.NewReader(`{"readings":[1,2,3]}`)}
	req := httptest.NewRequest(http.MethodPost, "/test/sensor/temperature", body)
	req.Header.Set("Authorization", bearerHdr)
	rec := e.record(req)
	envelope(t, rec, http.StatusServiceUnavailable, messages.CodeOverloaded)
	if rec.Header().Get("Retry-After") != "1" || body.read.Load() {
		t.Fatalf("Retry-After %q, body read %v: want 1 and unread", rec.Header().Get("Retry-After"), body.read.Load())
	}
	envelope(t, e.do(http.MethodGet, "/sensor/types", ""), http.StatusServiceUnavailable, messages.CodeOverloaded)
	for _, path := range []string{"/healthz", "/readyz"} {
		if rec := e.do(http.MethodGet, path, ""); rec.Code != http.StatusOK {
			t.Fatalf("%s while full: %d %s", path, rec.Code, rec.Body)
		}
	}

	open()
	for range 2 {
		if code := <-held; code != http.StatusAccepted {
			t.Fatalf("a request held in flight ended %d", code)
		}
	}
	if rec := e.do(http.MethodPost, "/test/sensor/temperature", "", "Authorization", bearerHdr); rec.Code != http.StatusAccepted {
		t.Fatalf("after the others finished: %d %s", rec.Code, rec.Body)
	}
	var h messages.EdgeHealth
	if err := json.Unmarshal(e.do(http.MethodGet, "/health", "").Body.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	got := h.Services[messages.RoleEdge].Requests
	if got == nil || got.Overloaded != 2 || got.MaxConcurrent != 2 || got.InFlight != 1 {
		t.Fatalf("/health edge requests = %+v, want 2 overloaded of at most 2, 1 in flight (the /health itself)", got)
	}
}
