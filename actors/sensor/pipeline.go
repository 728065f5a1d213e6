package sensor

import (
	"sync/atomic"

	"sensorhub/messages"
)

// pipeline owns the counters of the role's work in flight and their bounds
// (Config.MaxInFlight and Config.MaxInFlightBytes). Each is raised and
// lowered only through the transitions below, so that the +1 of one actor
// and the -1 of another are two names for the same counter instead of two
// literals in two files.
//
//	submission: admit ... settled ... answered
//	test:       dispatched ....... processed | discarded
//	completion: completionSent ... committed | abandoned
//
// A test is dispatched before its submission is answered, and its
// completion is sent before it counts as processed, so idle never sees a
// gap between two stages of one test. The methods are safe for concurrent
// use (the NATS handlers and several actors call them).
//
// Bytes are what the work in flight holds in memory, as its owner reports
// it: a submission the most it can hold from admission
// (submissionReserve), then what it does hold once decoded (payload,
// readings, stored request), until it is answered; a queued test its
// readings (work.bytes) until it leaves the pool. Reserving the most first
// keeps the total under the bound while submissions are being decoded. A
// completion holds a few hundred bytes and is counted by number only.
type pipeline struct {
	limit      int64 // MaxInFlight
	limitBytes int64 // MaxInFlightBytes

	// inflight counts submissions received and not yet answered.
	inflight atomic.Int64
	// queued counts tests sent to the processor pool and not yet out of it.
	queued atomic.Int64
	// completing counts completions sent to the writer and not yet
	// committed (or given up).
	completing atomic.Int64
	// bytes is what the submissions in flight and the queued tests hold.
	bytes atomic.Int64
	// waitingInserts is the writer's queue of inserts not yet sent to the
	// database (for tests and diagnostics).
	waitingInserts atomic.Int64
}

func newPipeline(maxInFlight int, maxInFlightBytes int64) *pipeline {
	return &pipeline{limit: int64(maxInFlight), limitBytes: maxInFlightBytes}
}

// admit takes an in-flight slot and size bytes for one submission, or
// refuses it when the submissions, the processing pipeline or the bytes in
// flight are at their limit. A submission larger than the whole byte limit
// is admitted while nothing else holds any, so that it is not refused
// forever.
func (p *pipeline) admit(size int64) bool {
	if p.queued.Load()+p.completing.Load() >= p.limit {
		return false
	}
	if b := p.bytes.Add(size); b > p.limitBytes && b != size {
		p.bytes.Add(-size)
		return false
	}
	if p.inflight.Add(1) > p.limit {
		p.inflight.Add(-1)
		p.bytes.Add(-size)
		return false
	}
	return true
}

// settled replaces the reserved bytes of an admitted submission with the
// size it holds until it is answered.
func (p *pipeline) settled(reserved, size int64) { p.bytes.Add(size - reserved) }

// submissionReserve is the most a submission of a payload of n bytes holds
// before it is answered: the payload, its readings decoded (at most one per
// two bytes of JSON, at most MaxReadings, 8 bytes each) and the request
// re-encoded for the store (the payload's size, plus the defaults that
// normalizing adds).
func submissionReserve(n int) int64 {
	return int64(2*n + 8*min(n/2, messages.MaxReadings) + 256)
}

// answered frees the slot of an admitted submission and the size bytes it
// held (once per submission).
func (p *pipeline) answered(size int64) {
	p.inflight.Add(-1)
	p.bytes.Add(-size)
}

// dispatched counts n tests handed to the processor pool, holding size bytes.
func (p *pipeline) dispatched(n int, size int64) {
	p.queued.Add(int64(n))
	p.bytes.Add(size)
}

// processed counts n tests, holding size bytes, that left the pool: their
// completion was sent, or the pool already held them (a duplicate claim),
// or another process had finished them.
func (p *pipeline) processed(n int, size int64) {
	p.queued.Add(-int64(n))
	p.bytes.Add(-size)
}

// discarded counts n tests, holding size bytes, the pool dropped as it
// stopped (they stay "processing" in the store until a sweeper claims them).
func (p *pipeline) discarded(n int, size int64) {
	p.queued.Add(-int64(n))
	p.bytes.Add(-size)
}

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

// roomBytes is how many more bytes the work in flight may hold.
func (p *pipeline) roomBytes() int64 { return p.limitBytes - p.bytes.Load() }

// pipelineCounts is a snapshot of the counters.
type pipelineCounts struct {
	inflight, queued, completing, bytes, waitingInserts int64
}

func (p *pipeline) counts() pipelineCounts {
	return pipelineCounts{
		inflight:       p.inflight.Load(),
		queued:         p.queued.Load(),
		completing:     p.completing.Load(),
		bytes:          p.bytes.Load(),
		waitingInserts: p.waitingInserts.Load(),
	}
}

// idle says that no submission, test or completion is in flight.
func (p *pipeline) idle() bool {
	c := p.counts()
	return c.inflight == 0 && c.queued == 0 && c.completing == 0
}
