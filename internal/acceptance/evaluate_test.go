package acceptance

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"sensorhub/messages"
)

// Series makers for the table tests. Each failing series is shaped so that
// it breaks one limit of the spec by half again and keeps every other well
// inside, whatever the sensor type.

func seriesConstant(n int, v float64) []float64 {
	r := make([]float64, n)
	for i := range r {
		r[i] = v
	}
	return r
}

// seriesHealthy is the nominal value with noise at about a third of MaxNoise and
// a drift of 0.3 MaxDrift centred on the middle reading.
func seriesHealthy(s messages.SensorSpec, n int) []float64 { return seriesHealthyDrifting(s, n, 0.3) }

// seriesHealthyDrifting is seriesHealthy with a drift of driftShare MaxDrift; a long
// series needs little, or it wanders out of the valid range.
func seriesHealthyDrifting(s messages.SensorSpec, n int, driftShare float64) []float64 {
	r := make([]float64, n)
	minutes := float64(s.IntervalMS) / 60_000
	for i := range r {
		r[i] = s.Nominal + 0.3*s.MaxNoise*math.Sin(1.7*float64(i)) +
			driftShare*s.MaxDrift*(float64(i)-float64(n-1)/2)*minutes
	}
	return r
}

// seriesSpiky is constant with one reading 1.2 MaxStep up, in the middle of a
// long series so that its two steps barely move the noise and, being at the
// centre, do not move the slope at all.
func seriesSpiky(s messages.SensorSpec) []float64 {
	r := seriesConstant(1001, s.Nominal)
	r[500] += 1.2 * s.MaxStep
	return r
}

// seriesNoisy alternates around the nominal value: its successive differences
// are ±1.5 MaxNoise, far from a spike.
func seriesNoisy(s messages.SensorSpec, n int) []float64 {
	r := make([]float64, n)
	for i := range r {
		r[i] = s.Nominal + 0.75*s.MaxNoise
		if i%2 == 1 {
			r[i] = s.Nominal - 0.75*s.MaxNoise
		}
	}
	return r
}

// seriesDrifting is a straight line through the nominal value at 1.5 MaxDrift.
func seriesDrifting(s messages.SensorSpec, n int) []float64 {
	r := make([]float64, n)
	minutes := float64(s.IntervalMS) / 60_000
	for i := range r {
		r[i] = s.Nominal + 1.5*s.MaxDrift*(float64(i)-float64(n-1)/2)*minutes
	}
	return r
}

func floatPtr(v float64) *float64 { return &v }

func failedChecks(ev Evaluation) []string {
	var names []string
	for _, c := range ev.Checks {
		if !c.Passed {
			names = append(names, c.Name)
		}
	}
	return names
}

// assertConsistent checks what must hold for every evaluation, whatever
// its input: it marshals, its checks come in order and agree with their
// value and limit, and the verdict is the conjunction of the checks.
func assertEvaluationConsistent(t *testing.T, ev Evaluation, nReadings int, withReference bool) {
	t.Helper()
	if _, err := json.Marshal(ev); err != nil {
		t.Fatalf("json.Marshal: %v (evaluation %+v)", err, ev)
	}
	if ev.Stats.Count != nReadings {
		t.Errorf("stats.count = %d, want %d", ev.Stats.Count, nReadings)
	}
	want := []string{CheckCount, CheckRange, CheckSpike, CheckNoise, CheckDrift}
	if withReference {
		want = append(want, CheckAccuracy)
	}
	var got []string
	allPassed := true
	for _, c := range ev.Checks {
		got = append(got, c.Name)
		allPassed = allPassed && c.Passed
		if c.Detail == "" {
			t.Errorf("check %s has no detail", c.Name)
		}
		switch c.Name {
		case CheckCount:
			if c.Passed != (c.Value >= c.Limit) {
				t.Errorf("count check: passed %v with value %g, minimum %g", c.Passed, c.Value, c.Limit)
			}
		case CheckRange:
			if c.Passed != (c.Value == 0) || c.Value != float64(ev.Stats.OutOfRange) {
				t.Errorf("range check: passed %v with value %g, %d out of range", c.Passed, c.Value, ev.Stats.OutOfRange)
			}
		case CheckSpike:
			if c.Passed != (ev.Stats.Spikes == 0) {
				t.Errorf("spike check: passed %v with %d spikes", c.Passed, ev.Stats.Spikes)
			}
		case CheckAccuracy:
			if c.Passed && c.Value > c.Limit {
				t.Errorf("accuracy check passed with value %g over limit %g", c.Value, c.Limit)
			}
		default:
			if c.Passed != (c.Value <= c.Limit) {
				t.Errorf("%s check: passed %v with value %g, limit %g", c.Name, c.Passed, c.Value, c.Limit)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("checks %v, want %v", got, want)
	}
	wantVerdict := messages.VerdictFail
	if allPassed {
		wantVerdict = messages.VerdictPass
	}
	if ev.Verdict != wantVerdict {
		t.Errorf("verdict %q with checks %+v", ev.Verdict, ev.Checks)
	}
	if ev.Source != messages.SourceSubmitted {
		t.Errorf("source %q, want %q", ev.Source, messages.SourceSubmitted)
	}
}

func TestEvaluateEveryType(t *testing.T) {
	for _, s := range Catalogue() {
		n := s.SimReadings
		span := s.Max - s.Min
		cases := []struct {
			name       string
			readings   []float64
			reference  *float64
			wantFailed string // "" for a pass
		}{
			{"healthy", seriesHealthy(s, n), nil, ""},
			{"healthy with reference", seriesHealthy(s, n), floatPtr(s.Nominal + 0.5*s.Accuracy), ""},
			{"healthy long series", seriesHealthyDrifting(s, messages.MaxReadings, 0.01), nil, ""},
			// Two readings are enough, but any step between them is a
			// steep drift over a single interval.
			{"two readings", []float64{s.Nominal, s.Nominal}, nil, ""},
			{"above range", seriesConstant(n, s.Max+0.01*span), nil, CheckRange},
			{"below range", seriesConstant(n, s.Min-0.01*span), nil, CheckRange},
			{"spike", seriesSpiky(s), nil, CheckSpike},
			{"noise", seriesNoisy(s, n), nil, CheckNoise},
			{"drift", seriesDrifting(s, n), nil, CheckDrift},
			{"accuracy high", seriesConstant(n, s.Nominal), floatPtr(s.Nominal - 1.5*s.Accuracy), CheckAccuracy},
			{"accuracy low", seriesConstant(n, s.Nominal), floatPtr(s.Nominal + 1.5*s.Accuracy), CheckAccuracy},
			{"one reading", []float64{s.Nominal}, nil, CheckCount},
			{"one reading with reference", []float64{s.Nominal}, floatPtr(s.Nominal), CheckCount},
			{"no readings", nil, nil, CheckCount},
		}
		for _, tc := range cases {
			t.Run(s.Type+"/"+tc.name, func(t *testing.T) {
				ev := Evaluate(s, tc.readings, s.IntervalMS, tc.reference)
				assertEvaluationConsistent(t, ev, len(tc.readings), tc.reference != nil)
				var want []string
				wantVerdict := messages.VerdictPass
				if tc.wantFailed != "" {
					want, wantVerdict = []string{tc.wantFailed}, messages.VerdictFail
				}
				if got := failedChecks(ev); !slices.Equal(got, want) || ev.Verdict != wantVerdict {
					t.Errorf("verdict %s, failed checks %v; want %s, %v\nchecks: %+v\nstats: %+v",
						ev.Verdict, got, wantVerdict, want, ev.Checks, ev.Stats)
				}
				if ev.Unit != s.Unit {
					t.Errorf("unit %q, want %q", ev.Unit, s.Unit)
				}
			})
		}
	}
}

func TestEvaluateStatsByHand(t *testing.T) {
	spec := messages.SensorSpec{Type: "test", Unit: "u", Min: 0, Max: 12.5,
		MaxStep: 1.5, MaxNoise: 1, MaxDrift: 100, Accuracy: 1, IntervalMS: 1000}
	readings := []float64{10, 12, 11, 13}
	ev := Evaluate(spec, readings, 1000, floatPtr(11))

	// mean 11.5; deviations -1.5 .5 -.5 1.5, squares sum to 5, /4 = 1.25.
	// differences 2 -1 2, mean 1, deviations 1 -2 1, squares sum to 6, /3 = 2.
	// slope: x = -1.5 -.5 .5 1.5, Sxy = 2.25-.25-.25+2.25 = 4, Sxx = 5,
	// 0.8 a reading, a reading a second: 48 a minute.
	want := messages.Stats{Count: 4, Min: 10, Max: 13, Mean: 11.5,
		StdDev: math.Sqrt(1.25), Noise: math.Sqrt(2), DriftPerMinute: 48,
		Spikes: 2, OutOfRange: 1}
	got := ev.Stats
	if got.ReferenceError == nil || !approxEqual(*got.ReferenceError, 0.5) {
		t.Errorf("reference_error = %v, want 0.5", got.ReferenceError)
	}
	got.ReferenceError = nil
	if got.Count != want.Count || got.Spikes != want.Spikes || got.OutOfRange != want.OutOfRange ||
		!approxEqual(got.Min, want.Min) || !approxEqual(got.Max, want.Max) || !approxEqual(got.Mean, want.Mean) ||
		!approxEqual(got.StdDev, want.StdDev) || !approxEqual(got.Noise, want.Noise) ||
		!approxEqual(got.DriftPerMinute, want.DriftPerMinute) {
		t.Errorf("stats\n got %+v\nwant %+v", got, want)
	}
	// range (13 > 12.5), spike (two steps of 2) and noise (1.41 > 1) fail;
	// drift 48 <= 100 and accuracy 0.5 <= 1 pass.
	if got, want := failedChecks(ev), []string{CheckRange, CheckSpike, CheckNoise}; !slices.Equal(got, want) {
		t.Errorf("failed checks %v, want %v", got, want)
	}
	if c := ev.Checks[2]; !approxEqual(c.Value, 2) || c.Limit != 1.5 {
		t.Errorf("spike check value %g limit %g, want the largest step 2 and 1.5", c.Value, c.Limit)
	}
	if c := ev.Checks[5]; !approxEqual(c.Value, 0.5) || !c.Passed {
		t.Errorf("accuracy check %+v, want value 0.5, passed", c)
	}
	assertEvaluationConsistent(t, ev, len(readings), true)
}

func approxEqual(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

func TestEvaluateDriftScalesWithInterval(t *testing.T) {
	spec, _ := LookupSpec("temperature")
	r := []float64{20, 20.1, 20.2, 20.3} // 0.1 a reading
	for _, tc := range []struct {
		intervalMS int
		want       float64
	}{
		{1000, 6}, {500, 12}, {60_000, 0.1}, {messages.MaxIntervalMS, 0.1 / 60},
		{0, 6},  // the spec's interval
		{-5, 6}, // likewise
	} {
		got := Evaluate(spec, r, tc.intervalMS, nil).Stats.DriftPerMinute
		if !approxEqual(got, tc.want) {
			t.Errorf("interval %d ms: drift %g/min, want %g", tc.intervalMS, got, tc.want)
		}
	}
	spec.IntervalMS = 0 // no interval anywhere: messages.DefaultIntervalMS
	if got := Evaluate(spec, r, 0, nil).Stats.DriftPerMinute; !approxEqual(got, 6) {
		t.Errorf("no interval: drift %g/min, want 6", got)
	}
}

func TestEvaluateEdgeCases(t *testing.T) {
	spec, _ := LookupSpec("temperature")
	huge := math.MaxFloat64
	cases := []struct {
		name      string
		readings  []float64
		reference *float64
		check     func(t *testing.T, ev Evaluation)
	}{
		{"empty", []float64{}, nil, func(t *testing.T, ev Evaluation) {
			if ev.Stats != (messages.Stats{}) {
				t.Errorf("stats %+v, want zero", ev.Stats)
			}
		}},
		{"empty with reference", nil, floatPtr(20), func(t *testing.T, ev Evaluation) {
			if ev.Stats.ReferenceError != nil || ev.Checks[5].Passed {
				t.Errorf("no readings: reference error %v, accuracy %+v", ev.Stats.ReferenceError, ev.Checks[5])
			}
		}},
		{"single", []float64{21}, nil, func(t *testing.T, ev Evaluation) {
			s := ev.Stats
			if s.Min != 21 || s.Max != 21 || s.Mean != 21 || s.StdDev != 0 || s.Noise != 0 || s.DriftPerMinute != 0 {
				t.Errorf("stats %+v", s)
			}
		}},
		{"constant", seriesConstant(1000, 23.7), floatPtr(23.7), func(t *testing.T, ev Evaluation) {
			s := ev.Stats
			if s.Mean != 23.7 || s.StdDev != 0 || s.Noise != 0 || s.DriftPerMinute != 0 || *s.ReferenceError != 0 {
				t.Errorf("a constant series must have exact stats, got %+v", s)
			}
			if ev.Verdict != messages.VerdictPass {
				t.Errorf("verdict %s", ev.Verdict)
			}
		}},
		{"constant huge", seriesConstant(100, 1e300), nil, func(t *testing.T, ev Evaluation) {
			s := ev.Stats
			if s.Mean != 1e300 || s.StdDev != 0 || s.Noise != 0 || s.OutOfRange != 100 {
				t.Errorf("stats %+v", s)
			}
		}},
		{"huge alternating", []float64{1e300, -1e300, 1e300, -1e300}, nil, func(t *testing.T, ev Evaluation) {
			s := ev.Stats
			if math.Abs(s.Mean) > 1e-14*1e300 || !approxEqual(s.StdDev, 1e300) || s.Spikes != 3 {
				t.Errorf("stats %+v", s)
			}
		}},
		{"extremes", []float64{huge, -huge, huge, -huge, huge}, floatPtr(-huge), func(t *testing.T, ev Evaluation) {
			s := ev.Stats
			// Steps of 2*MaxFloat64 overflow: they must clamp, not vanish.
			if s.Spikes != 4 || s.Noise != huge || ev.Checks[2].Value != huge {
				t.Errorf("stats %+v, spike check %+v", s, ev.Checks[2])
			}
			if *s.ReferenceError != huge {
				t.Errorf("reference error %g, want clamped to MaxFloat64", *s.ReferenceError)
			}
		}},
		{"huge ramp", []float64{-huge, -huge / 2, 0, huge / 2, huge}, nil, func(t *testing.T, ev Evaluation) {
			// The slope is MaxFloat64/2 a reading, times 60 a minute.
			// The mean is 0 to the precision of the values, about 1e292.
			if ev.Stats.DriftPerMinute != huge || math.Abs(ev.Stats.Mean) > 1e-14*huge {
				t.Errorf("stats %+v", ev.Stats)
			}
		}},
		{"tiny and huge", []float64{1e-300, 1e300, 5e-324, -1e300}, nil, nil},
		{"non-finite", []float64{20, math.NaN(), 21, math.Inf(1), 22, math.Inf(-1)}, nil, func(t *testing.T, ev Evaluation) {
			s := ev.Stats
			if s.OutOfRange != 3 || s.Min != 20 || s.Max != 22 || s.Mean != 21 {
				t.Errorf("stats %+v", s)
			}
			// Reading i is at t = i*interval even when a neighbour is
			// dropped: 20, 21, 22 at i = 0, 2, 4 is 0.5 a reading.
			if !approxEqual(s.DriftPerMinute, 30) {
				t.Errorf("drift %g, want 30", s.DriftPerMinute)
			}
			if !strings.Contains(ev.Checks[1].Detail, "3 not finite") {
				t.Errorf("range detail %q", ev.Checks[1].Detail)
			}
		}},
		{"only non-finite", []float64{math.NaN(), math.Inf(1)}, floatPtr(20), func(t *testing.T, ev Evaluation) {
			if ev.Stats.OutOfRange != 2 || ev.Stats.ReferenceError != nil || ev.Verdict != messages.VerdictFail {
				t.Errorf("evaluation %+v", ev)
			}
		}},
		{"NaN reference", []float64{20, 21}, floatPtr(math.NaN()), func(t *testing.T, ev Evaluation) {
			if ev.Stats.ReferenceError != nil || ev.Checks[5].Passed {
				t.Errorf("reference error %v, accuracy %+v", ev.Stats.ReferenceError, ev.Checks[5])
			}
		}},
		{"infinite reference", []float64{20, 21}, floatPtr(math.Inf(-1)), func(t *testing.T, ev Evaluation) {
			if *ev.Stats.ReferenceError != huge || ev.Checks[5].Passed {
				t.Errorf("reference error %v, accuracy %+v", *ev.Stats.ReferenceError, ev.Checks[5])
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := Evaluate(spec, tc.readings, spec.IntervalMS, tc.reference)
			assertEvaluationConsistent(t, ev, len(tc.readings), tc.reference != nil)
			if tc.check != nil {
				tc.check(t, ev)
			}
		})
	}
}

// A spec that is broken (NaN or infinite limits) must fail safe: no panic,
// output that marshals, and no check passed on a limit that means nothing.
func TestEvaluateBrokenSpec(t *testing.T) {
	nan := math.NaN()
	spec := messages.SensorSpec{Type: "broken", Min: nan, Max: nan, MaxStep: nan,
		MaxNoise: nan, MaxDrift: math.Inf(1), Accuracy: nan}
	ev := Evaluate(spec, []float64{1, 2, 3}, 0, floatPtr(2))
	if _, err := json.Marshal(ev); err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if ev.Verdict != messages.VerdictFail {
		t.Errorf("verdict %s", ev.Verdict)
	}
	if got, want := failedChecks(ev), []string{CheckRange, CheckSpike, CheckNoise, CheckAccuracy}; !slices.Equal(got, want) {
		t.Errorf("failed checks %v, want %v", got, want)
	}
}

func TestEvaluateJSONNames(t *testing.T) {
	spec, _ := LookupSpec("humidity")
	data, err := json.Marshal(Evaluate(spec, seriesHealthy(spec, 10), 0, floatPtr(45)))
	if err != nil {
		t.Fatal(err)
	}
	var asRecord messages.TestRecord
	if err := json.Unmarshal(data, &asRecord); err != nil {
		t.Fatal(err)
	}
	if asRecord.Source != messages.SourceSubmitted || asRecord.Unit != "%RH" ||
		asRecord.Verdict != messages.VerdictPass || len(asRecord.Checks) != 6 ||
		asRecord.Stats == nil || asRecord.Stats.Count != 10 || asRecord.Stats.ReferenceError == nil {
		t.Errorf("the evaluation does not decode as a test record: %s", data)
	}
}

func TestEvaluateMaxReadings(t *testing.T) {
	spec, _ := LookupSpec("light")
	r := seriesHealthyDrifting(spec, messages.MaxReadings, 0.01)
	ev := Evaluate(spec, r, spec.IntervalMS, floatPtr(spec.Nominal))
	assertEvaluationConsistent(t, ev, messages.MaxReadings, true)
	if ev.Verdict != messages.VerdictPass {
		t.Errorf("verdict %s, checks %+v", ev.Verdict, ev.Checks)
	}
}

// readingsFromBytes turns fuzz input into readings, eight bytes each, so
// that every float64 bit pattern (NaN, infinities, subnormals) occurs.
func readingsFromBytes(data []byte) []float64 {
	r := make([]float64, 0, len(data)/8)
	for len(data) >= 8 {
		r = append(r, math.Float64frombits(binary.LittleEndian.Uint64(data)))
		data = data[8:]
	}
	return r
}

func bytesFromReadings(r ...float64) []byte {
	b := make([]byte, 0, 8*len(r))
	for _, v := range r {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func FuzzEvaluate(f *testing.F) {
	f.Add([]byte{}, 1000, 0.0, false, uint8(0))
	f.Add(bytesFromReadings(22.5), 1000, 22.5, true, uint8(0))
	f.Add(bytesFromReadings(45, 46, 44, 45.5), 500, 45.0, true, uint8(1))
	f.Add(bytesFromReadings(1e300, -1e300, 1e300), 1, -1e300, true, uint8(2))
	f.Add(bytesFromReadings(math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64), -7, math.MaxFloat64, true, uint8(3))
	f.Add(bytesFromReadings(math.NaN(), math.Inf(1), 3, math.Inf(-1)), 0, math.Inf(1), true, uint8(4))
	f.Add(bytesFromReadings(500, 510, 490, 505, 495), 3_600_000, math.NaN(), true, uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, intervalMS int, ref float64, hasRef bool, typeIndex uint8) {
		specs := Catalogue()
		spec := specs[int(typeIndex)%len(specs)]
		readings := readingsFromBytes(data)
		var reference *float64
		if hasRef {
			reference = &ref
		}
		ev := Evaluate(spec, readings, intervalMS, reference)
		assertEvaluationConsistent(t, ev, len(readings), hasRef)
	})
}

func BenchmarkEvaluate(b *testing.B) {
	spec, _ := LookupSpec("temperature")
	r := seriesHealthyDrifting(spec, messages.MaxReadings, 0.01)
	ref := spec.Nominal
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(spec, r, spec.IntervalMS, &ref)
	}
}

func ExampleEvaluate() {
	spec, _ := LookupSpec("temperature")
	ref := 22.5
	readings := []float64{22.5, 22.4, 22.5, 22.6, 22.5, 22.4, 22.5}
	ev := Evaluate(spec, readings, 1000, &ref)
	fmt.Println(ev.Verdict)
	for _, c := range ev.Checks {
		fmt.Printf("%-8s %-5v %s\n", c.Name, c.Passed, c.Detail)
	}

	readings[3] = 24.1
	fmt.Println(Evaluate(spec, readings, 1000, &ref).Verdict)
	// Output:
	// pass
	// count    true  7 readings
	// range    true  all 7 readings within [-40, 125] °C
	// spike    true  largest step 0.1 °C, limit 1 °C
	// noise    true  stddev of successive differences 0.1 °C, limit 0.15 °C
	// drift    true  drift 0 °C/min, limit ±0.2 °C/min
	// accuracy true  mean 22.4857 °C minus the reference 22.5 °C is -0.0142857 °C, limit ±0.5 °C
	// fail
}
