package messages

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
)

func TestNewSubjectsRefusesWildcardsAndJunk(t *testing.T) {
	for _, p := range []string{"a.>", "a.*", "a b", "a..b", ".a", "a.", "ä"} {
		if _, err := NewSubjects(p); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	s, err := NewSubjects("acme.prod")
	if err != nil || s.AuthValidate() != "acme.prod.auth.validate" {
		t.Fatalf("custom prefix: %v %q", err, s.AuthValidate())
	}
}

func TestEveryCodeHasAStatus(t *testing.T) {
	for code, status := range statusByCode {
		if status < 400 || status > 599 {
			t.Errorf("%s -> %d", code, status)
		}
	}
	if Code("nope").HTTPStatus() != http.StatusInternalServerError || Code("nope").Known() {
		t.Fatal("unknown code must map to 500 and be unknown")
	}
	if ErrDatabaseUnavailable.HTTPStatus() != 503 || ErrAuthUnavailable.Message != "auth service unavailable" {
		t.Fatal("seed-compatible envelopes changed")
	}
}

func TestDecodeSubmitTest(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		name string
		body string
		path string
		code Code // "" = ok
	}{
		{"empty body", "", "temperature", ""},
		{"whitespace body", " \n ", "humidity", ""},
		{"full", `{"sensor_id":"a.b:c-1_2","readings":[1,2,3],"interval_ms":250,"reference":2,"idempotency_key":"k-1"}`, "co2", ""},
		{"type in body only", `{"sensor_type":"light"}`, "", ""},
		{"type mismatch", `{"sensor_type":"light"}`, "co2", CodeBadRequest},
		{"malformed", `{"readings":[1,2`, "co2", CodeInvalidJSON},
		{"not an object", `[1,2]`, "co2", CodeInvalidJSON},
		{"wrong type", `{"readings":"x"}`, "co2", CodeInvalidJSON},
		{"wrong element type", `{"readings":[1,"2"]}`, "co2", CodeInvalidJSON},
		{"unknown field", `{"reading":[1]}`, "co2", CodeInvalidJSON},
		{"trailing data", `{} {}`, "co2", CodeInvalidJSON},
		{"huge number", `{"readings":[1e400]}`, "co2", CodeInvalidJSON},
		{"bad type shape", ``, "../etc", CodeUnknownSensorType},
		{"type with wildcard", ``, "co2.>", CodeUnknownSensorType},
		{"no type", `{}`, "", CodeUnknownSensorType},
		{"bad sensor id", `{"sensor_id":"a b"}`, "co2", CodeInvalidSensorID},
		{"long sensor id", `{"sensor_id":"` + strings.Repeat("a", 129) + `"}`, "co2", CodeInvalidSensorID},
		{"hostile sensor id", `{"sensor_id":"'; DROP TABLE tests;--"}`, "co2", CodeInvalidSensorID},
		{"interval too small", `{"interval_ms":-5}`, "co2", CodeInvalidReadings},
		{"interval too big", `{"interval_ms":3600001}`, "co2", CodeInvalidReadings},
		{"bad idempotency key", `{"idempotency_key":"a b"}`, "co2", CodeBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := DecodeSubmitTest([]byte(c.body), c.path)
			if c.code == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if r.SensorID == "" || r.IntervalMS == 0 {
					t.Fatalf("not normalized: %+v", r)
				}
				return
			}
			if CodeOf(err) != c.code {
				t.Fatalf("code = %s (%v), want %s", CodeOf(err), err, c.code)
			}
		})
	}
	r, err := DecodeSubmitTest([]byte(`{"reference":21.5,"readings":[1]}`), "temperature")
	if err != nil || r.Reference == nil || *r.Reference != *f(21.5) {
		t.Fatalf("reference lost: %+v %v", r, err)
	}
}

func TestSubmitValidateRefusesNonFinite(t *testing.T) {
	// JSON cannot carry NaN, but a Go caller (or a future codec) could.
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		r := SubmitTest{SensorType: "co2", SensorID: "x", IntervalMS: 1000, Readings: []float64{1, v}}
		if CodeOf(r.Validate()) != CodeInvalidReadings {
			t.Errorf("%v accepted", v)
		}
		r = SubmitTest{SensorType: "co2", SensorID: "x", IntervalMS: 1000, Reference: &v}
		if CodeOf(r.Validate()) != CodeInvalidReadings {
			t.Errorf("reference %v accepted", v)
		}
	}
	r := SubmitTest{SensorType: "co2", SensorID: "x", IntervalMS: 1000, Readings: make([]float64, MaxReadings+1)}
	if CodeOf(r.Validate()) != CodeInvalidReadings {
		t.Error("too many readings accepted")
	}
	r.Readings = r.Readings[:MaxReadings]
	if err := r.Validate(); err != nil {
		t.Errorf("exactly %d readings refused: %v", MaxReadings, err)
	}
}

func TestDecodeBodyTooLarge(t *testing.T) {
	big := `{"sensor_id":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	if _, err := DecodeSubmitTest([]byte(big), "co2"); CodeOf(err) != CodeBodyTooLarge {
		t.Fatalf("code = %s", CodeOf(err))
	}
}

func TestDecodeTokenRequest(t *testing.T) {
	cases := map[string]Code{
		`{"username":"admin","password":"admin123"}`:                    "",
		`{"username":"admin"}`:                                          CodeBadRequest,
		`{"username":"","password":"x"}`:                                CodeBadRequest,
		`{"username":1,"password":"x"}`:                                 CodeInvalidJSON,
		`{"username":"` + strings.Repeat("u", 65) + `","password":"x"}`: CodeBadRequest,
		`{"username":"u","password":"` + strings.Repeat("p", 73) + `"}`: CodeBadRequest,
		`nope`: CodeInvalidJSON,
		``:     CodeInvalidJSON,
		`{"username":"u","password":"p","client_addr":"1.2.3.4","extra":1}`: CodeInvalidJSON,
	}
	for body, want := range cases {
		_, err := DecodeTokenRequest([]byte(body))
		if want == "" && err != nil || want != "" && CodeOf(err) != want {
			t.Errorf("%.40q: err = %v, want %s", body, err, want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	cases := map[string]string{
		"Bearer abc":   "abc",
		"bearer  abc ": "abc",
		"BEARER abc":   "abc",
		"Basic abc":    "",
		"Bearer":       "",
		"":             "",
		"abc":          "",
	}
	for in, want := range cases {
		if got := BearerToken(in); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGetResultAndEvent(t *testing.T) {
	if _, err := DecodeGetResult([]byte(`{"test_id":"0190c2d4-1b2a-7c3d-8e4f-5a6b7c8d9e0f"}`)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "x", "0190c2d4-1b2a-7c3d-8e4f-5a6b7c8d9e0", "../../etc/passwd"} {
		b, _ := json.Marshal(GetResult{TestID: id})
		if _, err := DecodeGetResult(b); CodeOf(err) != CodeInvalidTestID {
			t.Errorf("test id %q: %v", id, err)
		}
	}
	if _, err := DecodeEvent([]byte(`{"schema":2,"event_id":"e","test_id":"t","type":"sensor.test.completed","sensor_type":"co2"}`)); err == nil {
		t.Error("schema 2 accepted by a schema 1 consumer")
	}
	if _, err := DecodeEvent([]byte(`{"schema":1,"event_id":"e","test_id":"t","type":"x","sensor_type":"co2"}`)); err == nil {
		t.Error("unknown event type accepted")
	}
}

func TestErrorEnvelopeRoundTrip(t *testing.T) {
	e := &Error{Code: CodeOverloaded, Message: "busy", RetryAfter: 2}
	back, err := DecodeError(e.JSON())
	if err != nil || back.Code != CodeOverloaded || back.RetryAfter != 2 || !errors.Is(back, e) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if _, err := DecodeError([]byte(`{"error":"x"}`)); err == nil {
		t.Fatal("envelope without code accepted")
	}
	if AsError(errors.New("boom")).Code != CodeInternal {
		t.Fatal("unknown error not internal")
	}
}

func TestValidUsername(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"Alice_Smith-2", true},
		{"a", true},
		{strings.Repeat("u", MaxUsernameLen), true},
		{"admin", true},
		{"authors", true},
		{"", false},
		{strings.Repeat("u", MaxUsernameLen+1), false},
		{"alice.smith", false}, // two subject tokens
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"tab\t", false},
		{"älg", false},
		{"a/b", false},
		{"a\x00", false},
		{"auth", false},
		{"sensor", false},
		{"bridge", false},
		{"edge", false},
		{"sys", false},
		{"SYS", false},
		{"Auth", false},
	}
	for _, tc := range cases {
		err := ValidUsername(tc.name)
		if tc.ok != (err == nil) {
			t.Errorf("ValidUsername(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && (CodeOf(err) != CodeBadRequest || AsError(err).Message == "") {
			t.Errorf("ValidUsername(%q): error %v has no bad_request code and message", tc.name, err)
		}
	}
}

// The account rule is not the login rule: names created before it (a dot,
// a non-ASCII letter) still pass TokenRequest.Validate and can log in.
func TestLoginAcceptsNamesTheAccountRuleRefuses(t *testing.T) {
	for _, name := range []string{"alice.smith", "älg", "auth", "a b"} {
		if ValidUsername(name) == nil {
			t.Errorf("ValidUsername(%q) accepted", name)
		}
		if err := (TokenRequest{Username: name, Password: "secret"}).Validate(); err != nil {
			t.Errorf("login as %q refused: %v", name, err)
		}
	}
}

// The bridge takes the event type from the subject: every event's subject
// must name its own type, and nothing else may name one.
func TestEventTypeOfSubject(t *testing.T) {
	subj, err := NewSubjects("plant-7.sensorhub")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{EventTypeCompleted, EventTypeFailed} {
		e := TestCompleted{Type: typ}
		if got := EventTypeOfSubject(subj.Event("co2", e.Kind())); got != typ {
			t.Errorf("the subject of a %s event names %q", typ, got)
		}
	}
	for _, s := range []string{"", "completed.", "sensorhub.events.co2", "sensorhub.events.co2.complete", "sensorhub.events.co2.Completed",
		"sensorhub.events.co2.completed.x", "failed "} {
		if got := EventTypeOfSubject(s); got != "" {
			t.Errorf("EventTypeOfSubject(%q) = %q, want none", s, got)
		}
	}
}
