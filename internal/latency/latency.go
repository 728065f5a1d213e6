// Package latency keeps cheap latency histograms (one atomic add per
// observation, fixed buckets of messages.LatencyCounts) and reads
// percentiles back from the difference of two snapshots, so that a reader
// far away (the dashboard, over NATS) sees the latencies of the last
// minutes without the process keeping any window. It must not allocate or
// lock on Observe.
package latency

import (
	"sync/atomic"
	"time"

	"sensorhub/messages"
)

// Histogram counts durations by bucket. The zero value is ready and safe
// for concurrent use.
type Histogram struct {
	counts [messages.LatencyBuckets + 1]atomic.Uint64
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) { h.counts[bucket(d)].Add(1) }

func bucket(d time.Duration) int {
	for i := range messages.LatencyBuckets {
		if d <= messages.LatencyBound(i) {
			return i
		}
	}
	return messages.LatencyBuckets
}

// Snapshot reads the counts.
func (h *Histogram) Snapshot() messages.LatencyCounts {
	out := messages.LatencyCounts{Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
	}
	return out
}

// Sub is a minus b, bucket by bucket (what was counted between the two
// snapshots); a bucket that went down (a process restarted) counts 0.
func Sub(a, b messages.LatencyCounts) messages.LatencyCounts {
	out := messages.LatencyCounts{Counts: make([]uint64, messages.LatencyBuckets+1)}
	for i := range out.Counts {
		var x, y uint64
		if i < len(a.Counts) {
			x = a.Counts[i]
		}
		if i < len(b.Counts) {
			y = b.Counts[i]
		}
		if x > y {
			out.Counts[i] = x - y
		}
	}
	return out
}

// Add is a plus b, bucket by bucket.
func Add(a, b messages.LatencyCounts) messages.LatencyCounts {
	out := messages.LatencyCounts{Counts: make([]uint64, messages.LatencyBuckets+1)}
	for i := range out.Counts {
		if i < len(a.Counts) {
			out.Counts[i] += a.Counts[i]
		}
		if i < len(b.Counts) {
			out.Counts[i] += b.Counts[i]
		}
	}
	return out
}

// Total is how many durations c counts.
func Total(c messages.LatencyCounts) uint64 {
	var n uint64
	for _, v := range c.Counts {
		n += v
	}
	return n
}

// Quantile estimates the q-quantile (0 < q <= 1) of c, interpolating
// linearly inside the bucket it falls in; a quantile in the last,
// unbounded bucket is reported as the last bound. It is 0 for no counts.
func Quantile(c messages.LatencyCounts, q float64) time.Duration {
	total := Total(c)
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, v := range c.Counts {
		if v == 0 {
			continue
		}
		if seen+float64(v) >= rank {
			if i >= messages.LatencyBuckets {
				return messages.LatencyBound(messages.LatencyBuckets - 1)
			}
			lo := time.Duration(0)
			if i > 0 {
				lo = messages.LatencyBound(i - 1)
			}
			hi := messages.LatencyBound(i)
			frac := (rank - seen) / float64(v)
			return lo + time.Duration(frac*float64(hi-lo))
		}
		seen += float64(v)
	}
	return messages.LatencyBound(messages.LatencyBuckets - 1)
}
