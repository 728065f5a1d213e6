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
	// claimedExpired is the outcome of one ClaimExpired, each test decoded
	// to what processing needs.
	claimedExpired struct {
		tests []dispatchedTest
		limit int
		err   error
	}
)

// maxClaim is the most tests one sweep claims.
const maxClaim = 512

// sweeper re-queues the tests left "processing" past their lease: a sensor
// process died, or this one lost a completion (a live process renews the
// leases of the tests it holds, see lease.go). ClaimExpired takes each test
// for one claimer only (SKIP LOCKED) and renews its lease; attempts counts
// the processing attempts that began (BeginAttempts), so a test whose
// MaxAttempts attempts all began and none ended ends "failed". The
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
	// Claim no more than the pipeline has room for, in tests and in bytes
	// (at the most a test can hold): a claimed test waits in memory.
	limit := min(maxClaim, s.pipe.room(), int(s.pipe.roomBytes()/maxJobBytes))
	if limit <= 0 {
		return
	}
	w.busy = true
	self := ctx.Self()
	if !s.tasks.goTracked(func() {
		tests, err := dbCall(s.data, func(ctx context.Context) ([]store.Test, error) {
			return s.cfg.Store.ClaimExpired(ctx, time.Now().UTC(), s.cfg.Lease, limit)
		})
		// Decoded here, off the actor: the stored requests are dropped.
		claimed := make([]dispatchedTest, len(tests))
		for i, t := range tests {
			claimed[i] = dispatchedTest{work: workOf(t), attempts: t.Attempts}
		}
		s.tasks.send(self, &claimedExpired{tests: claimed, limit: limit, err: err})
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
	var retry []dispatchedTest
	gaveUp := 0
	for _, c := range msg.tests {
		// Every counted attempt began, and none of them ended: having lost
		// MaxAttempts of them, the test gets no more.
		if c.attempts >= s.cfg.MaxAttempts {
			gaveUp++
			s.sendCompletion(ctx, s.failedCompletion(c.work.test, fmt.Sprintf("gave up after %d attempts", c.attempts)), c.work.trace)
			continue
		}
		retry = append(retry, c)
	}
	s.log.Info("re-queued tests whose lease ended", "requeued", len(retry), "gave_up", gaveUp)
	s.dispatchJobs(ctx, retry)
	if len(msg.tests) == msg.limit {
		ctx.Send(ctx.Self(), &sweepTick{})
	}
}
