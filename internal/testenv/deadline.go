package testenv

import (
	"context"
	"testing"
	"time"
)

// Deadline returns t.Context() ending a little before the test binary's own
// deadline (go test -timeout), so that a poll that never succeeds fails
// the test with its message instead of a panic of the whole binary. The
// deadline comes from the test, never from a fixed duration that a busy
// machine might miss.
func Deadline(t testing.TB) context.Context {
	t.Helper()
	ctx := t.Context()
	d, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return ctx
	}
	deadline, ok := d.Deadline()
	if !ok {
		return ctx
	}
	// Leave time for the failure to be reported and the cleanups to run.
	margin := min(time.Until(deadline)/10, 30*time.Second)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(-margin))
	t.Cleanup(cancel)
	return ctx
}
