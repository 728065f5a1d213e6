package sensor

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/acceptance"
	"sensorhub/messages"
)

func TestDecodeSubmit(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		hdr       micro.Headers
		wantCode  messages.Code // "" for success
		wantToken string
		wantKey   string
	}{
		{"header token", `{"sensor_type":"temperature"}`, micro.Headers{"Authorization": {"Bearer abc"}}, "", "abc", ""},
		{"body token", `{"sensor_type":"temperature","token":"xyz"}`, nil, "", "xyz", ""},
		{"header wins", `{"sensor_type":"temperature","token":"xyz"}`, micro.Headers{"Authorization": {"Bearer abc"}}, "", "abc", ""},
		{"any case header", `{"sensor_type":"temperature"}`, micro.Headers{"AUTHORIZATION": {"bearer abc"}}, "", "abc", ""},
		{"bad scheme", `{"sensor_type":"temperature","token":"xyz"}`, micro.Headers{"Authorization": {"Basic abc"}}, messages.CodeUnauthorized, "", ""},
		{"no token", `{"sensor_type":"temperature"}`, nil, messages.CodeUnauthorized, "", ""},
		{"key from header", `{"sensor_type":"temperature","idempotency_key":"b"}`, micro.Headers{"Authorization": {"Bearer a"}, "Idempotency-Key": {"h"}}, "", "a", "h"},
		{"key from body", `{"sensor_type":"temperature","idempotency_key":"b","token":"a"}`, nil, "", "a", "b"},
		{"bad header key", `{"sensor_type":"temperature","token":"a"}`, micro.Headers{"Idempotency-Key": {strings.Repeat("k", 200)}}, messages.CodeBadRequest, "", ""},
		{"unknown type", `{"sensor_type":"unobtainium","token":"a"}`, nil, messages.CodeUnknownSensorType, "", ""},
		{"bad body before token", `{"sensor_type":`, nil, messages.CodeInvalidJSON, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, token, err := decodeSubmit([]byte(tc.body), tc.hdr)
			if tc.wantCode != "" {
				if messages.CodeOf(err) != tc.wantCode {
					t.Fatalf("err %v, want code %s", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if token != tc.wantToken || body.IdempotencyKey != tc.wantKey || body.Token != "" {
				t.Fatalf("token %q key %q body token %q; want %q %q and no body token",
					token, body.IdempotencyKey, body.Token, tc.wantToken, tc.wantKey)
			}
		})
	}
}

// FuzzSubmitDecode: whatever arrives, decodeSubmit does not panic, refuses
// with a stable 4xx code, or returns a catalogued test with a token that
// does not appear in the normalized body.
func FuzzSubmitDecode(f *testing.F) {
	f.Add([]byte(`{"sensor_type":"temperature","readings":[1,2,3],"token":"t"}`), "Bearer x", "key-1")
	f.Add([]byte(`{"sensor_type":"humidity","interval_ms":0}`), "bearer  y ", "")
	f.Add([]byte(``), "", "")
	f.Add([]byte(`{"sensor_type":"co2","reference":1e308,"sensor_id":"a:b.c-d_e"}`), "Bearer z", "\x00")
	f.Fuzz(func(t *testing.T, data []byte, auth, key string) {
		hdr := micro.Headers{}
		if auth != "" {
			hdr["Authorization"] = []string{auth}
		}
		if key != "" {
			hdr["Idempotency-Key"] = []string{key}
		}
		body, token, err := decodeSubmit(data, hdr)
		if err != nil {
			code := messages.CodeOf(err)
			if !code.Known() || code.HTTPStatus() < 400 || code.HTTPStatus() >= 500 {
				t.Fatalf("error %v has code %s, want a known 4xx code", err, code)
			}
			return
		}
		if token == "" || body.Token != "" {
			t.Fatalf("token %q, body token %q", token, body.Token)
		}
		if _, ok := acceptance.LookupSpec(body.SensorType); !ok {
			t.Fatalf("accepted unknown type %q", body.SensorType)
		}
		if err := body.Validate(); err != nil {
			t.Fatalf("accepted an invalid body: %v", err)
		}
		if _, err := json.Marshal(body); err != nil {
			t.Fatalf("accepted body does not encode: %v", err)
		}
	})
}
