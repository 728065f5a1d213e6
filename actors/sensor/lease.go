package sensor

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Messages of the pool's leases and attempts.
type (
	// attemptsBegun is the outcome of one BeginAttempts: the attempts the
	// store counted for the jobs of seqs (0: the test is no longer
	// processing).
	attemptsBegun struct {
		batch    uint64 // pool.beginBatch when it was sent
		seqs     []uint64
		attempts []int
		err      error
	}
	// retryBegin ends the backoff after a failed BeginAttempts.
	retryBegin struct{}
	// renewTick asks the pool to renew the leases of every test it holds
	// (every RenewInterval).
	renewTick struct{}
	// leasesRenewed is the outcome of one RenewLeases.
	leasesRenewed struct {
		held, renewed int
		err           error
	}
)

// Waits between two counts of attempts while the database refuses them.
const (
	beginBackoffMin = 100 * time.Millisecond
	beginBackoffMax = 5 * time.Second
)

// pump counts the attempts of as many queued jobs as the processors have
// room for, in one store call, and sends them on once counted (begun).
// The attempt is durable before the processing starts, so an attempt that
// kills the whole process still counts; a job waits in the queue without
// counting any.
func (p *pool) pump(ctx actor.Context) {
	if p.stopping || p.beginBusy || p.beginWaiting || len(p.queue) == 0 {
		return
	}
	n := min(len(p.queue), p.credit())
	if n <= 0 {
		return
	}
	batch := p.queue[:n:n]
	p.queue = p.queue[n:]
	seqs, ids := make([]uint64, n), make([]string, n)
	for i, j := range batch {
		j.proc = jobStarting
		seqs[i], ids[i] = j.seq, j.work.test.ID
	}
	p.starting = batch
	p.beginBusy = true
	s, self := p.s, ctx.Self()
	// Numbered from the role's job sequence, so that the answer to an
	// earlier incarnation's count matches no batch of this one.
	p.beginBatch = s.jobSeq.Add(1)
	id := p.beginBatch
	until := time.Now().Add(s.cfg.Lease).UTC()
	if !s.tasks.goTracked(func() {
		attempts, err := dbCall(s.data, func(ctx context.Context) ([]int, error) {
			return s.cfg.Store.BeginAttempts(ctx, ids, until)
		})
		if err == nil && len(attempts) != len(ids) {
			err = fmt.Errorf("begin attempts: store returned %d results for %d tests", len(attempts), len(ids))
		}
		s.tasks.send(self, &attemptsBegun{batch: id, seqs: seqs, attempts: attempts, err: err})
	}) {
		// Stopping: the jobs stay where they are until the pool stops.
		p.beginBusy = false
	}
}

// begun sends the jobs whose attempt was counted to the processors. A test
// no longer processing (another process finished it) leaves the pool; one
// past MaxAttempts (counted by processes that died on it) ends "failed".
// A failed count puts the jobs back at the head of the queue and waits.
func (p *pool) begun(ctx actor.Context, msg *attemptsBegun) {
	if !p.beginBusy || msg.batch != p.beginBatch {
		return // the count of an earlier incarnation (see handOver)
	}
	p.beginBusy = false
	starting := p.starting
	p.starting = nil
	if msg.err != nil {
		var back []*job
		for _, j := range starting {
			if p.jobs[j.seq] == j {
				j.proc = jobQueued
				back = append(back, j)
			}
		}
		p.queue = append(back, p.queue...)
		p.s.log.Debug("count attempts failed; retrying", "tests", len(back), "err", msg.err)
		p.retryBeginLater()
		return
	}
	p.beginBackoff = 0
	bySeq := make(map[uint64]*job, len(starting))
	for _, j := range starting {
		bySeq[j.seq] = j
	}
	for i, seq := range msg.seqs {
		j := bySeq[seq]
		if j == nil || p.jobs[seq] != j {
			continue // a job of an earlier incarnation
		}
		switch a := msg.attempts[i]; {
		case a == 0:
			p.remove(j)
		case a > p.s.cfg.MaxAttempts:
			j.attempts = a - 1
			p.s.sendCompletion(ctx, p.s.failedCompletion(j.work.test, fmt.Sprintf("gave up after %d attempts", a-1)), j.work.trace)
			p.remove(j)
		default:
			j.attempts = a
			p.send(ctx, j)
		}
	}
}

// retryBeginLater schedules the next count of attempts after the backoff.
func (p *pool) retryBeginLater() {
	p.beginBackoff = min(max(2*p.beginBackoff, beginBackoffMin), beginBackoffMax)
	p.beginWaiting = true
	s, self, d := p.s, p.s.poolPID, p.beginBackoff
	if !s.tasks.goTracked(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			s.tasks.send(self, &retryBegin{})
		case <-s.ctx.Done():
		}
	}) {
		p.beginWaiting = false
	}
}

// renew extends the leases of every test the pool holds (queued, starting
// or at a processor), in one store call. One renewal runs at a time; a
// failed one is retried at the next tick, well within the lease.
func (p *pool) renew(ctx actor.Context) {
	if p.stopping || p.renewBusy || len(p.byTest) == 0 {
		return
	}
	ids := make([]string, 0, len(p.byTest))
	for id := range p.byTest {
		ids = append(ids, id)
	}
	p.renewBusy = true
	s, self := p.s, ctx.Self()
	until := time.Now().Add(s.cfg.Lease).UTC()
	if !s.tasks.goTracked(func() {
		n, err := dbCall(s.data, func(ctx context.Context) (int64, error) {
			return s.cfg.Store.RenewLeases(ctx, ids, until)
		})
		s.tasks.send(self, &leasesRenewed{held: len(ids), renewed: int(n), err: err})
	}) {
		p.renewBusy = false
	}
}

func (p *pool) renewed(msg *leasesRenewed) {
	p.renewBusy = false
	if msg.err != nil {
		// The breaker and the database state log the outage.
		p.s.log.Debug("renew leases failed", "tests", msg.held, "err", msg.err)
	}
}
