package drill

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The verdict fails on any loss or surprise, and says which.
func TestVerdict(t *testing.T) {
	ok := Report{Accepted: []string{"a", "b"}, Completed: 2, EventsWritten: 2}
	for _, tc := range []struct {
		name string
		edit func(*Report)
		want string // in the FAIL line; "" for PASS
	}{
		{"all done", func(*Report) {}, ""},
		{"a duplicate record in Kafka is no loss", func(r *Report) { r.EventsWritten = 3 }, ""},
		{"a test not completed", func(r *Report) { r.Completed = 1; r.EventsWritten = 1 }, "1 accepted tests not completed"},
		{"events still queued", func(r *Report) { r.Queued = 4 }, "4 events still queued"},
		{"events still in the outbox", func(r *Report) { r.OutboxBacklog = 1 }, "1 still in the outbox"},
		{"an event missing in Kafka", func(r *Report) { r.EventsWritten = 1 }, "Kafka gained 1 records for 2 completed tests"},
		{"a surprise", func(r *Report) { r.Surprises = []string{"login 200 with auth stopped"} }, "1 unexpected answers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d := &run{cfg: Config{Out: &out}, rep: ok}
			d.rep.Accepted = append([]string(nil), ok.Accepted...)
			tc.edit(&d.rep)
			err := d.verdict()
			if tc.want == "" {
				if err != nil || !d.rep.Pass || !strings.Contains(out.String(), "verdict: PASS") {
					t.Fatalf("verdict: %v, pass %v, %q", err, d.rep.Pass, out.String())
				}
				return
			}
			if !errors.Is(err, ErrFailed) || d.rep.Pass || !strings.Contains(out.String(), "verdict: FAIL") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("verdict: %v, pass %v, %q; want FAIL with %q", err, d.rep.Pass, out.String(), tc.want)
			}
		})
	}
}
