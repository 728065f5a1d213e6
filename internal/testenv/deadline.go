package testenv

import (
	"context"
	"testing"
)

// Deadline returns t.Context() ending when the test's own time is up (see
// Wait), so that a poll that never succeeds fails the test with its
// message instead of a panic of the whole binary. The deadline comes from
// the test, never from a fixed duration that a busy machine might miss.
func Deadline(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), Wait(t))
	t.Cleanup(cancel)
	return ctx
}
