package bridge

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"sensorhub/messages"
)

// sampleEvents are events as the sensor role writes them (json.Marshal
// writes the same bytes as its encoder).
func sampleEvents(t testing.TB) [][]byte {
	t.Helper()
	at := time.Date(2026, 11, 27, 10, 55, 8, 78970588, time.UTC)
	ref := -0.25
	events := []messages.TestCompleted{
		{
			Schema: 1, EventID: "01a21ca5-0b33-7013-a0d8-ab099bd1a51c", Type: messages.EventTypeCompleted,
			TestID: "01a21ca5-0b2e-7daf-8387-ece24efa1ea6", SensorType: "vibration", SensorID: "default",
			Owner: "admin", Status: "completed", Verdict: "fail", Source: "simulated",
			Stats: &messages.Stats{Count: 120, Min: 2.6, Max: 50.85, Mean: 3.89, StdDev: 7.52, Noise: 6.24,
				DriftPerMinute: 1.23, Spikes: 2, OutOfRange: 3},
			CreatedAt: at, CompletedAt: at.Add(4 * time.Millisecond),
		},
		{
			Schema: 1, EventID: "e2", Type: messages.EventTypeCompleted, TestID: "t2", SensorType: "temperature",
			SensorID: "sensor ünïcødé 🚀", Owner: "alice", Status: "completed", Verdict: "pass", Source: "submitted",
			Stats:     &messages.Stats{Count: 2, Min: -1e-7, Max: 1e21, Mean: 0, ReferenceError: &ref},
			CreatedAt: at, CompletedAt: at,
		},
		{
			Schema: 1, EventID: "e3", Type: messages.EventTypeFailed, TestID: "t3", SensorType: "co2",
			SensorID: "s", Owner: "bob", Status: "failed", Reason: "processing failed 3 times: boom",
			CreatedAt: at.In(time.FixedZone("x", 3600)), CompletedAt: at,
		},
	}
	var out [][]byte
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// assertSame checks that decodeEvent answers data exactly as
// messages.DecodeEvent does.
func assertSame(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := decodeEvent(data)
	want, wantErr := messages.DecodeEvent(data)
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("decodeEvent(%q): error %v, messages.DecodeEvent: %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeEvent(%q) =\n%#v\nmessages.DecodeEvent =\n%#v", data, got, want)
	}
}

func TestDecodeEventFastPath(t *testing.T) {
	for _, data := range sampleEvents(t) {
		if _, ok := decodeEventFast(data); !ok {
			t.Errorf("the fast path refused an event as the sensor role writes it: %s", data)
		}
		assertSame(t, data)
	}
}

// Everything the fast path does not read goes to the full decoder, which
// decides as before: the same event, or the same error.
func TestDecodeEventFallsBack(t *testing.T) {
	base := string(sampleEvents(t)[0])
	cases := map[string]string{
		"leading space":          " " + base,
		"trailing newline":       base + "\n",
		"space after colon":      strings.Replace(base, `"schema":1`, `"schema": 1`, 1),
		"escaped string":         strings.Replace(base, `"sensor_id":"default"`, `"sensor_id":"de\u0066ault"`, 1),
		"escaped quote":          strings.Replace(base, `"owner":"admin"`, `"owner":"ad\"min"`, 1),
		"unknown member":         strings.Replace(base, `{"schema":1`, `{"extra":[1,{"a":null}],"schema":1`, 1),
		"member case":            strings.Replace(base, `"sensor_id"`, `"SENSOR_ID"`, 1),
		"repeated member":        strings.Replace(base, `"schema":1`, `"schema":1,"schema":2`, 1),
		"repeated stat":          strings.Replace(base, `"count":120`, `"count":120,"count":3`, 1),
		"null member":            strings.Replace(base, `"verdict":"fail"`, `"verdict":null`, 1),
		"null stats":             strings.Replace(base, `"stats":{`, `"stats":null,"x":{`, 1),
		"empty stats":            strings.Replace(base, `"stats":{"count":120,"min":2.6,"max":50.85,"mean":3.89,"stddev":7.52,"noise":6.24,"drift_per_min":1.23,"spikes":2,"out_of_range":3}`, `"stats":{}`, 1),
		"schema with fraction":   strings.Replace(base, `"schema":1`, `"schema":1.0`, 1),
		"schema as string":       strings.Replace(base, `"schema":1`, `"schema":"1"`, 1),
		"schema too large":       strings.Replace(base, `"schema":1`, `"schema":99999999999999999999`, 1),
		"schema 2":               strings.Replace(base, `"schema":1`, `"schema":2`, 1),
		"leading zero":           strings.Replace(base, `"count":120`, `"count":0120`, 1),
		"float out of range":     strings.Replace(base, `"min":2.6`, `"min":1e999`, 1),
		"float exponent":         strings.Replace(base, `"min":2.6`, `"min":-2.6E-3`, 1),
		"float with plus":        strings.Replace(base, `"min":2.6`, `"min":+2.6`, 1),
		"float bare dot":         strings.Replace(base, `"min":2.6`, `"min":.6`, 1),
		"bad time":               strings.Replace(base, `"created_at":"2026-11-27T10:55:08.078970588Z"`, `"created_at":"yesterday"`, 1),
		"time as number":         strings.Replace(base, `"created_at":"2026-11-27T10:55:08.078970588Z"`, `"created_at":5`, 1),
		"invalid utf-8":          strings.Replace(base, `"owner":"admin"`, "\"owner\":\"ad\xffmin\"", 1),
		"control character":      strings.Replace(base, `"owner":"admin"`, "\"owner\":\"ad\tmin\"", 1),
		"unknown type":           strings.Replace(base, messages.EventTypeCompleted, "sensor.test.exploded", 1),
		"bad sensor type":        strings.Replace(base, `"sensor_type":"vibration"`, `"sensor_type":"Vibration!"`, 1),
		"no event id":            strings.Replace(base, `"event_id":"01a21ca5-0b33-7013-a0d8-ab099bd1a51c",`, ``, 1),
		"trailing garbage":       base + "x",
		"truncated":              base[:len(base)-1],
		"two objects":            base + base,
		"array":                  "[" + base + "]",
		"empty object":           "{}",
		"not json":               "not json",
		"empty":                  "",
		"missing colon":          strings.Replace(base, `"schema":1`, `"schema"1`, 1),
		"trailing comma":         strings.Replace(base, `}`, `,}`, 1),
		"stats trailing comma":   strings.Replace(base, `"out_of_range":3}`, `"out_of_range":3,}`, 1),
		"unknown stat":           strings.Replace(base, `"count":120`, `"count":120,"median":3`, 1),
		"reference error":        strings.Replace(base, `"count":120`, `"reference_error":-0.5,"count":120`, 1),
		"negative zero":          strings.Replace(base, `"spikes":2`, `"spikes":-0`, 1),
		"lone minus":             strings.Replace(base, `"spikes":2`, `"spikes":-`, 1),
		"exponent without digit": strings.Replace(base, `"min":2.6`, `"min":2e`, 1),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { assertSame(t, []byte(data)) })
	}
}

// FuzzDecodeEvent holds the fast path to the full decoder on any input.
func FuzzDecodeEvent(f *testing.F) {
	for _, e := range sampleEvents(f) {
		f.Add(e)
	}
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte(`{"stats":{"reference_error":1e-3}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) { assertSame(t, data) })
}

func BenchmarkDecodeEvent(b *testing.B) {
	data := sampleEvents(b)[0]
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			if _, err := decodeEvent(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for range b.N {
			if _, err := messages.DecodeEvent(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
