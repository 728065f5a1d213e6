package messages

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// checkErr asserts the decoder contract: either a value or an *Error with a
// known code, never a panic.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	e := AsError(err)
	if !e.Code.Known() || e.Code == CodeInternal || e.Message == "" {
		t.Fatalf("decoder error %v has no stable client code", err)
	}
}

func FuzzDecodeSubmitTest(f *testing.F) {
	for _, s := range []string{"", "{}", `{"readings":[1,2,3],"reference":1}`, `{"sensor_id":"x","interval_ms":5}`, `{"readings":"x"}`, `[`, `{"a":1}`} {
		f.Add([]byte(s), "temperature")
	}
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		r, err := DecodeSubmitTest(data, path)
		checkErr(t, err)
		if err != nil {
			return
		}
		// Whatever was accepted is valid and survives a round trip.
		if verr := r.Validate(); verr != nil {
			t.Fatalf("accepted but invalid: %v", verr)
		}
		b, merr := json.Marshal(r)
		if merr != nil {
			t.Fatalf("accepted value does not encode: %v", merr)
		}
		again, err := DecodeSubmitTest(b, "")
		if err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
		// The fingerprint belongs to what was asked, not to its spelling.
		if again.Fingerprint() != r.Fingerprint() {
			t.Fatalf("fingerprint changed in a round trip through %s", b)
		}
	})
}

func FuzzDecodeTokenRequest(f *testing.F) {
	f.Add([]byte(`{"username":"admin","password":"admin123"}`))
	f.Add([]byte(`{"username":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeTokenRequest(data)
		checkErr(t, err)
		if err == nil && (r.Username == "" || r.Password == "") {
			t.Fatal("accepted empty credentials")
		}
	})
}

func FuzzDecodeValidateRequest(f *testing.F) {
	f.Add([]byte(`{"token":"a.b.c"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeValidateRequest(data)
		checkErr(t, err)
		if err == nil && (r.Token == "" || len(r.Token) > MaxTokenLen) {
			t.Fatal("accepted a token out of bounds")
		}
	})
}

func FuzzDecodeGetResult(f *testing.F) {
	f.Add([]byte(`{"test_id":"0190c2d4-1b2a-7c3d-8e4f-5a6b7c8d9e0f"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeGetResult(data)
		checkErr(t, err)
		if err == nil && !ValidTestID(r.TestID) {
			t.Fatal("accepted a bad test id")
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"schema":1,"event_id":"e","test_id":"t","type":"sensor.test.completed","sensor_type":"co2"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEvent(data)
		if err == nil {
			if e.Validate() != nil {
				t.Fatal("accepted an invalid event")
			}
			if _, err := e.Encode(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzDecodeJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"abc","kid":"k","alg":"EdDSA","use":"sig"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := DecodeJWKS(data)
		checkErr(t, err)
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add([]byte(`{"error":"x","code":"not_found"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeError(data)
		if err == nil && e.Code == "" {
			t.Fatal("envelope without code accepted")
		}
	})
}

func FuzzDecodeChaosPanic(f *testing.F) {
	f.Add([]byte(`{"actor":"auth"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeChaosPanic(data)
		checkErr(t, err)
		if err == nil && r.Actor == "" {
			t.Fatal("accepted empty actor")
		}
	})
}

func FuzzDecodeChaosControl(f *testing.F) {
	f.Add([]byte(`{"target":"kafka","action":"stop"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeChaosControl(data)
		checkErr(t, err)
		if err == nil && (r.Target == "" || r.Action == "") {
			t.Fatalf("accepted %+v", r)
		}
	})
}

func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer abc")
	f.Fuzz(func(t *testing.T, h string) {
		tok := BearerToken(h)
		if tok != "" && len(tok) > len(h) {
			t.Fatal("token longer than header")
		}
	})
}

// Every accepted username makes one valid subject token for its inbox
// prefix, and can log in.
func FuzzValidUsername(f *testing.F) {
	for _, s := range []string{"alice", "a.b", "auth", "_INBOX_x", "x>", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidUsername(name)
		checkErr(t, err)
		if err != nil {
			return
		}
		if _, err := NewSubjects("_INBOX_" + name); err != nil || strings.Contains(name, ".") {
			t.Fatalf("accepted %q is not one subject token: %v", name, err)
		}
		if err := (TokenRequest{Username: name, Password: "p"}).Validate(); err != nil {
			t.Fatalf("accepted %q cannot log in: %v", name, err)
		}
	})
}

func FuzzDecodeListDeadLetters(f *testing.F) {
	for _, s := range []string{"", "{}", `{"after":3,"limit":10,"reason":"too large"}`, `{"limit":-1}`, `{"limit":501}`, `{"x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeListDeadLetters(data)
		checkErr(t, err)
		if err == nil && (r.Limit < 1 || r.Limit > MaxDeadLetterPage || len(r.Reason) > MaxDeadLetterReason) {
			t.Fatalf("accepted a list out of bounds: %+v", r)
		}
	})
}

func FuzzDecodeGetDeadLetter(f *testing.F) {
	for _, s := range []string{`{"sequence":1}`, `{"sequence":0}`, `{"sequence":-1}`, `{}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeGetDeadLetter(data)
		checkErr(t, err)
		if err == nil && r.Sequence == 0 {
			t.Fatal("accepted sequence 0")
		}
	})
}

// checkSelection asserts what every accepted dead-letter selection is:
// sequences or all, in bounds.
func checkSelection(t *testing.T, s DeadLetterSelection) {
	t.Helper()
	if (len(s.Sequences) == 0) == !s.All || len(s.Sequences) > MaxDeadLetterPage || slices.Contains(s.Sequences, 0) ||
		(!s.All && (s.Reason != "" || s.After != 0)) {
		t.Fatalf("accepted a bad selection: %+v", s)
	}
}

func FuzzDecodeReplayDeadLetters(f *testing.F) {
	for _, s := range []string{`{"sequences":[1,2]}`, `{"all":true,"reason":"x","after":4}`, `{}`, `{"sequences":[0]}`, `{"all":true,"sequences":[1]}`, `{"reason":"x","sequences":[1]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReplayDeadLetters(data)
		checkErr(t, err)
		if err == nil {
			checkSelection(t, r.Selection())
		}
	})
}

func FuzzDecodePurgeDeadLetters(f *testing.F) {
	for _, s := range []string{`{"sequences":[1],"confirm":true}`, `{"all":true,"confirm":true}`, `{"all":true}`, `{"confirm":true}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodePurgeDeadLetters(data)
		checkErr(t, err)
		if err == nil {
			checkSelection(t, r.Selection())
			if !r.Confirm {
				t.Fatal("accepted a purge without confirm")
			}
		}
	})
}
