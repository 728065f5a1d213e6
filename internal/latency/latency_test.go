package latency

import (
	"sync"
	"testing"
	"time"

	"sensorhub/messages"
)

func TestBuckets(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{250 * time.Microsecond, 0},
		{251 * time.Microsecond, 1},
		{time.Millisecond, 2},
		{3 * time.Millisecond, 4},
		{messages.LatencyBound(messages.LatencyBuckets - 1), messages.LatencyBuckets - 1},
		{time.Hour, messages.LatencyBuckets},
	} {
		if got := bucket(tc.d); got != tc.want {
			t.Errorf("bucket(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// Percentiles of what was observed between two snapshots: what came before
// the first does not count, and each estimate lies in the bucket of the
// true value.
func TestQuantileOfTheDifference(t *testing.T) {
	var h Histogram
	for range 1000 {
		h.Observe(5 * time.Second) // before the window
	}
	before := h.Snapshot()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 250 {
				d := time.Duration(g*250+i+1) * 10 * time.Microsecond // 10 µs .. 10 ms, uniform
				h.Observe(d)
			}
		})
	}
	wg.Wait()
	window := Sub(h.Snapshot(), before)
	if n := Total(window); n != 1000 {
		t.Fatalf("window counts %d, want 1000", n)
	}
	for _, tc := range []struct {
		q    float64
		true time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.9, 9 * time.Millisecond}, {0.99, 9900 * time.Microsecond}} {
		got := Quantile(window, tc.q)
		b := bucket(tc.true)
		lo := time.Duration(0)
		if b > 0 {
			lo = messages.LatencyBound(b - 1)
		}
		if got < lo || got > messages.LatencyBound(b) {
			t.Errorf("p%v = %v, want within (%v, %v] around %v", tc.q*100, got, lo, messages.LatencyBound(b), tc.true)
		}
	}
	if got := Quantile(messages.LatencyCounts{}, 0.99); got != 0 {
		t.Errorf("quantile of nothing = %v", got)
	}
	// A process that restarted counts from zero: nothing negative.
	if n := Total(Sub(before, h.Snapshot())); n != 0 {
		t.Errorf("a counter going down gave %d", n)
	}
	if n := Total(Add(window, window)); n != 2000 {
		t.Errorf("Add: %d", n)
	}
}
