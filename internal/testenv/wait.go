package testenv

import (
	"testing"
	"time"
)

// Wait is how long a test may still wait for something: the time left
// before the test's own deadline (go test -timeout), less a margin so the
// failure is reported rather than the binary killed. Without a deadline it
// is ten minutes. A busy machine gets all the time the test has, never a
// fixed few seconds.
func Wait(t testing.TB) time.Duration {
	t.Helper()
	const margin = 30 * time.Second
	type deadliner interface{ Deadline() (time.Time, bool) }
	if d, ok := t.(deadliner); ok {
		if dl, ok := d.Deadline(); ok {
			return max(time.Until(dl)-margin, time.Second)
		}
	}
	return 10 * time.Minute
}

// Eventually polls cond until it holds, failing the test when the test's
// deadline (see Wait) comes first: the one way tests wait for state that
// has no channel to wait on. A busy machine gets all the time the test
// has, never a fixed few seconds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyState(t, what, func() (bool, string) { return cond(), "" })
}

// EventuallyState is Eventually for a condition that also describes the
// state it saw, reported when the wait gives up.
func EventuallyState(t testing.TB, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(Wait(t))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if state != "" {
				t.Fatalf("gave up waiting for %s; last state: %s", what, state)
			}
			t.Fatalf("gave up waiting for %s", what)
		}
		<-tick.C
	}
}

// SkipIfShort skips a system test (a whole system of roles, the drills, the
// README's commands, a failure drill that waits out timeouts) under
// `go test -short`, the quick tier; the full suite, the README's test
// command, runs them.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("a system test: -short runs the quick tier only")
	}
}
