package sensor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"sensorhub/messages"
)

// hostile strings for every string member: HTML characters, quotes,
// control characters, invalid UTF-8, line and paragraph separators.
var hostileStrings = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr\bbs\fff",
	"nul \x00 and \x1f", "bad \xff utf8 \xc3", "sep \u2028 and \u2029", "ünïcödé °C ✓", "emoji 😀",
}

// The hand-written encoders produce exactly what encoding/json does, for
// simulated acquisitions of every catalogue type (faults included) and for
// hostile strings and extreme numbers.
func TestEncodersMatchEncodingJSON(t *testing.T) {
	ref := 21.5
	var evs []Evaluation
	for _, spec := range Catalogue() {
		for i := range 40 {
			readings, interval := Simulate(spec, fmt.Sprintf("0190a0b0-c0d0-7000-8000-%012d", i))
			var r *float64
			if i%3 == 0 {
				r = &ref
			}
			ev := Evaluate(spec, readings, interval, r)
			ev.Source = messages.SourceSimulated
			evs = append(evs, ev)
		}
	}
	tiny, huge := 1e-9, -3.5e22
	for _, s := range hostileStrings {
		evs = append(evs, Evaluation{
			Source: s, Unit: s, Verdict: s,
			Checks: []messages.Check{{Name: s, Passed: true, Value: tiny, Limit: huge, Detail: s}, {Name: "x", Value: math.Copysign(0, -1), Limit: 1e21, Detail: s}},
			Stats:  messages.Stats{Count: 3, Min: 1e-6, Max: 123456789.123, Mean: -1e-7, StdDev: 0.1, Noise: 5e-324, DriftPerMinute: math.MaxFloat64, ReferenceError: &tiny},
		})
	}
	evs = append(evs, Evaluation{}, Evaluation{Checks: []messages.Check{}})

	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	for i, ev := range evs {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeEvaluation(&ev)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("evaluation %d:\n got %s (%v)\nwant %s", i, got, err, want)
		}

		s := hostileStrings[i%len(hostileStrings)]
		stats := ev.Stats
		e := messages.TestCompleted{
			Schema: messages.EventSchema, EventID: "e-" + s, Type: messages.EventTypeCompleted, TestID: "t" + s,
			SensorType: "temperature", SensorID: s, Owner: s, Status: messages.StatusCompleted,
			Verdict: ev.Verdict, Source: ev.Source, Reason: s, CreatedAt: at,
			CompletedAt: at.Add(time.Duration(i) * time.Millisecond).In(time.FixedZone("x", 3600)),
		}
		if i%2 == 0 {
			e.Stats = &stats
		}
		want, err = e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err = encodeEvent(&e)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s (%v)\nwant %s", i, got, err, want)
		}
	}
}

func TestEncodersRefuseWhatEncodingJSONRefuses(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		ev := Evaluation{Stats: messages.Stats{Mean: f}}
		if _, err := encodeEvaluation(&ev); err == nil {
			t.Errorf("evaluation with %v encoded", f)
		}
		e := messages.TestCompleted{Stats: &messages.Stats{Noise: f}}
		if _, err := encodeEvent(&e); err == nil {
			t.Errorf("event with %v encoded", f)
		}
	}
	e := messages.TestCompleted{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := encodeEvent(&e); err == nil || !strings.Contains(err.Error(), "year") {
		t.Errorf("year 10000: %v", err)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

func BenchmarkEncodeEvaluation(b *testing.B) {
	spec, _ := LookupSpec("temperature")
	readings, interval := Simulate(spec, "0190a0b0-c0d0-7000-8000-000000000001")
	ev := Evaluate(spec, readings, interval, nil)
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			_, _ = encodeEvaluation(&ev)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(ev)
		}
	})
}
