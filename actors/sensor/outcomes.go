package sensor

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/latency"
	"sensorhub/messages"
)

// outcomes counts how the role's submissions were answered and how its
// tests ended, since the role started (per process), for the metrics. An
// acceptance and an end are one atomic add each; a refusal takes a lock,
// which only refusals pay.
type outcomes struct {
	accepts   atomic.Uint64
	completed atomic.Uint64
	failed    atomic.Uint64
	mu        sync.Mutex
	refusedBy map[string]uint64 // by error code
	// latency counts the ended tests by the time from acceptance to the
	// commit of their end (one atomic add each), for the dashboard.
	latency latency.Histogram
}

// accepted counts one submission answered "processing".
func (o *outcomes) accepted() { o.accepts.Add(1) }

// refused counts one submission answered with err, by its code.
func (o *outcomes) refused(err error) {
	code := messages.CodeInternal
	var e *messages.Error
	if errors.As(err, &e) && e.Code != "" {
		code = e.Code
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refusedBy == nil {
		o.refusedBy = map[string]uint64{}
	}
	o.refusedBy[string(code)]++
}

// ended counts the completions of batch the store applied, by status (a
// completion it did not apply was already done, by this or another
// process, and was counted there).
func (o *outcomes) ended(batch []*pendingCompletion, applied []bool) {
	now := time.Now()
	for i, p := range batch {
		if i >= len(applied) || !applied[i] {
			continue
		}
		if !p.c.Accepted.IsZero() {
			o.latency.Observe(now.Sub(p.c.Accepted))
		}
		switch p.c.Status {
		case messages.StatusCompleted:
			o.completed.Add(1)
		case messages.StatusFailed:
			o.failed.Add(1)
		}
	}
}

// Counts is a snapshot of the role's counters and gauges, read by the
// metrics at scrape time. Counters count since the role started, in this
// process; gauges are the values of the moment.
type Counts struct {
	// Accepted submissions (answered "processing"); Refused, by error code.
	Accepted uint64
	Refused  map[string]uint64
	// Completed and Failed: tests whose end this process committed.
	Completed, Failed uint64
	// InFlight submissions not yet answered; Queued tests in the processor
	// pool; Completing completions not yet committed; InFlightBytes what
	// they hold (see Config.MaxInFlightBytes).
	InFlight, Queued, Completing, InFlightBytes int64
	// OutboxBacklog is the outbox's row count as last counted (every
	// second while MaxOutboxBacklog is set; -1 when it is not counted).
	OutboxBacklog int64
}

// Counts reports the role's counters and gauges. It makes no call: every
// figure is in memory.
func (s *Service) Counts() Counts {
	c := Counts{
		Accepted:      s.outcomes.accepts.Load(),
		Completed:     s.outcomes.completed.Load(),
		Failed:        s.outcomes.failed.Load(),
		InFlight:      s.pipe.inflight.Load(),
		Queued:        s.pipe.queued.Load(),
		Completing:    s.pipe.completing.Load(),
		InFlightBytes: s.pipe.bytes.Load(),
		OutboxBacklog: -1,
	}
	if s.cfg.MaxOutboxBacklog > 0 {
		c.OutboxBacklog = s.outbox.rows.Load()
	}
	s.outcomes.mu.Lock()
	c.Refused = make(map[string]uint64, len(s.outcomes.refusedBy))
	for k, v := range s.outcomes.refusedBy {
		c.Refused[k] = v
	}
	s.outcomes.mu.Unlock()
	return c
}

// Flow is the role's flow for the dashboard (the health endpoint's stats
// data), from memory like Counts.
func (s *Service) Flow() messages.SensorFlow {
	c := s.Counts()
	f := messages.SensorFlow{
		Accepted:          c.Accepted,
		Ended:             c.Completed + c.Failed,
		InFlight:          c.InFlight,
		Queued:            c.Queued + c.Completing,
		OutboxBacklog:     c.OutboxBacklog,
		CompletionLatency: s.outcomes.latency.Snapshot(),
	}
	for _, n := range c.Refused {
		f.Refused += n
	}
	return f
}

// Breakers are the role's breakers: "sensor.database", "sensor.jetstream"
// and its validator's ("sensor.auth").
func (s *Service) Breakers() *breaker.Set { return &s.breakers }

// Supervision counts the decisions of the role's supervisors (the role
// supervisor and the processor pool's).
func (s *Service) Supervision() *supervise.Tally { return &s.supervision }
