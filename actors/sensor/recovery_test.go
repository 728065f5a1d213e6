package sensor

import (
	"context"
	"fmt"
	"strings"
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
			// Two processes take the tests over: a lease short enough for
			// a quick test, long enough that a renewal late on a busy
			// machine does not hand a test from one live process to the
			// other (a second real attempt: seen with 300 ms).
			const lease = time.Second
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
			// The crashed process counted an attempt for each test that a
			// processor held (at least the ones being evaluated, at most
			// processorCredit per processor); the one that completed it, one.
			ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
			defer cancel()
			twice := 0
			for id := range accepted {
				got, err := st.GetTest(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if got.Attempts < 1 || got.Attempts > 2 {
					t.Fatalf("test %s completed with %d attempts, want 1 or 2 (one crash)", id, got.Attempts)
				}
				if got.Attempts == 2 {
					twice++
				}
			}
			if twice < 2 || twice > 2*processorCredit {
				t.Fatalf("%d tests counted the crash, want between the 2 being processed and %d", twice, 2*processorCredit)
			}
		})
	}
}

// crashingProcess is a sensor role whose processors hang on every test
// until release is closed; the caller aborts it, as a crash would.
func crashingProcess(lease time.Duration, maxAttempts int, release <-chan struct{}) func(*Config) {
	return func(c *Config) {
		c.Workers = 1
		c.Lease = lease
		c.SweepInterval = 30 * time.Millisecond
		c.MaxAttempts = maxAttempts
		c.hooks = &testHooks{beforeProcess: func(store.Test) { <-release }}
	}
}

// attemptsOf reads a test's attempts from the store.
func attemptsOf(t *testing.T, st store.Store, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	got, err := st.GetTest(ctx, id)
	if err != nil {
		t.Fatalf("get test %s: %v", id, err)
	}
	return got.Attempts
}

// TestSweeperGivesUp: a test whose every attempt dies with its process
// ends "failed" once MaxAttempts attempts were counted, and its attempts
// are the number of those crashes.
func TestSweeperGivesUp(t *testing.T) {
	h := newHarness(t)
	st := openSQLite(t)
	const lease, maxAttempts = 200 * time.Millisecond, 2
	release := make(chan struct{})
	var releaseOnce sync.Once
	procs := []*Service{h.start(st, crashingProcess(lease, maxAttempts, release))}
	// Registered after the starts, so it runs first: unblocks the dead
	// processors before the harness stops them.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	id := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "humidity", SensorID: "hangs"}).TestID
	for crash := 1; crash <= maxAttempts; crash++ {
		testenv.Eventually(t, fmt.Sprintf("attempt %d to be counted", crash), func() bool {
			return attemptsOf(t, st, id) == crash
		})
		procs[len(procs)-1].abort()
		if crash < maxAttempts {
			procs = append(procs, h.start(st, crashingProcess(lease, maxAttempts, release)))
		}
	}
	// A healthy process finds a test whose attempts all began and died.
	h.start(st, func(c *Config) {
		c.Lease = lease
		c.SweepInterval = 30 * time.Millisecond
		c.MaxAttempts = maxAttempts
	})
	rec := h.waitDone(tokAlice, id)
	if rec.Status != messages.StatusFailed || rec.Reason != "gave up after 2 attempts" {
		t.Fatalf("record %+v, want failed: gave up after 2 attempts", rec)
	}
	if n := attemptsOf(t, st, id); n != maxAttempts {
		t.Fatalf("attempts %d, want %d (the crashes)", n, maxAttempts)
	}
	if c := counts(t, st); c[messages.StatusFailed] != 1 || total(c) != 1 {
		t.Fatalf("counts %v", c)
	}
}

// TestAttemptsCountCrashes: a test that two processes die on and a third
// completes shows three attempts, and the test queued behind it in the
// same processes (never handed to a processor) shows one.
func TestAttemptsCountCrashes(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.Name, func(t *testing.T) {
			h := newHarness(t)
			st := kind.Open(t)
			const lease = 200 * time.Millisecond
			release := make(chan struct{})
			var releaseOnce sync.Once
			first := h.start(st, crashingProcess(lease, 3, release))
			t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
			crashy := h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "humidity", SensorID: "crashy"}).TestID
			testenv.Eventually(t, "the first attempt to be counted", func() bool { return attemptsOf(t, st, crashy) == 1 })
			// Fill the one processor's credit, then one more: that one
			// waits in the pool's queue and must count no attempt.
			var behind []string
			for range processorCredit {
				behind = append(behind, h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "humidity"}).TestID)
			}
			last := behind[len(behind)-1]
			testenv.Eventually(t, "the processor's credit to be used", func() bool {
				return first.pipe.counts().queued == processorCredit+1 && attemptsOf(t, st, behind[len(behind)-2]) == 1
			})
			if n := attemptsOf(t, st, last); n != 0 {
				t.Fatalf("a test waiting in the queue has %d attempts, want 0", n)
			}
			first.abort()
			second := h.start(st, crashingProcess(lease, 3, release))
			testenv.Eventually(t, "the second attempt to be counted", func() bool { return attemptsOf(t, st, crashy) == 2 })
			second.abort()
			h.start(st, func(c *Config) { c.Lease = lease; c.SweepInterval = 30 * time.Millisecond })
			if rec := h.waitDone(tokAlice, crashy); rec.Status != messages.StatusCompleted {
				t.Fatalf("record %+v, want completed on the third attempt", rec)
			}
			if n := attemptsOf(t, st, crashy); n != 3 {
				t.Fatalf("attempts %d, want 3 (two crashes, one completion)", n)
			}
			for _, id := range behind {
				h.waitDone(tokAlice, id)
			}
			// The last one was never handed to a processor before a crash...
			// unless the second process did: at most one crash counted.
			if n := attemptsOf(t, st, last); n < 1 || n > 2 {
				t.Fatalf("the queued test has %d attempts, want 1 or 2", n)
			}
		})
	}
}

// TestBacklogKeepsLeases: a backlog that takes many leases to drain (one
// slow processor, a short lease, a sweeper that looks often) ends with every
// test completed at its first attempt: a test this process holds keeps its
// lease, so no sweep takes it and counts it again.
func TestBacklogKeepsLeases(t *testing.T) {
	testenv.SkipIfShort(t)
	for _, kind := range storeKinds {
		t.Run(kind.Name, func(t *testing.T) {
			h := newHarness(t)
			st := kind.Open(t)
			// The lease is renewed every third of it, so a lapse needs a
			// renewal two thirds of a lease late: a second-long lease keeps
			// a busy machine's scheduling and fsync delays (hundreds of ms
			// under -race with other suites running) from looking like a
			// dead process, and 40 tests of 100 ms still take four leases.
			const (
				n       = 40
				lease   = time.Second
				perTest = 100 * time.Millisecond // 40 tests: about 4 s, four leases
			)
			h.start(st, func(c *Config) {
				c.Workers = 1
				c.Lease = lease
				c.SweepInterval = 50 * time.Millisecond
				// A slow evaluation, not a wait for an actor.
				c.hooks = &testHooks{beforeProcess: func(store.Test) { time.Sleep(perTest) }}
			})
			started := time.Now()
			var ids []string
			for range n {
				ids = append(ids, h.mustSubmit(tokAlice, messages.SubmitTest{SensorType: "temperature"}).TestID)
			}
			for _, id := range ids {
				if rec := h.waitDone(tokAlice, id); rec.Status != messages.StatusCompleted {
					t.Errorf("test %s ended %s: %q", id, rec.Status, rec.Reason)
				}
			}
			t.Logf("%d tests drained in %v (lease %v)", n, time.Since(started), lease)
			for _, id := range ids {
				if a := attemptsOf(t, st, id); a != 1 {
					t.Errorf("test %s: attempts %d, want 1", id, a)
				}
			}
			if lines := h.logs.lines("re-queued tests whose lease ended"); len(lines) != 0 {
				t.Errorf("the sweeper took tests this process held:\n%s", strings.Join(lines, "\n"))
			}
		})
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
