package sensor

import "sync/atomic"

// pipeline owns the counters of the role's work in flight and their bound
// (Config.MaxInFlight). Each is raised and lowered only through the
// transitions below, so that the +1 of one actor and the -1 of another are
// two names for the same counter instead of two literals in two files.
//
//	submission: admit ............ answered
//	test:       dispatched ....... processed | discarded
//	completion: completionSent ... committed | abandoned
//
// A test is dispatched before its submission is answered, and its
// completion is sent before it counts as processed, so idle never sees a
// gap between two stages of one test. The methods are safe for concurrent
// use (the NATS handlers and several actors call them).
type pipeline struct {
	limit int64 // MaxInFlight

	// inflight counts submissions received and not yet answered.
	inflight atomic.Int64
	// queued counts tests sent to the processor pool and not yet out of it.
	queued atomic.Int64
	// completing counts completions sent to the writer and not yet
	// committed (or given up).
	completing atomic.Int64
	// waitingInserts is the writer's queue of inserts not yet sent to the
	// database (for tests and diagnostics).
	waitingInserts atomic.Int64
}

func newPipeline(maxInFlight int) *pipeline { return &pipeline{limit: int64(maxInFlight)} }

// admit takes an in-flight slot for one submission, or refuses it when the
// submissions or the processing pipeline are at the limit.
func (p *pipeline) admit() bool {
	if p.queued.Load()+p.completing.Load() >= p.limit {
		return false
	}
	if p.inflight.Add(1) > p.limit {
		p.inflight.Add(-1)
		return false
	}
	return true
}

// answered frees the slot of an admitted submission (once per submission).
func (p *pipeline) answered() { p.inflight.Add(-1) }

// dispatched counts n tests handed to the processor pool.
func (p *pipeline) dispatched(n int) { p.queued.Add(int64(n)) }

// processed counts n tests that left the pool: their completion was sent,
// or the pool already held them (a duplicate claim).
func (p *pipeline) processed(n int) { p.queued.Add(-int64(n)) }

// discarded counts n tests the pool dropped as it stopped (they stay
// "processing" in the store until a sweeper claims them).
func (p *pipeline) discarded(n int) { p.queued.Add(-int64(n)) }

// completionSent counts one completion handed to the writer.
func (p *pipeline) completionSent() { p.completing.Add(1) }

// committed counts n completions the store applied.
func (p *pipeline) committed(n int) { p.completing.Add(-int64(n)) }

// abandoned counts n completions the writer gave up (stopping, or the store
// keeps refusing one): their tests stay "processing" for the sweeper.
func (p *pipeline) abandoned(n int) { p.completing.Add(-int64(n)) }

// insertsWaiting records the length of the writer's insert queue.
func (p *pipeline) insertsWaiting(n int) { p.waitingInserts.Store(int64(n)) }

// room is how many more tests the pool and the writer may take: what a
// sweep may claim without overfilling them.
func (p *pipeline) room() int { return int(p.limit - p.queued.Load() - p.completing.Load()) }

// pipelineCounts is a snapshot of the counters.
type pipelineCounts struct {
	inflight, queued, completing, waitingInserts int64
}

func (p *pipeline) counts() pipelineCounts {
	return pipelineCounts{
		inflight:       p.inflight.Load(),
		queued:         p.queued.Load(),
		completing:     p.completing.Load(),
		waitingInserts: p.waitingInserts.Load(),
	}
}

// idle says that no submission, test or completion is in flight.
func (p *pipeline) idle() bool {
	c := p.counts()
	return c.inflight == 0 && c.queued == 0 && c.completing == 0
}
