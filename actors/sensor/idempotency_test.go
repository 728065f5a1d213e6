package sensor

import (
	"testing"

	"github.com/nats-io/nats.go"

	"sensorhub/messages"
)

// A retry under a known key answers what became of the test, and the same
// key with another body is refused with 422 and changes nothing; both
// dialects.
func TestIdempotentRetryAnswersStatusAndRefusesReuse(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.Name, func(t *testing.T) {
			h := newHarness(t)
			st := kind.Open(t)
			h.start(st, nil)
			key := func(k string) nats.Header { return nats.Header{messages.HeaderIdempotencyKey: {k}} }
			ref := 21.5
			body := messages.SubmitTest{SensorType: "temperature", SensorID: "lab-1", Readings: []float64{21.5, 21.6, 21.4}, Reference: &ref}

			first, err := h.submit(tokAlice, body, key("k-1"))
			if err != nil || first.Status != messages.StatusProcessing || first.Duplicate {
				t.Fatalf("first submission: %+v, %v", first, err)
			}
			rec := h.waitDone(tokAlice, first.TestID)
			if rec.Status != messages.StatusCompleted {
				t.Fatalf("test ended %s", rec.Status)
			}
			before := counts(t, st)

			// The same request again (the key in the body this time):
			// the finished test's status, not "processing".
			again := body
			again.IdempotencyKey = "k-1"
			dup, err := h.submit(tokAlice, again, nil)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if dup.TestID != first.TestID || !dup.Duplicate || dup.Status != messages.StatusCompleted {
				t.Fatalf("retry of a completed test answered %+v, want %s, duplicate, completed", dup, first.TestID)
			}

			// The key reused for other readings, another sensor, another
			// type, no reference: 422 each time.
			for name, mutate := range map[string]func(b *messages.SubmitTest){
				"readings":     func(b *messages.SubmitTest) { b.Readings = []float64{21.5, 21.6, 21.5} },
				"sensor id":    func(b *messages.SubmitTest) { b.SensorID = "lab-2" },
				"sensor type":  func(b *messages.SubmitTest) { b.SensorType = "humidity"; b.Readings = []float64{45, 45.1, 45} },
				"no reference": func(b *messages.SubmitTest) { b.Reference = nil },
			} {
				other := body
				mutate(&other)
				_, err := h.submit(tokAlice, other, key("k-1"))
				if e := wantCode(t, err, messages.CodeIdempotencyReused); e.HTTPStatus() != 422 {
					t.Fatalf("%s: status %d, want 422", name, e.HTTPStatus())
				}
			}
			if after := counts(t, st); total(after) != total(before) || after[messages.StatusCompleted] != before[messages.StatusCompleted] {
				t.Fatalf("counts went from %v to %v: a refused reuse changed something", before, after)
			}
			if got, err := h.result(tokAlice, first.TestID); err != nil || got.Status != messages.StatusCompleted || got.SensorID != "lab-1" {
				t.Fatalf("the first test after the reuse: %+v, %v", got, err)
			}
			// Another user's key of the same text is theirs.
			other := body
			other.SensorID = "lab-2"
			if b, err := h.submit(tokBob, other, key("k-1")); err != nil || b.Duplicate {
				t.Fatalf("bob's k-1: %+v, %v", b, err)
			}
		})
	}
}
