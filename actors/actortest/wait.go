package actortest

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/internal/testenv"
)

// Receive returns the next value from ch, failing the test when the test's
// own deadline comes first (or if ch is closed).
func Receive[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	timeout := testenv.Wait(t)
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
// the test when the test's own deadline comes first.
func Closed(t testing.TB, ch <-chan struct{}) {
	t.Helper()
	timeout := testenv.Wait(t)
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("channel not closed within %s", timeout)
	}
}
