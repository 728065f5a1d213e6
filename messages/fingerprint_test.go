package messages

import "testing"

func TestFingerprint(t *testing.T) {
	ref := func(v float64) *float64 { return &v }
	decode := func(body string) SubmitTest {
		t.Helper()
		r, err := DecodeSubmitTest([]byte(body), "temperature")
		if err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		return r
	}
	base := decode(`{"sensor_id":"lab-7","readings":[21.5,21.6],"interval_ms":500,"reference":21.5}`)
	fp := base.Fingerprint()
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q is not hex SHA-256", fp)
	}

	same := map[string]SubmitTest{
		"another spelling": decode(`{ "reference" : 21.50, "interval_ms":500, "readings":[2.15e1, 21.6], "sensor_id":"lab-7" }`),
		"another key":      decode(`{"sensor_id":"lab-7","readings":[21.5,21.6],"interval_ms":500,"reference":21.5,"idempotency_key":"k2"}`),
		"a token":          decode(`{"sensor_id":"lab-7","readings":[21.5,21.6],"interval_ms":500,"reference":21.5,"token":"t"}`),
	}
	for name, r := range same {
		if got := r.Fingerprint(); got != fp {
			t.Errorf("%s: fingerprint differs", name)
		}
	}
	differ := map[string]func(r *SubmitTest){
		"sensor type":       func(r *SubmitTest) { r.SensorType = "humidity" },
		"sensor id":         func(r *SubmitTest) { r.SensorID = "lab-8" },
		"a reading":         func(r *SubmitTest) { r.Readings = []float64{21.5, 21.7} },
		"order of readings": func(r *SubmitTest) { r.Readings = []float64{21.6, 21.5} },
		"one reading more":  func(r *SubmitTest) { r.Readings = append(r.Readings, 0) },
		"no readings":       func(r *SubmitTest) { r.Readings = nil },
		"interval":          func(r *SubmitTest) { r.IntervalMS = 501 },
		"reference":         func(r *SubmitTest) { r.Reference = ref(21.4) },
		"no reference":      func(r *SubmitTest) { r.Reference = nil },
		// Length prefixes: moving bytes between fields is another request.
		"id and type shifted": func(r *SubmitTest) { r.SensorType, r.SensorID = "temperaturel", "ab-7" },
	}
	for name, mutate := range differ {
		r := base
		r.Readings = append([]float64(nil), base.Readings...)
		mutate(&r)
		if r.Fingerprint() == fp {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	zero, negZero := decode(`{"readings":[0]}`), decode(`{"readings":[-0]}`)
	if zero.Fingerprint() != negZero.Fingerprint() {
		t.Error("-0 and 0 differ")
	}
	if zero.Fingerprint() == decode(`{}`).Fingerprint() {
		t.Error("a reading of 0 and no readings are one fingerprint")
	}
}

// BenchmarkFingerprint hashes the largest submission (10,000 readings).
func BenchmarkFingerprint(b *testing.B) {
	r := SubmitTest{SensorType: "temperature", SensorID: "lab-7", IntervalMS: 1000, Readings: make([]float64, MaxReadings)}
	for i := range r.Readings {
		r.Readings[i] = 20 + float64(i%100)/100
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Fingerprint()
	}
}
