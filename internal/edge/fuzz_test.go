package edge

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// checkAnswer asserts what every edge answer to outside input must be: a
// success, or a JSON envelope whose known code matches the status and that
// blames the client (4xx).
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, success int) {
	t.Helper()
	if rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d with Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec.Code == success {
		return
	}
	e, err := messages.DecodeError(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("status %d body %q is not an envelope: %v", rec.Code, rec.Body, err)
	}
	if !e.Code.Known() || e.HTTPStatus() != rec.Code || rec.Code < 400 || rec.Code >= 500 {
		t.Fatalf("status %d with envelope %+v", rec.Code, e)
	}
}

func FuzzLoginForm(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/x-www-form-urlencoded", "username=admin&password=admin123"},
		{"", "username=admin&password=admin123&grant_type=password"},
		{"application/json", `{"username":"admin","password":"admin123"}`},
		{"application/json; charset=utf-8", `{"username":"a","password":"b","client_addr":"x"}`},
		{"", `{"username":"admin"`},
		{"text/plain", "username=admin"},
		{"application/x-www-form-urlencoded", "username=%ff&password=%00"},
		{"application/x-www-form-urlencoded", "username=a;b&password=c&username=d"},
		{"multipart/form-data; boundary=x", "--x--"},
		{"application/vnd.api+json", `{"username":"admin","password":"admin123"}{}`},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	cfg := testConfig()
	// Every fuzz input comes from one address: limits would soon answer
	// 429 to everything and hide what the decoder does.
	cfg.LoginPerAddr = RateLimit{Every: time.Nanosecond, Burst: 1 << 20}
	e := newEnv(f, cfg)
	e.stub(messages.RoleAuth, "token-forwarded", authStub)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req, err := decodeLogin(contentType, body)
		if err != nil {
			var env *messages.Error
			if !errors.As(err, &env) || !env.Code.Known() || env.HTTPStatus() >= 500 {
				t.Fatalf("decodeLogin error %v: want a known 4xx envelope", err)
			}
		} else {
			if verr := req.Validate(); verr != nil {
				t.Fatalf("decodeLogin accepted an invalid request: %v", verr)
			}
			if req.ClientAddr != "" || !utf8.ValidString(req.Username) || !utf8.ValidString(req.Password) {
				t.Fatalf("decodeLogin accepted %+v", req)
			}
		}
		// The same input through the whole handler.
		if strings.ContainsAny(contentType, "\r\n\x00") {
			return // not a header value net/http would deliver
		}
		r := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(string(body)))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		rec := e.record(r)
		if err == nil && rec.Code != http.StatusOK && rec.Code != http.StatusUnauthorized {
			t.Fatalf("decoded fine but the edge answered %d %s", rec.Code, rec.Body)
		}
		checkAnswer(t, rec, http.StatusOK)
	})
}

func FuzzSubmitBody(f *testing.F) {
	for _, seed := range []struct{ body, sensorType, idemKey string }{
		{"", "temperature", ""},
		{`{"readings":[1,2,3],"sensor_id":"p-1","reference":2}`, "temperature", "k-1"},
		{`{"readings":[1e400]}`, "humidity", ""},
		{`{"sensor_type":"pressure"}`, "temperature", ""},
		{`{"idempotency_key":"a b"}`, "temperature", ""},
		{`{"interval_ms":0,"token":"x"}`, "temperature", "k"},
		{`{"readings":null}`, "a.b", ""},
		{`{`, "..", "x"},
		{`{"sensor_id":"\u0000"}`, "temp>", " "},
		{`[]`, "", ""},
	} {
		f.Add([]byte(seed.body), seed.sensorType, seed.idemKey)
	}
	e := newEnv(f, testConfig())
	// The stand-in sensor role checks that the edge forwards only valid
	// submissions with matching headers; anything else is a 500 the fuzzer
	// reports.
	e.stub(messages.RoleSensor, "submit", func(req micro.Request) {
		r, err := messages.DecodeSubmitTest(req.Data(), "")
		if err != nil || req.Headers().Get("Authorization") != bearerHdr || req.Headers().Get("Idempotency-Key") != r.IdempotencyKey {
			_ = natsx.ReplyError(req, messages.NewError(messages.CodeInternal, "stub: edge forwarded an invalid submission"))
			return
		}
		_ = natsx.ReplyJSON(req, messages.TestAccepted{TestID: testID, Status: messages.StatusProcessing, AuthMode: messages.AuthModeOnline})
	})
	f.Fuzz(func(t *testing.T, body []byte, sensorType, idemKey string) {
		if sensorType == "" || sensorType == "." || sensorType == ".." {
			return // not a submit route: the mux answers 404 or redirects
		}
		if strings.ContainsFunc(idemKey, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return // not a header value net/http would deliver
		}
		var keys []string
		if idemKey != "" {
			keys = []string{idemKey}
		}
		_, decodeErr := decodeSubmit(body, sensorType, keys)

		r := httptest.NewRequest(http.MethodPost, "/test/sensor/"+url.PathEscape(sensorType), strings.NewReader(string(body)))
		r.Header.Set("Authorization", bearerHdr)
		if idemKey != "" {
			r.Header.Set("Idempotency-Key", idemKey)
		}
		rec := e.record(r)
		if (decodeErr == nil) != (rec.Code == http.StatusAccepted) {
			t.Fatalf("decodeSubmit error %v, but the edge answered %d %s", decodeErr, rec.Code, rec.Body)
		}
		checkAnswer(t, rec, http.StatusAccepted)
	})
}
