package actortest

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Eventually polls cond until it holds, failing the test after timeout.
// Use it for state that has no channel to wait on.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// Receive returns the next value from ch, failing the test after timeout
// (or if ch is closed).
func Receive[T any](t testing.TB, ch <-chan T, timeout time.Duration) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return v
	case <-time.After(timeout):
		t.Fatalf("nothing received within %s", timeout)
	}
	var zero T
	return zero
}

// Probe spawns an actor under system's root that forwards every message it
// receives (lifecycle messages excluded) to the returned channel, which
// holds up to 1024 messages (later ones are dropped rather than block the
// actor). It is stopped by t.Cleanup.
func Probe(t testing.TB, system *actor.ActorSystem) (*actor.PID, <-chan any) {
	t.Helper()
	ch := make(chan any, 1024)
	pid := system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
			return
		}
		select {
		case ch <- c.Message():
		default:
		}
	}))
	t.Cleanup(func() { system.Root.Stop(pid) })
	return pid, ch
}

// Closed waits until ch is closed (a "ready" or "done" channel), failing
// the test after timeout.
func Closed(t testing.TB, ch <-chan struct{}, timeout time.Duration) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("channel not closed within %s", timeout)
	}
}
