package acceptance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
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

// The hand-written encoders (the evaluation's here, the event's in
// messages) produce exactly what encoding/json does, for simulated
// acquisitions of every catalogue type (faults included) and for hostile
// strings and extreme numbers.
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
		got, err := ev.Encode()
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
		want, err = json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err = e.Encode()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s (%v)\nwant %s", i, got, err, want)
		}
	}
}

func TestEncodersRefuseWhatEncodingJSONRefuses(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		ev := Evaluation{Stats: messages.Stats{Mean: f}}
		if _, err := ev.Encode(); err == nil {
			t.Errorf("evaluation with %v encoded", f)
		}
		ev = Evaluation{Checks: []messages.Check{{Value: f}}}
		if _, err := ev.Encode(); err == nil {
			t.Errorf("evaluation with a check of %v encoded", f)
		}
	}
}

// TestEncodeCoversEveryField sets every member of Evaluation, so that a
// member added to the type and forgotten by Encode fails here (the members
// of messages.Check and messages.Stats are covered the same way, field by
// field, in messages).
func TestEncodeCoversEveryField(t *testing.T) {
	var ev Evaluation
	v := reflect.ValueOf(&ev).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString(name + " <&>")
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 2, 2))
		case reflect.Struct:
			f.Set(reflect.ValueOf(messages.Stats{Count: 2, Min: 1, Max: 2, Mean: 1.5}))
		default:
			t.Fatalf("Evaluation.%s: no rule for kind %s; add one", name, f.Kind())
		}
		if f.IsZero() {
			t.Fatalf("Evaluation.%s: still zero", name)
		}
	}
	want, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON, fromHand Evaluation
	if err := json.Unmarshal(want, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &fromHand); err != nil {
		t.Fatalf("Encode does not decode: %v\n%s", err, got)
	}
	if !reflect.DeepEqual(fromHand, fromJSON) || !bytes.Equal(got, want) {
		t.Fatalf("Encode:\n got %s\nwant %s", got, want)
	}
}

func BenchmarkEncodeEvaluation(b *testing.B) {
	spec, _ := LookupSpec("temperature")
	readings, interval := Simulate(spec, "0190a0b0-c0d0-7000-8000-000000000001")
	ev := Evaluate(spec, readings, interval, nil)
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			_, _ = ev.Encode()
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(ev)
		}
	})
}
