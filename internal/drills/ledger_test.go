package drills

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ledger records what every client of a drill run was told: the test ids
// that got 202 (the promises the system must keep) and how the rest were
// refused. It is shared by the drills and the load client.
type ledger struct {
	phase atomic.Value // string: the drill running now, for the per-phase counts

	mu          sync.Mutex
	accepted    map[string]string // test id -> phase it was accepted in
	refused503  int
	connErrors  int
	other       map[string]int // "<status> <code>" -> count, for anything else
	badAccepted int            // 202 without a usable test id
	byPhase     map[string]*phaseCount
	phases      []string    // in the order they started
	acceptedAt  []time.Time // when each 202 arrived, in order (for pauses)
}

type phaseCount struct{ accepted, refused, errors, other int }

func newLedger() *ledger {
	l := &ledger{accepted: map[string]string{}, other: map[string]int{}, byPhase: map[string]*phaseCount{}}
	l.setPhase("setup")
	return l
}

// setPhase names the drill that the next replies belong to.
func (l *ledger) setPhase(name string) {
	l.phase.Store(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byPhase[name] == nil {
		l.byPhase[name] = &phaseCount{}
		l.phases = append(l.phases, name)
	}
}

// record files one submission's reply.
func (l *ledger) record(r httpReply, testID string) {
	phase, _ := l.phase.Load().(string)
	l.mu.Lock()
	defer l.mu.Unlock()
	pc := l.byPhase[phase]
	switch {
	case r.err != nil && r.status == 0:
		l.connErrors++
		pc.errors++
	case r.status == http.StatusAccepted && testID != "":
		l.accepted[testID] = phase
		l.acceptedAt = append(l.acceptedAt, time.Now())
		pc.accepted++
	case r.status == http.StatusAccepted:
		l.badAccepted++
		pc.other++
	case r.status == http.StatusServiceUnavailable:
		l.refused503++
		pc.refused++
	default:
		l.other[fmt.Sprintf("%d %s", r.status, r.errorBody().Code)]++
		pc.other++
	}
}

// acceptedIDs returns the ids of every test that got 202.
func (l *ledger) acceptedIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.accepted))
	for id := range l.accepted {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// acceptTimes returns when each 202 arrived, in arrival order.
func (l *ledger) acceptTimes() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.acceptedAt...)
}

// phaseOf says in which drill a test was accepted.
func (l *ledger) phaseOf(id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted[id]
}

// counts returns the totals.
func (l *ledger) counts() (accepted, refused503, connErrors, badAccepted int, other map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	other = make(map[string]int, len(l.other))
	for k, v := range l.other {
		other[k] = v
	}
	return len(l.accepted), l.refused503, l.connErrors, l.badAccepted, other
}

// phaseReplies is the number of replies recorded during phase.
func (l *ledger) phaseReplies(phase string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	pc := l.byPhase[phase]
	if pc == nil {
		return 0
	}
	return pc.accepted + pc.refused + pc.errors + pc.other
}

// phaseAccepted is the number of 202s recorded during phase.
func (l *ledger) phaseAccepted(phase string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pc := l.byPhase[phase]; pc != nil {
		return pc.accepted
	}
	return 0
}

// phaseSummary is one line per phase: accepted/refused(503)/errors/other.
func (l *ledger) phaseSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, name := range l.phases {
		pc := l.byPhase[name]
		fmt.Fprintf(&b, "\n  %-22s accepted %5d  refused(503) %5d  conn errors %4d  other %3d", name, pc.accepted, pc.refused, pc.errors, pc.other)
	}
	return b.String()
}

// loadClient keeps submitting tests at a bounded rate until stopped, or
// until it has sent max requests or run for maxFor, whichever comes first.
// Every reply goes to the ledger; it never fails the test by itself.
type loadClient struct {
	c       *cluster
	token   string
	l       *ledger
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	sent    atomic.Int64
	skipped atomic.Int64 // ticks skipped because too many requests were in flight
}

// Load limits: a few hundred submissions per second, bounded in count, in
// time and in requests in flight (a stalled edge costs skipped ticks, not
// an ever-growing pile of goroutines).
const (
	loadEvery    = 4 * time.Millisecond // 250 per second
	loadMax      = 30000
	loadMaxFor   = 150 * time.Second
	loadInFlight = 32
)

func startLoad(t *testing.T, c *cluster, token string, l *ledger) *loadClient {
	t.Helper()
	lc := &loadClient{c: c, token: token, l: l, stop: make(chan struct{}), done: make(chan struct{})}
	go lc.run()
	// Stopped at the latest when the test ends, so that no goroutine
	// outlives it even when a drill fails early.
	t.Cleanup(func() {
		if err := lc.Stop(); err != nil {
			t.Error(err)
		}
	})
	return lc
}

func (lc *loadClient) run() {
	defer close(lc.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, loadInFlight)
	tick := time.NewTicker(loadEvery)
	defer tick.Stop()
	end := time.After(loadMaxFor)
	for lc.sent.Load() < loadMax {
		select {
		case <-lc.stop:
			return
		case <-end:
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			lc.skipped.Add(1)
			continue
		}
		lc.sent.Add(1)
		wg.Go(func() {
			defer func() { <-sem }()
			r, id := lc.c.submit(lc.token)
			lc.l.record(r, id)
		})
	}
}

// Stop ends the load and waits for the requests in flight (each bounded by
// the HTTP client's timeout).
func (lc *loadClient) Stop() error {
	lc.once.Do(func() { close(lc.stop) })
	select {
	case <-lc.done:
		return nil
	case <-time.After(2 * httpTimeout):
		return fmt.Errorf("load client did not stop within %s", 2*httpTimeout)
	}
}
