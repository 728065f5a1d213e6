package edge

import (
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the adaptive submission limit (Config.QueueTarget and
// Config.QueueInterval).
const (
	// DefaultQueueTarget is the latency a submission may wait at the edge
	// before the edge takes it for a standing queue: well above what a
	// submission takes through an idle sensor role (a few milliseconds),
	// well below what a client would call slow.
	DefaultQueueTarget = 20 * time.Millisecond
	// DefaultQueueInterval is how long a queue must last before the limit
	// answers it: a burst that arrives within it passes whole, and the
	// limit moves at most once per interval.
	DefaultQueueInterval = 100 * time.Millisecond
	// submitLimitFloor is the lowest the adaptive limit goes: enough
	// submissions in flight to keep the sensor role's pipeline busy
	// whatever one bad interval measured.
	submitLimitFloor = 32
)

// noSample is the interval minimum before any submission was answered in it.
const noSample = math.MaxInt64

// submitLimiter is the adaptive bound on the submissions in flight, in the
// spirit of CoDel: what tells a standing queue from a burst is the least
// latency of the submissions answered in an interval. A standing queue
// makes every submission wait, so even the fastest of an interval is slow,
// interval after interval; one slow request, or a pause of the whole
// process shorter than the interval, leaves the minimum low. A burst on an
// idle edge is admitted under the whole limit and its first answers are
// fast; by the time its tail is answered late it is in, and once it has
// drained nothing is in flight and the limit is whole again.
//
// At the end of each interval (rolled over lazily, by the first admission
// or answer after it: no goroutine, no timer):
//
//   - nothing in flight: there is no queue, whatever was seen before, and
//     the limit goes back to max (so a burst on an idle edge passes whole);
//   - the minimum above target: the limit moves halfway towards the
//     concurrency that would give the target at the throughput of now
//     (Little's law: in flight * target / minimum), so it at most halves
//     in one interval, and never below the floor;
//   - the minimum at or below target: it grows by a tenth, up to max;
//   - nothing answered while some are in flight: no evidence, no change.
//
// The hot path is atomics only; the mutex is taken, with TryLock, by the
// one request that rolls an interval over.
type submitLimiter struct {
	target, interval int64 // ns; target 0: the limit stays at max
	max, floor       int64
	clock            func() time.Time
	epoch            time.Time // the clock's zero for start

	limit    atomic.Int64
	inFlight atomic.Int64
	refused  atomic.Int64
	lastMin  atomic.Int64 // the minimum of the last interval judged, ns (0: none yet)

	start atomic.Int64 // the current interval's start, ns since epoch
	min   atomic.Int64 // the least latency answered in it, ns (noSample: none yet)
	mu    sync.Mutex   // held by the request that rolls the interval over
}

func newSubmitLimiter(target, interval time.Duration, maxConcurrent int, clock func() time.Time) *submitLimiter {
	l := &submitLimiter{
		target:   int64(target),
		interval: int64(interval),
		max:      int64(maxConcurrent),
		floor:    min(submitLimitFloor, int64(maxConcurrent)),
		clock:    clock,
		epoch:    clock(),
	}
	l.limit.Store(l.max)
	l.min.Store(noSample)
	return l
}

func (l *submitLimiter) adaptive() bool { return l.target > 0 }

// now is the clock in ns since the limiter was made (monotonic with
// time.Now).
func (l *submitLimiter) now() int64 { return int64(l.clock().Sub(l.epoch)) }

// acquire takes a slot for one submission, or counts a refusal and
// reports false. The admission time it returns is observe's.
func (l *submitLimiter) acquire() (admitted int64, ok bool) {
	if l.adaptive() {
		admitted = l.now()
		// Before counting itself, so that an idle edge shows nothing in
		// flight.
		l.roll(admitted)
	}
	if l.inFlight.Add(1) > l.limit.Load() {
		l.inFlight.Add(-1)
		l.refused.Add(1)
		return 0, false
	}
	return admitted, true
}

// release gives back the slot of acquire.
func (l *submitLimiter) release() { l.inFlight.Add(-1) }

// observe records the latency of a submission admitted at admitted and
// answered now, in the interval it is answered in.
func (l *submitLimiter) observe(admitted int64) {
	if !l.adaptive() {
		return
	}
	now := l.now()
	l.roll(now)
	lat := max(now-admitted, 0)
	for {
		cur := l.min.Load()
		if lat >= cur || l.min.CompareAndSwap(cur, lat) {
			return
		}
	}
}

// roll ends the current interval when it has lasted its length, judging
// it (see submitLimiter). Only one caller does; the others go on at once.
func (l *submitLimiter) roll(now int64) {
	start := l.start.Load()
	if now-start < l.interval || !l.mu.TryLock() {
		return
	}
	defer l.mu.Unlock()
	if l.start.Load() != start {
		return // rolled over since we looked
	}
	// A latency recorded after the swap counts in the next interval.
	minLat := l.min.Swap(noSample)
	l.start.Store(now)
	if minLat != noSample {
		l.lastMin.Store(minLat)
	}
	l.limit.Store(l.next(l.limit.Load(), l.inFlight.Load(), minLat))
}

// next is the limit after an interval whose least latency was minLat, with
// inFlight submissions in flight at its end.
func (l *submitLimiter) next(limit, inFlight, minLat int64) int64 {
	switch {
	case inFlight <= 0:
		return l.max
	case minLat == noSample:
		return limit
	case minLat > l.target:
		// In floats: in flight * target overflows no int64 this way, and
		// the ratio keeps its fraction.
		want := int64(float64(inFlight) * float64(l.target) / float64(minLat))
		return max(min((limit+want)/2, limit), l.floor)
	default:
		return min(limit+max(limit/10, 1), l.max)
	}
}

// Admission is the adaptive submission limit's state of the moment: the
// limit, the submissions in flight under it, those refused past it since
// the edge started, the least latency of the last interval judged, and the
// target (0: the limit stays at MaxConcurrent).
type Admission struct {
	Limit, InFlight, Refused int64
	MinLatency, Target       time.Duration
}

func (l *submitLimiter) snapshot() Admission {
	return Admission{
		Limit:      l.limit.Load(),
		InFlight:   l.inFlight.Load(),
		Refused:    l.refused.Load(),
		MinLatency: time.Duration(l.lastMin.Load()),
		Target:     time.Duration(l.target),
	}
}

// Admission is the state of the adaptive submission limit (for the metrics).
func (s *Server) Admission() Admission { return s.submits.snapshot() }

// limitSubmit is limit for submissions, with the adaptive bound inside the
// hard one: a submission past either is refused the same way, at once,
// before its body is read or anything is sent. next gets the admission
// time, for observe once the sensor role has answered.
func (s *Server) limitSubmit(next func(w http.ResponseWriter, r *http.Request, admitted int64)) http.HandlerFunc {
	return s.limit(func(w http.ResponseWriter, r *http.Request) {
		admitted, ok := s.submits.acquire()
		if !ok {
			writeOverloaded(w)
			return
		}
		defer s.submits.release()
		next(w, r, admitted)
	})
}
