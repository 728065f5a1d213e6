package acceptance

import (
	"fmt"
	"slices"
	"testing"

	"sensorhub/messages"
)

// simIDs are test ids shaped like the UUIDv7 the intake hands out: they
// share a prefix and differ in a few characters, the hard case for seeding.
func simIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("01920f4e-7c2a-7d31-9e5b-%012x", i)
	}
	return ids
}

func TestSimulateIsDeterministic(t *testing.T) {
	for _, s := range Catalogue() {
		for _, id := range simIDs(20) {
			a, ia := Simulate(s, id)
			b, ib := Simulate(s, id)
			if !slices.Equal(a, b) || ia != ib {
				t.Fatalf("%s/%s: two runs differ", s.Type, id)
			}
		}
	}
}

func TestSimulateDiffersByID(t *testing.T) {
	for _, s := range Catalogue() {
		seen := map[string]string{}
		for _, id := range simIDs(200) {
			r, _ := Simulate(s, id)
			key := fmt.Sprint(r)
			if other, dup := seen[key]; dup {
				t.Fatalf("%s: ids %s and %s got the same readings", s.Type, other, id)
			}
			seen[key] = id
		}
	}
}

func TestSimulateSeriesArePlausible(t *testing.T) {
	for _, s := range Catalogue() {
		t.Run(s.Type, func(t *testing.T) {
			// Faults go beyond the range, but no further than a real
			// saturating sensor would: a quarter of the span.
			margin := 0.25 * (s.Max - s.Min)
			for _, id := range simIDs(1000) {
				r, interval := Simulate(s, id)
				if len(r) != s.SimReadings || interval != s.IntervalMS {
					t.Fatalf("%s: %d readings every %d ms, want %d every %d", id, len(r), interval, s.SimReadings, s.IntervalMS)
				}
				for i, v := range r {
					if !isFinite(v) || v < s.Min-margin || v > s.Max+margin {
						t.Fatalf("%s: reading %d = %g, outside [%g, %g]", id, i, v, s.Min-margin, s.Max+margin)
					}
				}
			}
		})
	}
}

// TestSimulateVerdicts runs the simulator through Evaluate: a healthy
// acquisition always passes, every fault fails on the check it aims at,
// and the share of failures stays near simFaultShare.
func TestSimulateVerdicts(t *testing.T) {
	wantFailing := map[simFault]string{
		simFaultSpike:      CheckSpike,
		simFaultOutOfRange: CheckRange,
		simFaultNoise:      CheckNoise,
		simFaultDrift:      CheckDrift,
	}
	const n = 1000
	for _, s := range Catalogue() {
		t.Run(s.Type, func(t *testing.T) {
			fails := 0
			kinds := map[simFault]int{}
			for _, id := range simIDs(n) {
				r, interval, fault := simulateAcquisition(s, id)
				kinds[fault]++
				ev := Evaluate(s, r, interval, nil)
				failed := failedChecks(ev)
				if ev.Verdict == messages.VerdictFail {
					fails++
				}
				switch {
				case fault == simFaultNone && ev.Verdict != messages.VerdictPass:
					t.Errorf("%s: healthy acquisition failed %v\nstats %+v", id, failed, ev.Stats)
				case fault != simFaultNone && !slices.Contains(failed, wantFailing[fault]):
					t.Errorf("%s: %s fault, but failed checks %v\nstats %+v", id, fault, failed, ev.Stats)
				}
			}
			for f := simFaultNone; f < simFaultKinds; f++ {
				if kinds[f] == 0 {
					t.Errorf("fault %s never simulated in %d ids", f, n)
				}
			}
			t.Logf("%d of %d fail; faults %v", fails, n, kinds)
			if share := float64(fails) / n; share < 0.10 || share > 0.30 {
				t.Errorf("%d of %d simulated tests fail (%.0f%%), want 10%% to 30%%", fails, n, 100*share)
			}
		})
	}
}

// A spec that does not say how to simulate gets the defaults rather than
// an empty or unbounded series.
func TestSimulateDefaults(t *testing.T) {
	spec, _ := LookupSpec("temperature")
	for _, tc := range []struct {
		interval, readings    int
		wantInterval, wantLen int
	}{
		{0, 0, messages.DefaultIntervalMS, defaultSimReadings},
		{-1, 1, messages.DefaultIntervalMS, defaultSimReadings},
		{messages.MaxIntervalMS + 1, messages.MaxReadings + 1, messages.DefaultIntervalMS, messages.MaxReadings},
		{250, 2, 250, 2},
		{250, 3, 250, 3},
	} {
		spec.IntervalMS, spec.SimReadings = tc.interval, tc.readings
		for _, id := range simIDs(50) {
			r, interval := Simulate(spec, id)
			if len(r) != tc.wantLen || interval != tc.wantInterval {
				t.Fatalf("spec interval %d, readings %d: got %d readings every %d ms, want %d every %d",
					tc.interval, tc.readings, len(r), interval, tc.wantLen, tc.wantInterval)
			}
		}
	}
}

func TestQuantize(t *testing.T) {
	for _, tc := range []struct {
		in, maxNoise, want float64
	}{
		{22.4712, 0.15, 22.47},
		{1013.2549, 0.12, 1013.25},
		{651.6, 25, 652},
		{512.4, 15, 512},
		{-0.004, 0.3, -0},
		{1234.5, 500, 1230},
	} {
		r := []float64{tc.in}
		quantize(r, tc.maxNoise)
		if r[0] != tc.want {
			t.Errorf("quantize(%g, noise %g) = %v, want %v", tc.in, tc.maxNoise, r[0], tc.want)
		}
	}
}
