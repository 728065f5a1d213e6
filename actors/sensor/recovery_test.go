package sensor

import (
	"context"
	"sync"
	"testing"
	"time"

	"sensorhub/actors/supervise"
	"sensorhub/internal/acceptance"
	"sensorhub/internal/store"
	"sensorhub/messages"

	"sensorhub/internal/testenv"
)

// TestCrashRecovery kills a sensor role while every accepted test is in
// flight, then starts two new ones on the same store: each test completes
// exactly once, with exactly one event.
func TestCrashRecovery(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.Name, func(t *testing.T) {
			h := newHarness(t)
			st := kind.Open(t)
			release := make(chan struct{})
			var releaseOnce sync.Once
			const lease = 300 * time.Millisecond
			crashed := h.start(st, func(c *Config) {
				c.Lease = lease
				c.SweepInterval = time.Hour // this process never gets to sweep
				c.hooks = &testHooks{beforeProcess: func(store.Test) { <-release }}
			})
			// Registered after start, so it runs first: unblocks the dead
			// processors before the harness stops them.
			t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

			const n = 20
			accepted := map[string]bool{}
			for i := 0; i < n; i++ {
				a := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "temperature", Readings: readingsFor(acceptance.Catalogue()[0], 10)})
				accepted[a.TestID] = true
			}
			crashed.abort()
			if c := counts(t, st); c[messages.StatusProcessing] != n {
				t.Fatalf("counts %v after the crash, want %d processing", c, n)
			}

			for i := 0; i < 2; i++ {
				h.start(st, func(c *Config) {
					c.Lease = lease
					c.SweepInterval = 50 * time.Millisecond
				})
			}
			testenv.Eventually(t, "every accepted test to complete", func() bool {
				c := counts(t, st)
				return c[messages.StatusCompleted] == n && c[messages.StatusProcessing] == 0
			})
			testenv.Eventually(t, "every event to reach the stream", func() bool {
				return backlog(t, st) == 0 && streamCount(t, h.events) >= n
			})
			if c := counts(t, st); total(c) != n {
				t.Fatalf("counts %v, want %d tests in all", c, n)
			}
			events := readStream(t, h.events)
			if len(events) != n {
				t.Fatalf("%d events in the stream, want %d", len(events), n)
			}
			seenTest, seenEvent := map[string]bool{}, map[string]bool{}
			for _, e := range events {
				if !accepted[e.event.TestID] || seenTest[e.event.TestID] || seenEvent[e.event.EventID] {
					t.Fatalf("event %+v: unknown test, or a second event for it", e.event)
				}
				if e.msgID != e.event.EventID {
					t.Fatalf("Nats-Msg-Id %q, want the event id %q", e.msgID, e.event.EventID)
				}
				seenTest[e.event.TestID], seenEvent[e.event.EventID] = true, true
			}
			ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
			defer cancel()
			for id := range accepted {
				got, err := st.GetTest(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if got.Attempts < 1 {
					t.Fatalf("test %s completed with %d attempts, want a claim counted", id, got.Attempts)
				}
				break
			}
		})
	}
}

// TestSweeperGivesUp: a test whose every attempt is lost ends "failed".
func TestSweeperGivesUp(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	svc := h.start(st, func(c *Config) {
		c.Lease = 100 * time.Millisecond
		c.SweepInterval = 30 * time.Millisecond
		c.MaxAttempts = 2
		// Every attempt hangs; the sweeper's claims count the lost ones.
		c.hooks = &testHooks{beforeProcess: func(tt store.Test) {
			if tt.SensorID == "hangs" {
				<-release
			}
		}}
	})
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	a := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "humidity", SensorID: "hangs"})
	rec := h.waitDone(tokAlice, a.TestID)
	if rec.Status != messages.StatusFailed || rec.Reason != "gave up after 2 attempts" {
		t.Fatalf("record %+v, want failed: gave up after 2 attempts", rec)
	}
	releaseOnce.Do(func() { close(release) })
	// The hung attempt finishes late: its completion is not applied.
	testenv.Eventually(t, "the pipeline to drain", func() bool {
		return svc.pipe.counts().queued == 0 && svc.pipe.counts().completing == 0
	})
	if rec2, err := h.result(tokAlice, a.TestID); err != nil || rec2.Status != messages.StatusFailed {
		t.Fatalf("after the late completion: %+v, %v", rec2, err)
	}
	if c := counts(t, st); c[messages.StatusFailed] != 1 || total(c) != 1 {
		t.Fatalf("counts %v", c)
	}
}

// TestChildCrashesLoseNothing crashes the pool (holding jobs) and the writer
// (holding completions): every accepted test still completes, once.
func TestChildCrashesLoseNothing(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	gate := make(chan struct{})
	var gateOnce sync.Once
	svc := h.start(st, func(c *Config) {
		c.hooks = &testHooks{beforeProcess: func(store.Test) { <-gate }}
	})
	t.Cleanup(func() { gateOnce.Do(func() { close(gate) }) })

	const n = 6
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "pressure"}).TestID)
	}
	testenv.Eventually(t, "the pool to hold every test", func() bool { return svc.pipe.counts().queued == n })
	role := svc.Role()
	role.Send(role.Child(actorProcessors), &supervise.Crash{Reason: "test: pool"})
	role.Send(role.Child(actorWriter), &supervise.Crash{Reason: "test: writer"})
	role.Send(role.Child(actorIntake), &supervise.Crash{Reason: "test: intake"})
	gateOnce.Do(func() { close(gate) })

	for _, id := range ids {
		if rec := h.waitDone(tokAlice, id); rec.Status != messages.StatusCompleted {
			t.Fatalf("test %s ended %s", id, rec.Status)
		}
	}
	// The role still accepts and completes.
	after := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "pressure"})
	h.waitDone(tokAlice, after.TestID)
	testenv.Eventually(t, "one event per test", func() bool {
		return backlog(t, st) == 0 && streamCount(t, h.events) == n+1
	})
	testenv.Eventually(t, "the pipeline to drain", func() bool {
		return svc.pipe.counts().queued == 0 && svc.pipe.counts().completing == 0
	})
	for _, name := range []string{actorProcessors, actorWriter, actorIntake} {
		if role.Restarts(name) != 1 {
			t.Errorf("%s restarted %d times, want 1", name, role.Restarts(name))
		}
	}
}
