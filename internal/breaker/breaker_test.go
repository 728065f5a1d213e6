package breaker

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"sensorhub/internal/testenv"
)

var errDown = errors.New("dependency down")
var errBadInput = errors.New("bad input")

func isDown(err error) bool {
	return errors.Is(err, errDown) || errors.Is(err, context.DeadlineExceeded)
}

func newTest(cfg Config) *Breaker {
	return New("test.dep", cfg, isDown, slog.New(slog.DiscardHandler))
}

func TestOpensOnlyOnDependencyFailures(t *testing.T) {
	b := newTest(Config{Failures: 3, OpenFor: time.Hour})
	ctx := context.Background()
	// Bad input proves the dependency is up: it never opens the breaker.
	for i := 0; i < 10; i++ {
		if err := b.Do(ctx, func(context.Context) error { return errBadInput }); !errors.Is(err, errBadInput) {
			t.Fatalf("call %d: err = %v, want errBadInput passed through", i, err)
		}
	}
	if got := b.State(); got != "closed" {
		t.Fatalf("after bad inputs: state %s, want closed", got)
	}
	for i := 0; i < 3; i++ {
		if err := b.Do(ctx, func(context.Context) error { return errDown }); !errors.Is(err, errDown) {
			t.Fatalf("failure %d: err = %v", i, err)
		}
	}
	if got := b.State(); got != "open" {
		t.Fatalf("after 3 failures: state %s, want open", got)
	}
	called := false
	err := b.Do(ctx, func(context.Context) error { called = true; return nil })
	if !errors.Is(err, ErrOpen) || called {
		t.Fatalf("open breaker: err = %v, called = %v; want ErrOpen without a call", err, called)
	}
	h := b.Health()
	if h.State != "open" {
		t.Fatalf("health = %+v", h)
	}
}

func TestEveryCallGetsItsOwnDeadline(t *testing.T) {
	b := newTest(Config{CallTimeout: 20 * time.Millisecond, Failures: 1, OpenFor: time.Hour})
	err := b.Do(context.Background(), func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("guarded call has no deadline")
		}
		<-ctx.Done() // a hung dependency
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if b.State() != "open" {
		t.Fatalf("a timed-out call must count as a failure; state %s", b.State())
	}
}

func TestCancelledCallerDoesNotCount(t *testing.T) {
	b := newTest(Config{Failures: 1, OpenFor: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	err := b.Do(ctx, func(ctx context.Context) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if b.State() != "closed" {
		t.Fatalf("a caller that went away says nothing about the dependency; state %s", b.State())
	}
	if h := b.Health(); h.TotalFailures != 0 {
		t.Fatalf("failures counted: %+v", h)
	}
}

func TestHalfOpenProbeClosesAgain(t *testing.T) {
	b := newTest(Config{Failures: 1, OpenFor: 10 * time.Millisecond})
	var changes []string
	b.OnStateChange(func(from, to string) { changes = append(changes, from+"->"+to) })
	_ = b.Do(context.Background(), func(context.Context) error { return errDown })
	deadline := time.Now().Add(5 * time.Second)
	for b.State() != "half-open" {
		if time.Now().After(deadline) {
			t.Fatalf("breaker never went half-open; state %s", b.State())
		}
		time.Sleep(time.Millisecond) // polling the breaker's clock, not an actor
	}
	v, err := Call(context.Background(), b, func(context.Context) (int, error) { return 42, nil })
	if err != nil || v != 42 {
		t.Fatalf("probe: %d, %v", v, err)
	}
	if b.State() != "closed" {
		t.Fatalf("after a good probe: state %s, want closed", b.State())
	}
	want := []string{"closed->open", "open->half-open", "half-open->closed"}
	if len(changes) != len(want) {
		t.Fatalf("state changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("state changes %v, want %v", changes, want)
		}
	}
}

func TestSetReportsEveryBreaker(t *testing.T) {
	var s Set
	s.Add(New("a.x", Config{}, nil, nil))
	s.Add(New("b.y", Config{}, nil, nil))
	h := s.Health()
	if len(h) != 2 || h["a.x"].State != "closed" || h["b.y"].State != "closed" {
		t.Fatalf("health = %+v", h)
	}
	if n := s.Names(); len(n) != 2 || n[0] != "a.x" || n[1] != "b.y" {
		t.Fatalf("names = %v", n)
	}
}

// Every state change is counted by kind, for the metrics: closed->open,
// open->half-open, half-open->closed, and nothing else happened.
func TestTransitionsAreCounted(t *testing.T) {
	b := newTest(Config{Failures: 2, OpenFor: time.Millisecond})
	ctx := context.Background()
	if got := b.Transitions(); len(got) != 0 {
		t.Fatalf("transitions of a new breaker: %v", got)
	}
	for range 2 {
		_ = b.Do(ctx, func(context.Context) error { return errDown })
	}
	if got := b.Transitions(); len(got) != 1 || got[0] != (Transition{From: "closed", To: "open", Count: 1}) {
		t.Fatalf("after opening: %v", got)
	}
	// The probe succeeds once OpenFor has passed (the breaker's own clock).
	testenv.Eventually(t, "the probe to close the breaker", func() bool {
		return b.Do(ctx, func(context.Context) error { return nil }) == nil
	})
	want := map[Transition]bool{
		{From: "closed", To: "open", Count: 1}:      true,
		{From: "open", To: "half-open", Count: 1}:   true,
		{From: "half-open", To: "closed", Count: 1}: true,
	}
	got := b.Transitions()
	if len(got) != len(want) {
		t.Fatalf("transitions %v, want %v", got, want)
	}
	for _, tr := range got {
		if !want[tr] {
			t.Fatalf("transitions %v, want %v", got, want)
		}
	}
	if s := States(); len(s) != 3 || s[0] != "closed" || s[1] != "half-open" || s[2] != "open" {
		t.Fatalf("States() = %v", s)
	}
}

// The latest state changes are kept, newest first, across the breakers of
// a set, for the dashboard.
func TestRecentTransitionsNewestFirst(t *testing.T) {
	var s Set
	b := s.Add(New("a.dep", Config{Failures: 1, OpenFor: time.Millisecond}, isDown, slog.New(slog.DiscardHandler)))
	s.Add(New("b.dep", Config{}, isDown, nil))
	ctx := context.Background()
	if got := s.Recent(); len(got) != 0 {
		t.Fatalf("transitions of new breakers: %v", got)
	}
	_ = b.Do(ctx, func(context.Context) error { return errDown })
	testenv.Eventually(t, "the probe to close the breaker", func() bool {
		return b.Do(ctx, func(context.Context) error { return nil }) == nil
	})
	got := s.Recent()
	want := []string{"half-open->closed", "open->half-open", "closed->open"}
	if len(got) != len(want) {
		t.Fatalf("transitions %+v, want %v", got, want)
	}
	for i, w := range want {
		if got[i].Breaker != "a.dep" || got[i].From+"->"+got[i].To != w || got[i].At.IsZero() {
			t.Fatalf("transition %d: %+v, want a.dep %s", i, got[i], w)
		}
	}
	for range RecentTransitions {
		_ = b.Do(ctx, func(context.Context) error { return errDown })
		testenv.Eventually(t, "the probe to close the breaker", func() bool {
			return b.Do(ctx, func(context.Context) error { return nil }) == nil
		})
	}
	if n := len(s.Recent()); n != RecentTransitions {
		t.Fatalf("kept %d transitions, want %d", n, RecentTransitions)
	}
}
