package edge

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/natsx"
	"sensorhub/messages"

	"sensorhub/internal/testenv"
)

const testID = "01890a5d-ac96-7b8e-9c1d-3f2e4a5b6c7d"

func TestSubmitAccepted(t *testing.T) {
	e := newEnv(t, testConfig())
	reply := messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing, AuthMode: messages.AuthModeFallback}
	st := e.stub(messages.RoleSensor, "submit", replyJSON(reply))

	rec := e.do(http.MethodPost, "/test/sensor/temperature", `{"sensor_id":"probe-7","readings":[21.5,21.6,21.4]}`,
		"Authorization", bearerHdr, "Idempotency-Key", "retry-42", "Content-Type", "application/json")
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	if got := decodeBody[messages.TestAccepted](t, rec); got != reply {
		t.Fatalf("reply = %+v, want %+v", got, reply)
	}
	if got := rec.Header().Get("X-Auth-Mode"); got != messages.AuthModeFallback {
		t.Fatalf("X-Auth-Mode = %q, want fallback", got)
	}
	if got := rec.Header().Get("Location"); got != "/test/"+testID {
		t.Fatalf("Location = %q", got)
	}
	data, hdr := st.last()
	if got := hdr.Get("Authorization"); got != bearerHdr {
		t.Fatalf("NATS Authorization = %q, want %q", got, bearerHdr)
	}
	if got := hdr.Get("Idempotency-Key"); got != "retry-42" {
		t.Fatalf("NATS Idempotency-Key = %q, want retry-42", got)
	}
	if got := rec.Header().Get("Idempotency-Key"); got != "retry-42" {
		t.Fatalf("answer's Idempotency-Key = %q, want retry-42", got)
	}
	sent, err := messages.DecodeSubmitTest(data, "")
	if err != nil {
		t.Fatalf("sensor got %q: %v", data, err)
	}
	if sent.SensorType != "temperature" || sent.SensorID != "probe-7" || len(sent.Readings) != 3 || sent.IdempotencyKey != "retry-42" {
		t.Fatalf("sensor got %+v", sent)
	}

	// The seed's curl sends no body at all.
	rec = e.do(http.MethodPost, "/test/sensor/humidity", "", "Authorization", bearerHdr)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("empty body: status = %d, body %s", rec.Code, rec.Body)
	}
	data, hdr = st.last()
	sent, err = messages.DecodeSubmitTest(data, "")
	if err != nil || sent.SensorType != "humidity" || sent.SensorID != messages.DefaultSensorID {
		t.Fatalf("empty body: sensor got %q (%v)", data, err)
	}
	// None was sent: the edge gave the submission a key of its own, the
	// same in the NATS header, in the body and in the answer.
	key := rec.Header().Get("Idempotency-Key")
	if !messages.ValidTestID(key) || hdr.Get("Idempotency-Key") != key || sent.IdempotencyKey != key {
		t.Fatalf("edge key: answer %q, NATS header %q, body %q; want one UUID", key, hdr.Get("Idempotency-Key"), sent.IdempotencyKey)
	}
	rec = e.do(http.MethodPost, "/test/sensor/humidity", "", "Authorization", bearerHdr)
	if other := rec.Header().Get("Idempotency-Key"); other == key || !messages.ValidTestID(other) {
		t.Fatalf("second submission's key %q, first %q: want a new one", other, key)
	}
}

func TestSubmitRejectedAtEdge(t *testing.T) {
	e := newEnv(t, testConfig())
	st := e.stub(messages.RoleSensor, "submit", replyJSON(messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing}))
	auth := []string{"Authorization", bearerHdr}
	huge := `{"readings":[` + strings.Repeat("1.25,", messages.MaxBodyBytes/5) + `1]}`
	tooMany := `{"readings":[` + strings.Repeat("1,", messages.MaxReadings) + `1]}`
	tests := []struct {
		name, path, body string
		hdr              []string
		status           int
		code             messages.Code
	}{
		{"no token", "temperature", "", nil, 401, messages.CodeUnauthorized},
		{"basic auth", "temperature", "", []string{"Authorization", "Basic YWRtaW46YWRtaW4xMjM="}, 401, messages.CodeUnauthorized},
		{"empty bearer", "temperature", "", []string{"Authorization", "Bearer "}, 401, messages.CodeUnauthorized},
		{"oversize token", "temperature", "", []string{"Authorization", "Bearer " + strings.Repeat("t", messages.MaxTokenLen+1)}, 401, messages.CodeUnauthorized},
		{"malformed json", "temperature", `{"readings":[1,2`, auth, 400, messages.CodeInvalidJSON},
		{"not an object", "temperature", `[1,2,3]`, auth, 400, messages.CodeInvalidJSON},
		{"wrong type", "temperature", `{"readings":"hot"}`, auth, 400, messages.CodeInvalidJSON},
		{"number out of range", "temperature", `{"readings":[1e400]}`, auth, 400, messages.CodeInvalidJSON},
		{"unknown field", "temperature", `{"readings":[1],"owner":"root"}`, auth, 400, messages.CodeInvalidJSON},
		{"trailing data", "temperature", `{}{}`, auth, 400, messages.CodeInvalidJSON},
		{"oversize body", "temperature", huge, auth, 413, messages.CodeBodyTooLarge},
		{"too many readings", "temperature", tooMany, auth, 400, messages.CodeInvalidReadings},
		{"bad interval", "temperature", `{"interval_ms":-5}`, auth, 400, messages.CodeInvalidReadings},
		{"type differs from path", "temperature", `{"sensor_type":"humidity"}`, auth, 400, messages.CodeBadRequest},
		{"uppercase type", "Temperature", "", auth, 400, messages.CodeUnknownSensorType},
		{"subject token injection", "temp.erature", "", auth, 400, messages.CodeUnknownSensorType},
		{"subject wildcard", "temp%3E", "", auth, 400, messages.CodeUnknownSensorType},
		{"escaped slash", "..%2F..%2Fetc%2Fpasswd", "", auth, 400, messages.CodeUnknownSensorType},
		{"nul byte", "temp%00", "", auth, 400, messages.CodeUnknownSensorType},
		{"markup", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "", auth, 400, messages.CodeUnknownSensorType},
		{"type too long", strings.Repeat("t", 33), "", auth, 400, messages.CodeUnknownSensorType},
		{"markup sensor id", "temperature", `{"sensor_id":"<script>alert(1)</script>"}`, auth, 400, messages.CodeInvalidSensorID},
		{"path sensor id", "temperature", `{"sensor_id":"../../etc/passwd"}`, auth, 400, messages.CodeInvalidSensorID},
		{"nul sensor id", "temperature", `{"sensor_id":"a\u0000b"}`, auth, 400, messages.CodeInvalidSensorID},
		{"non-ascii sensor id", "temperature", `{"sensor_id":"sönsor"}`, auth, 400, messages.CodeInvalidSensorID},
		{"long sensor id", "temperature", `{"sensor_id":"` + strings.Repeat("s", 129) + `"}`, auth, 400, messages.CodeInvalidSensorID},
		{"idempotency key with space", "temperature", "", append([]string{"Idempotency-Key", "a b"}, auth...), 400, messages.CodeBadRequest},
		{"two idempotency keys", "temperature", "", append([]string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, auth...), 400, messages.CodeBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(http.MethodPost, "/test/sensor/"+tc.path, tc.body, tc.hdr...)
			env := envelope(t, rec, tc.status, tc.code)
			if len(env.Message) > 200 {
				t.Fatalf("message of %d bytes: outside input must not be echoed unbounded", len(env.Message))
			}
		})
	}
	if n := st.count(); n != 0 {
		t.Fatalf("sensor called %d times for bad input, want 0", n)
	}
}

func TestSubmitErrorsPassThrough(t *testing.T) {
	e := newEnv(t, testConfig())
	overloaded := messages.NewError(messages.CodeOverloaded, "intake queue full")
	overloaded.RetryAfter = 7
	// The stub answers according to the sensor id it is sent.
	answers := map[string]*messages.Error{
		"db":         messages.ErrDatabaseUnavailable,
		"busy":       overloaded,
		"busy-plain": messages.NewError(messages.CodeOverloaded, "intake queue full"),
		"expired":    messages.ErrUnauthorized,
		"catalogue":  messages.NewError(messages.CodeUnknownSensorType, "unknown sensor type \"warp\""),
	}
	e.stub(messages.RoleSensor, "submit", func(req micro.Request) {
		r, _ := messages.DecodeSubmitTest(req.Data(), "")
		_ = natsx.ReplyError(req, answers[r.SensorID])
	})
	tests := []struct {
		sensorID   string
		status     int
		code       messages.Code
		retryAfter string
	}{
		{"db", 503, messages.CodeDatabaseUnavailable, ""},
		{"busy", 503, messages.CodeOverloaded, "7"},
		{"busy-plain", 503, messages.CodeOverloaded, "1"},
		{"expired", 401, messages.CodeUnauthorized, ""},
		{"catalogue", 400, messages.CodeUnknownSensorType, ""},
	}
	for _, tc := range tests {
		t.Run(tc.sensorID, func(t *testing.T) {
			rec := e.do(http.MethodPost, "/test/sensor/temperature", `{"sensor_id":"`+tc.sensorID+`"}`, "Authorization", bearerHdr)
			envelope(t, rec, tc.status, tc.code)
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
		})
	}
	rec := e.do(http.MethodPost, "/test/sensor/temperature", `{"sensor_id":"db"}`, "Authorization", bearerHdr)
	if want := `{"error":"Database unavailable","code":"database_unavailable"}`; rec.Body.String() != want {
		t.Fatalf("body = %s, want %s", rec.Body, want)
	}
	if h := e.srv.Breakers().Health()["edge.sensor"]; h.State != messages.BreakerClosed || h.TotalFailures != 0 {
		t.Fatalf("edge.sensor = %+v: answers from the sensor role must not count as failures", h)
	}
}

func TestSensorDown(t *testing.T) {
	e := newEnv(t, testConfig())
	want := `{"error":"sensor service unavailable","code":"sensor_unavailable"}`
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/test/sensor/temperature", ""},
		{http.MethodGet, "/test/" + testID, ""},
		{http.MethodGet, "/sensor/types", ""},
	} {
		rec := e.do(tc.method, tc.path, tc.body, "Authorization", bearerHdr)
		envelope(t, rec, http.StatusServiceUnavailable, messages.CodeSensorUnavailable)
		if rec.Body.String() != want {
			t.Fatalf("%s %s: body = %s, want %s", tc.method, tc.path, rec.Body, want)
		}
	}
	if got := e.srv.Breakers().Health()["edge.sensor"].State; got != messages.BreakerOpen {
		t.Fatalf("edge.sensor = %s, want open", got)
	}
}

func TestResult(t *testing.T) {
	e := newEnv(t, testConfig())
	const otherID = "01890a5d-ac96-7b8e-9c1d-000000000000"
	record := messages.TestRecord{
		TestID: testID, Status: messages.StatusCompleted, SensorType: "temperature", SensorID: "probe-7",
		Owner: "admin", AuthMode: messages.AuthModeOnline, Verdict: messages.VerdictPass,
		CreatedAt: time.Unix(1_700_000_000, 0).UTC(), UpdatedAt: time.Unix(1_700_000_001, 0).UTC(),
	}
	st := e.stub(messages.RoleSensor, "result", func(req micro.Request) {
		r, err := messages.DecodeGetResult(req.Data())
		switch {
		case err != nil:
			_ = natsx.ReplyError(req, err)
		case req.Headers().Get("Authorization") != bearerHdr:
			_ = natsx.ReplyError(req, messages.ErrUnauthorized)
		case r.TestID == testID:
			_ = natsx.ReplyJSON(req, record)
		case r.TestID == otherID:
			_ = natsx.ReplyError(req, messages.NewError(messages.CodeForbidden, "test belongs to another user"))
		default:
			_ = natsx.ReplyError(req, messages.NewError(messages.CodeNotFound, "no such test"))
		}
	})
	envelope(t, e.do(http.MethodGet, "/test/"+testID, ""), 401, messages.CodeUnauthorized)
	envelope(t, e.do(http.MethodGet, "/test/not-a-uuid", "", "Authorization", bearerHdr), 400, messages.CodeInvalidTestID)
	envelope(t, e.do(http.MethodGet, "/test/"+testID+"%0A", "", "Authorization", bearerHdr), 400, messages.CodeInvalidTestID)
	if n := st.count(); n != 0 {
		t.Fatalf("sensor called %d times before the edge's own checks passed", n)
	}

	rec := e.do(http.MethodGet, "/test/"+testID, "", "Authorization", bearerHdr)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	if got := decodeBody[messages.TestRecord](t, rec); got.TestID != testID || got.Verdict != messages.VerdictPass || !got.CreatedAt.Equal(record.CreatedAt) {
		t.Fatalf("record = %+v", got)
	}
	envelope(t, e.do(http.MethodGet, "/test/"+otherID, "", "Authorization", bearerHdr), 403, messages.CodeForbidden)
	envelope(t, e.do(http.MethodGet, "/test/01890a5d-ac96-7b8e-9c1d-111111111111", "", "Authorization", bearerHdr), 404, messages.CodeNotFound)
}

func TestSensorTypesAndBridgeStats(t *testing.T) {
	e := newEnv(t, testConfig())
	catalogue := messages.SensorTypesReply{Types: []messages.SensorSpec{{Type: "temperature", Unit: "C", Min: -40, Max: 125}}}
	e.stub(messages.RoleSensor, "types", replyJSON(catalogue))
	rec := e.do(http.MethodGet, "/sensor/types", "")
	if got := decodeBody[messages.SensorTypesReply](t, rec); rec.Code != 200 || len(got.Types) != 1 || got.Types[0].Type != "temperature" {
		t.Fatalf("types: %d %s", rec.Code, rec.Body)
	}

	want := `{"error":"bridge service unavailable","code":"bridge_unavailable"}`
	rec = e.do(http.MethodGet, "/kafka/stats", "")
	envelope(t, rec, http.StatusServiceUnavailable, messages.CodeBridgeUnavailable)
	if rec.Body.String() != want {
		t.Fatalf("body = %s, want %s", rec.Body, want)
	}
	stats := messages.BridgeStats{Queued: 3, Successful: 10, Breaker: messages.BreakerClosed, KafkaReachable: true}
	e.stub(messages.RoleBridge, "stats", replyJSON(stats))
	rec = e.do(http.MethodGet, "/kafka/stats", "")
	if got := decodeBody[messages.BridgeStats](t, rec); rec.Code != 200 || got.Queued != 3 || got.Successful != 10 {
		t.Fatalf("stats: %d %s", rec.Code, rec.Body)
	}
}

func TestBadReplyIsInternal(t *testing.T) {
	e := newEnv(t, testConfig())
	e.stub(messages.RoleSensor, "types", func(req micro.Request) { _ = req.Respond([]byte("not json")) })
	rec := e.do(http.MethodGet, "/sensor/types", "")
	envelope(t, rec, http.StatusInternalServerError, messages.CodeInternal)
	if bytes.Contains(rec.Body.Bytes(), []byte("not json")) {
		t.Fatalf("internal detail leaked: %s", rec.Body)
	}
}

func TestCallerGoneDoesNotCount(t *testing.T) {
	e := newEnv(t, testConfig()) // 3 failures would open the breaker
	release := make(chan struct{})
	st := e.stub(messages.RoleSensor, "types", func(req micro.Request) {
		<-release // answers only after the caller gave up
		_ = natsx.ReplyJSON(req, messages.SensorTypesReply{})
	})
	t.Cleanup(func() { close(release) })
	for i := range 4 {
		ctx, cancel := context.WithCancel(context.Background())
		rec := newRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.srv.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/sensor/types", nil))
		}()
		testenv.Eventually(t, "the request to reach the sensor role", func() bool { return st.count() == i+1 })
		cancel()
		<-done
		release <- struct{}{}
		envelope(t, rec, http.StatusServiceUnavailable, messages.CodeUnavailable)
	}
	if h := e.srv.Breakers().Health()["edge.sensor"]; h.State != messages.BreakerClosed || h.TotalFailures != 0 {
		t.Fatalf("edge.sensor = %+v: a caller going away must not count", h)
	}
}

func TestBodyLimitWithoutContentLength(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 64
	e := newEnv(t, cfg)
	req := httptest.NewRequest(http.MethodPost, "/test/sensor/temperature", strings.NewReader(`{"readings":[`+strings.Repeat("1,", 64)+`1]}`))
	req.ContentLength = -1 // chunked: only the reader can tell
	req.Header.Set("Authorization", bearerHdr)
	envelope(t, e.record(req), http.StatusRequestEntityTooLarge, messages.CodeBodyTooLarge)
}
