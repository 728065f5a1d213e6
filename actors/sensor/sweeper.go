package sensor

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/internal/store"
)

// Messages of the sweeper.
type (
	// sweepTick asks for a sweep (every SweepInterval, and again at once
	// after a full claim).
	sweepTick struct{}
	// claimedExpired is the outcome of one ClaimExpired.
	claimedExpired struct {
		tests []store.Test
		limit int
		err   error
	}
)

// maxClaim is the most tests one sweep claims.
const maxClaim = 512

// sweeper re-queues the tests left "processing" past their lease: a sensor
// process died, or this one lost a completion. ClaimExpired takes each test
// for one claimer only (SKIP LOCKED), renews its lease and counts the
// attempt; a test that has used up MaxAttempts ends "failed". The
// conditional completion makes sure a test that two processes evaluate
// still completes once.
type sweeper struct {
	s    *Service
	busy bool
}

func (w *sweeper) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *sweepTick:
		w.sweep(ctx)
	case *claimedExpired:
		w.claimed(ctx, msg)
	}
}

func (w *sweeper) sweep(ctx actor.Context) {
	s := w.s
	if w.busy {
		return
	}
	// Claim no more than the pipeline has room for: a claimed test waits
	// in memory, and its lease runs meanwhile.
	limit := min(maxClaim, s.pipe.room())
	if limit <= 0 {
		return
	}
	w.busy = true
	self := ctx.Self()
	if !s.tasks.goTracked(func() {
		tests, err := dbCall(s.data, func(ctx context.Context) ([]store.Test, error) {
			return s.cfg.Store.ClaimExpired(ctx, time.Now().UTC(), s.cfg.Lease, limit)
		})
		s.tasks.send(self, &claimedExpired{tests: tests, limit: limit, err: err})
	}) {
		w.busy = false
	}
}

func (w *sweeper) claimed(ctx actor.Context, msg *claimedExpired) {
	w.busy = false
	s := w.s
	if msg.err != nil {
		// The breaker and the database state log the outage; the next tick
		// tries again.
		s.log.Debug("sweep failed", "err", msg.err)
		return
	}
	if len(msg.tests) == 0 {
		return
	}
	var retry []store.Test
	gaveUp := 0
	for _, t := range msg.tests {
		// Attempts counts the claims: each one is an attempt that ended
		// without a completion. Having lost MaxAttempts of them, the test
		// gets no more.
		if t.Attempts >= s.cfg.MaxAttempts {
			gaveUp++
			s.sendCompletion(ctx, s.failedCompletion(t, fmt.Sprintf("gave up after %d attempts", t.Attempts)))
			continue
		}
		retry = append(retry, t)
	}
	s.log.Info("re-queued tests whose lease ended", "requeued", len(retry), "gave_up", gaveUp)
	s.dispatch(ctx, retry)
	if len(msg.tests) == msg.limit {
		ctx.Send(ctx.Self(), &sweepTick{})
	}
}

// dispatch sends claimed tests to the processor pool, with the attempts
// they already used.
func (s *Service) dispatch(ctx actor.Context, tests []store.Test) {
	if len(tests) == 0 {
		return
	}
	jobs := make([]dispatchedTest, len(tests))
	for i, t := range tests {
		jobs[i] = dispatchedTest{test: t, failures: t.Attempts}
	}
	s.dispatchJobs(ctx, jobs)
}
