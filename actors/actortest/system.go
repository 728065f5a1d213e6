package actortest

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/actors/supervise"
)

// NewSystem returns an actor system (built by supervise.NewSystem) that logs
// to the test (shown with -v or on failure) and is shut down by t.Cleanup.
func NewSystem(t testing.TB) *actor.ActorSystem {
	t.Helper()
	return NewSystemWithLogger(t, Logger(t))
}

// NewSystemWithLogger is NewSystem with the given logger, for instance the
// one from CaptureLogs.
func NewSystemWithLogger(t testing.TB, logger *slog.Logger) *actor.ActorSystem {
	t.Helper()
	system := supervise.NewSystem(logger)
	t.Cleanup(system.Shutdown)
	return system
}

// Logger returns a logger that writes to t.Log while the test runs and
// drops records once it has finished (actors may still log while they
// stop, and t.Log after the end of a test panics).
func Logger(t testing.TB) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Discard returns a logger that drops everything.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testWriter forwards lines to t.Log until the test's cleanup ran.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newTestWriter(t testing.TB) io.Writer {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
