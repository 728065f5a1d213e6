package acceptance

import (
	"testing"

	"sensorhub/messages"
)

func TestCatalogueTypes(t *testing.T) {
	specs := Catalogue()
	if len(specs) < 6 {
		t.Fatalf("catalogue has %d types, want at least 6", len(specs))
	}
	want := map[string]bool{"temperature": false, "humidity": false, "pressure": false,
		"co2": false, "vibration": false, "light": false}
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Type] {
			t.Errorf("type %q listed twice", s.Type)
		}
		seen[s.Type] = true
		if _, ok := want[s.Type]; ok {
			want[s.Type] = true
		}
		if !messages.ValidSensorType(s.Type) {
			t.Errorf("type %q is not a valid sensor type", s.Type)
		}
	}
	for typ, found := range want {
		if !found {
			t.Errorf("type %q missing from the catalogue", typ)
		}
	}
}

func TestCatalogueLimitsAreSane(t *testing.T) {
	for _, s := range Catalogue() {
		t.Run(s.Type, func(t *testing.T) {
			if s.Unit == "" || s.Description == "" {
				t.Errorf("unit %q, description %q: both are required", s.Unit, s.Description)
			}
			if !(s.Min < s.Max) {
				t.Errorf("range [%g, %g] is empty", s.Min, s.Max)
			}
			for name, v := range map[string]float64{"max_step": s.MaxStep, "max_noise": s.MaxNoise,
				"max_drift": s.MaxDrift, "accuracy": s.Accuracy} {
				if !(v > 0) || !isFinite(v) {
					t.Errorf("%s = %g, want a positive finite limit", name, v)
				}
			}
			// Noise must not look like spikes, and a step the size of the
			// whole range would make the spike check meaningless.
			if !(s.MaxNoise < s.MaxStep && s.MaxStep < s.Max-s.Min) {
				t.Errorf("want max_noise %g < max_step %g < span %g", s.MaxNoise, s.MaxStep, s.Max-s.Min)
			}
			if s.Nominal-s.Accuracy < s.Min || s.Nominal+s.Accuracy > s.Max {
				t.Errorf("nominal %g ± accuracy %g leaves [%g, %g]", s.Nominal, s.Accuracy, s.Min, s.Max)
			}
			if s.IntervalMS < messages.MinIntervalMS || s.IntervalMS > messages.MaxIntervalMS {
				t.Errorf("interval_ms %d outside [%d, %d]", s.IntervalMS, messages.MinIntervalMS, messages.MaxIntervalMS)
			}
			if s.SimReadings < MinEvaluableReadings || s.SimReadings > messages.MaxReadings {
				t.Errorf("sim_readings %d outside [%d, %d]", s.SimReadings, MinEvaluableReadings, messages.MaxReadings)
			}
		})
	}
}

func TestCatalogueReturnsACopy(t *testing.T) {
	first := Catalogue()
	orig := first[0]
	first[0].Type = "mutated"
	first[0].Max = -1
	if got := Catalogue()[0]; got != orig {
		t.Fatalf("changing the returned slice changed the catalogue: %+v", got)
	}
	if a, b := Catalogue(), Catalogue(); &a[0] == &b[0] {
		t.Fatal("two calls share one backing array")
	}
}

func TestCatalogueOrderIsStable(t *testing.T) {
	a, b := Catalogue(), Catalogue()
	for i := range a {
		if a[i].Type != b[i].Type {
			t.Fatalf("position %d: %q then %q", i, a[i].Type, b[i].Type)
		}
	}
}

func TestLookupSpec(t *testing.T) {
	for _, s := range Catalogue() {
		got, ok := LookupSpec(s.Type)
		if !ok || got != s {
			t.Errorf("LookupSpec(%q) = %+v, %v; want the catalogue entry", s.Type, got, ok)
		}
	}
	for _, typ := range []string{"", "Temperature", "temperature ", "unknown", "co2.x"} {
		if got, ok := LookupSpec(typ); ok || got != (messages.SensorSpec{}) {
			t.Errorf("LookupSpec(%q) = %+v, %v; want zero, false", typ, got, ok)
		}
	}
}
