package edge

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is the limiter's clock in these tests: time moves only when
// the test says so.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	reads atomic.Int64
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.reads.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	testTarget   = 20 * time.Millisecond
	testInterval = 100 * time.Millisecond
	testMax      = 2048
)

// sim is a sensor role behind the limiter, one millisecond at a time: a
// submission is answered once its service time has passed since its
// admission, the oldest first, at most rate a millisecond (0: no bound).
// With a bound below the offered rate it builds the standing queue the
// limiter is for.
type sim struct {
	l       *submitLimiter
	clk     *fakeClock
	rate    int
	ns      int64        // the time, as the limiter counts it: the clock moves with it
	pending []simRequest // admission order
	// What happened since reset: submissions admitted, refused and
	// answered, and the answers' greatest latency.
	admitted, refused, answered int
	maxLatency                  time.Duration
}

type simRequest struct {
	admitted int64 // acquire's (0 with the limit off)
	at       int64 // sim.ns of the admission
	service  time.Duration
}

func newSim(target time.Duration, rate int) *sim {
	clk := newFakeClock()
	return &sim{l: newSubmitLimiter(target, testInterval, testMax, clk.now), clk: clk, rate: rate}
}

func (s *sim) reset() { s.admitted, s.refused, s.answered, s.maxLatency = 0, 0, 0, 0 }

// arrive offers n submissions that each take service once admitted.
func (s *sim) arrive(n int, service time.Duration) {
	for range n {
		at, ok := s.l.acquire()
		if !ok {
			s.refused++
			continue
		}
		s.admitted++
		s.pending = append(s.pending, simRequest{admitted: at, at: s.ns, service: service})
	}
}

// advance moves time on by d, answering nothing.
func (s *sim) advance(d time.Duration) {
	s.clk.advance(d)
	s.ns += int64(d)
}

// tick moves time on by a millisecond and answers what is due.
func (s *sim) tick() {
	s.advance(time.Millisecond)
	kept := s.pending[:0]
	done := 0
	for _, r := range s.pending {
		wait := time.Duration(s.ns - r.at)
		if wait < r.service || s.rate > 0 && done >= s.rate {
			kept = append(kept, r)
			continue
		}
		done++
		s.l.observe(r.admitted)
		s.l.release()
		s.answered++
		s.maxLatency = max(s.maxLatency, wait)
	}
	s.pending = kept
}

// run offers perMS submissions (each taking service) every millisecond
// for d.
func (s *sim) run(d time.Duration, perMS int, service time.Duration) {
	for range int(d / time.Millisecond) {
		s.arrive(perMS, service)
		s.tick()
	}
}

// The sensor role's capacity in the simulations: 4 answers a millisecond
// (4,000/s), each at least 5 ms after admission.
const (
	simRate    = 4
	simService = 5 * time.Millisecond
)

// Offered two and three times what the sensor role can answer, the limit
// comes down to about what Little's law says gives the target, and holds
// there: the sensor role stays busy (at least 90% of its capacity is
// accepted) and the accepted submissions wait about the target, not the
// queue of MaxConcurrent. Once the overload is gone, the limit climbs back
// to MaxConcurrent and nothing more is refused.
func TestSubmitLimitFollowsAStandingQueue(t *testing.T) {
	for _, overload := range []int{2, 3} {
		s := newSim(testTarget, simRate)
		s.run(time.Second, overload*simRate, simService) // the limit comes down
		if s.refused == 0 {
			t.Fatalf("%dx: nothing refused in the first second (limit %d)", overload, s.l.limit.Load())
		}
		s.reset()
		const window = 2 * time.Second
		s.run(window, overload*simRate, simService)
		capacity := simRate * int(window/time.Millisecond)
		if s.answered < capacity*9/10 {
			t.Errorf("%dx: %d answered in %v, want at least 90%% of the %d the sensor role can answer", overload, s.answered, window, capacity)
		}
		if s.maxLatency > 3*testTarget {
			t.Errorf("%dx: an accepted submission waited %v, want at most %v (target %v)", overload, s.maxLatency, 3*testTarget, testTarget)
		}
		// Little's law: the sensor role's rate times the target, give or
		// take the steps of the control.
		if lim := s.l.limit.Load(); lim < submitLimitFloor || lim > 4*simRate*testTarget.Milliseconds() {
			t.Errorf("%dx: limit %d, want about %d", overload, lim, simRate*testTarget.Milliseconds())
		}
		if got := s.l.refused.Load(); got == 0 {
			t.Errorf("%dx: refusals not counted", overload)
		}

		// Half the capacity: the queue drains, the limit climbs back.
		s.run(200*time.Millisecond, simRate/2, simService)
		s.reset()
		s.run(5*time.Second, simRate/2, simService)
		if s.refused != 0 {
			t.Errorf("%dx, then half the capacity: %d refused once the queue had drained", overload, s.refused)
		}
		if lim := s.l.limit.Load(); lim != testMax {
			t.Errorf("%dx, then half the capacity for 5s: limit %d, want back at %d", overload, lim, testMax)
		}
	}
}

// The same overload without the adaptive limit (target 0) queues up to
// MaxConcurrent and waits half a second: what the limit is for, and proof
// that the simulation above can fail. The limit never moves, and the
// limiter never reads the clock.
func TestSubmitLimitOffIsOnlyMaxConcurrent(t *testing.T) {
	s := newSim(0, simRate)
	reads := s.clk.reads.Load()
	s.run(3*time.Second, 2*simRate, simService)
	if lim := s.l.limit.Load(); lim != testMax {
		t.Fatalf("limit %d with the adaptive limit off, want %d", lim, testMax)
	}
	if s.maxLatency < 10*testTarget {
		t.Fatalf("greatest wait %v: the simulated overload built no standing queue", s.maxLatency)
	}
	if got := s.clk.reads.Load() - reads; got != 0 {
		t.Fatalf("clock read %d times with the adaptive limit off, want never", got)
	}
}

// A burst on an idle edge passes whole: 1,000 or 1,500 submissions at once
// (or within less than an interval), even though the last of them wait
// far past the target, and again after a pause; the minimum of the first
// interval is low, and an edge with nothing in flight has no queue.
func TestSubmitLimitPassesABurst(t *testing.T) {
	for _, c := range []struct {
		name   string
		n      int           // submissions in the burst
		spread time.Duration // over which they arrive
	}{
		{"1000 at once", 1000, 0},
		{"1500 at once", 1500, 0},
		{"1000 over 80ms", 1000, 80 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(testTarget, 2*simRate)
			for round := range 3 {
				s.reset()
				if c.spread == 0 {
					s.arrive(c.n, simService)
				} else {
					ms := int(c.spread / time.Millisecond)
					for i := range ms {
						s.arrive(c.n*(i+1)/ms-c.n*i/ms, simService)
						s.tick()
					}
				}
				for len(s.pending) > 0 {
					s.tick()
				}
				if s.refused != 0 || s.answered != c.n {
					t.Fatalf("burst %d: %d refused, %d of %d answered (limit %d)", round+1, s.refused, s.answered, c.n, s.l.limit.Load())
				}
				if s.maxLatency <= testTarget {
					t.Fatalf("burst %d: greatest wait %v; the burst should wait past the target", round+1, s.maxLatency)
				}
				// A pause shorter than an interval, then the next burst.
				s.advance(testInterval / 2)
			}
		})
	}
}

// While some submissions are answered fast, many slow ones (a slow sensor
// type, retries) do not lower the limit: the minimum, not the mean or a
// percentile, tells a queue.
func TestSubmitLimitIgnoresSlowRequestsWhileSomeAreFast(t *testing.T) {
	s := newSim(testTarget, 0)
	for range 3000 { // 3 s: 30 intervals, 1,200 slow submissions in flight
		s.arrive(4, 300*time.Millisecond)
		s.arrive(1, 2*time.Millisecond)
		s.tick()
	}
	if lim := s.l.limit.Load(); lim != testMax || s.refused != 0 {
		t.Fatalf("limit %d, %d refused with four slow submissions to a fast one; want %d, none", lim, s.refused, testMax)
	}
	if got := s.l.snapshot().MinLatency; got != 2*time.Millisecond {
		t.Fatalf("last interval's minimum %v, want 2ms", got)
	}
}

// Below capacity (75% of it), a stall of the whole process every second
// (a GC pause, the machine busy elsewhere) makes the submissions behind it
// wait past the target for an interval or two; the limit dips, but never
// to where a submission is refused.
func TestSubmitLimitRidesOutPauses(t *testing.T) {
	for _, stall := range []int{50, 80} { // ms
		s := newSim(testTarget, simRate)
		lowest := int64(testMax)
		for range 5 {
			for range 1000 - stall {
				s.arrive(3, simService)
				s.tick()
				lowest = min(lowest, s.l.limit.Load())
			}
			for range stall { // submissions arrive, none is answered
				s.arrive(3, simService)
				s.advance(time.Millisecond)
			}
		}
		s.run(time.Second, 3, simService)
		if s.refused != 0 {
			t.Errorf("%dms stalls: %d refused below capacity (lowest limit %d)", stall, s.refused, lowest)
		}
		if lowest == testMax {
			t.Errorf("%dms stalls never lowered the limit: the simulation does not test what it says", stall)
		}
	}
}

// The rule of one interval's end, on its own.
func TestSubmitLimitNext(t *testing.T) {
	l := newSubmitLimiter(testTarget, testInterval, testMax, newFakeClock().now)
	ms := func(n float64) int64 { return int64(n * float64(time.Millisecond)) }
	for _, c := range []struct {
		name                    string
		limit, inFlight, minLat int64
		want                    int64
	}{
		{"nothing in flight: no queue", 40, 0, ms(500), testMax},
		{"nothing answered, some in flight: no change", 400, 400, noSample, 400},
		{"over target: halfway to Little's law", 1000, 1000, ms(100), (1000 + 200) / 2},
		{"far over target: at most halved", 2048, 2048, ms(2000), (2048 + 20) / 2},
		{"over target: never below the floor", 40, 40, ms(1000), submitLimitFloor},
		{"over target, more in flight than the limit: no rise", 100, 200, ms(25), 100},
		{"at target: a tenth more", 100, 100, ms(20), 110},
		{"under target: a tenth more", 1000, 10, ms(1), 1100},
		{"under target: at most max", 2000, 10, ms(1), testMax},
		{"under target: at least one more", 5, 5, ms(1), 6},
	} {
		if got := l.next(c.limit, c.inFlight, c.minLat); got != c.want {
			t.Errorf("%s: next(%d, %d, %v) = %d, want %d", c.name, c.limit, c.inFlight, time.Duration(c.minLat), got, c.want)
		}
	}
	small := newSubmitLimiter(testTarget, testInterval, 8, newFakeClock().now)
	if got := small.next(8, 8, ms(1000)); got != 8 {
		t.Errorf("with max 8 the floor is 8: got %d", got)
	}
}

// The limit moves at most once per interval, however many submissions are
// answered or admitted in it, and only after it has ended.
func TestSubmitLimitMovesOncePerInterval(t *testing.T) {
	clk := newFakeClock()
	l := newSubmitLimiter(testTarget, testInterval, testMax, clk.now)
	var admitted []int64
	for range 1000 {
		at, ok := l.acquire()
		if !ok {
			t.Fatal("refused on an idle limiter")
		}
		admitted = append(admitted, at)
	}
	answer := func(n int) {
		for range n {
			l.observe(admitted[0])
			l.release()
			admitted = admitted[1:]
		}
	}
	clk.advance(testInterval + time.Millisecond)
	answer(10) // ends the empty first interval; these are the second's
	if got := l.limit.Load(); got != testMax {
		t.Fatalf("limit %d after an interval with nothing answered, want %d", got, testMax)
	}
	for range 9 {
		clk.advance(10 * time.Millisecond)
		answer(10)
		at, ok := l.acquire()
		if !ok {
			t.Fatal("refused before the slow interval ended")
		}
		admitted = append(admitted, at)
	}
	if got := l.limit.Load(); got != testMax {
		t.Fatalf("limit %d before the slow interval ended, want %d", got, testMax)
	}
	clk.advance(10 * time.Millisecond)
	answer(1) // ends it
	first := l.limit.Load()
	if first >= testMax || first < testMax/2 {
		t.Fatalf("limit %d after one slow interval, want below %d and at least half of it", first, testMax)
	}
	for range 9 {
		clk.advance(10 * time.Millisecond)
		answer(10)
		if got := l.limit.Load(); got != first {
			t.Fatalf("limit moved to %d within the interval after it fell to %d", got, first)
		}
	}
	clk.advance(10 * time.Millisecond)
	answer(1)
	if got := l.limit.Load(); got >= first {
		t.Fatalf("limit %d after a second slow interval, want below %d", got, first)
	}
}

// Under -race: many goroutines admitting, answering and rolling intervals
// over at once leave a consistent account.
func TestSubmitLimiterConcurrent(t *testing.T) {
	clk := newFakeClock()
	l := newSubmitLimiter(testTarget, time.Millisecond, 64, clk.now)
	var refused atomic.Int64
	var wg sync.WaitGroup
	const workers, each = 8, 2000
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				at, ok := l.acquire()
				if !ok {
					refused.Add(1)
					continue
				}
				if (w+i)%7 == 0 {
					clk.advance(time.Duration(i%50) * time.Millisecond)
				}
				l.observe(at)
				l.release()
				if lim := l.limit.Load(); lim < l.floor || lim > l.max {
					t.Errorf("limit %d outside [%d, %d]", lim, l.floor, l.max)
					return
				}
			}
		})
	}
	wg.Wait()
	a := l.snapshot()
	if a.InFlight != 0 || a.Refused != refused.Load() {
		t.Fatalf("after the workers: %d in flight, %d refusals counted, want 0 and %d", a.InFlight, a.Refused, refused.Load())
	}
}
