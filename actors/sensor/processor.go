package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/actors/supervise"
	"sensorhub/internal/acceptance"
	"sensorhub/internal/store"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// Messages of the processor pool and its processors.
type (
	// dispatch hands tests to the pool. Its sender has counted them as
	// dispatched in the pipeline.
	dispatch struct{ jobs []dispatchedTest }
	// process hands one job to a processor.
	process struct {
		seq  uint64
		work *work
	}
	// jobDone: the processor sent the job's completion to the writer.
	jobDone struct{ seq uint64 }
	// jobFailed: the processor panicked on the job (sent before the panic
	// propagates, since the mailbox drops the message that panicked).
	jobFailed struct {
		seq    uint64
		reason string
	}
)

// work is what processing needs of a test, and nothing more: the test's
// identity and the decoded readings, not the raw NATS payload nor the
// stored request (test.Request is nil), so that a queued test holds about
// 8 bytes per reading.
type work struct {
	test       store.Test
	readings   []float64
	intervalMS int
	reference  *float64
	// unreadable marks a claimed test whose stored request does not decode.
	unreadable bool
	// trace is the intake's span of the test's submission, which its
	// processing continues (not valid for an untraced test, or one a
	// sweeper claimed).
	trace trace.SpanContext
}

// jobOverheadBytes is what a queued test holds besides its readings (the
// job, its ids and strings, the map entries), rounded up.
const jobOverheadBytes = 1024

// maxJobBytes is the most one queued test holds.
const maxJobBytes = 8*messages.MaxReadings + jobOverheadBytes

// newWork keeps of a test and its decoded request what processing needs.
// The readings are copied to a slice of their exact length, so that the
// growth slack of decoding is not kept either.
func newWork(t store.Test, req *messages.SubmitTest) *work {
	t.Request = nil
	w := &work{test: t, intervalMS: req.IntervalMS}
	if len(req.Readings) > 0 {
		w.readings = make([]float64, len(req.Readings))
		copy(w.readings, req.Readings)
	}
	if req.Reference != nil {
		r := *req.Reference
		w.reference = &r
	}
	return w
}

// workOf decodes a stored test (one a sweeper claimed).
func workOf(t store.Test) *work {
	var req messages.SubmitTest
	if err := json.Unmarshal(t.Request, &req); err != nil {
		t.Request = nil
		return &work{test: t, unreadable: true}
	}
	return newWork(t, &req)
}

// bytes is what the queued test holds, as the pipeline counts it.
func (w *work) bytes() int64 { return int64(8*len(w.readings) + jobOverheadBytes) }

// dispatchedTest is a test to process and the processing attempts the
// store has counted for it so far.
type dispatchedTest struct {
	work     *work
	attempts int
}

// Where a job is (job.proc, or the index of its processor).
const (
	jobQueued   = -1 // waiting in the queue
	jobStarting = -2 // its attempt is being counted in the store
)

// job is a test owned by the pool: queued, starting, or sent to a processor.
type job struct {
	seq      uint64
	work     *work
	attempts int // processing attempts the store counted, this one included once started
	proc     int
}

// procSlot is one processor child and the jobs it holds.
type procSlot struct {
	name        string
	pid         *actor.PID
	outstanding int
}

// pool owns the processors (bounded mailboxes) and a queue in front of them.
// It never sends a processor more than processorCredit jobs, so no send ever
// blocks on a full mailbox; the queue itself is bounded by MaxInFlight and
// MaxInFlightBytes through admission. Before a job goes to a processor, its
// attempt is counted in the store (lease.go: one BeginAttempts for every
// job the processors have room for), and every job the pool holds keeps its
// lease (one RenewLeases per renewal tick), so that a sweeper only takes
// the tests of a process that is gone. A processor that panics hands its
// job back and is restarted by the pool's supervise.Strategy; the job is
// dispatched again until MaxAttempts attempts were counted, then its test
// ends "failed".
type pool struct {
	s        *Service
	procs    []*procSlot
	queue    []*job
	jobs     map[uint64]*job   // queued, starting or outstanding, by seq
	byTest   map[string]uint64 // the same, by test id
	stopping bool

	// Counting attempts (lease.go): one BeginAttempts at a time.
	starting     []*job
	beginBatch   uint64 // numbers the count in flight
	beginBusy    bool
	beginBackoff time.Duration // current wait after a failed count; 0 when healthy
	beginWaiting bool          // a retryBegin is scheduled
	renewBusy    bool
}

func newPool(s *Service) *pool {
	return &pool{s: s, jobs: map[uint64]*job{}, byTest: map[string]uint64{}}
}

// processorStrategy supervises the pool's processors.
func (s *Service) processorStrategy() *supervise.Strategy {
	return &supervise.Strategy{
		Logger:    s.log,
		LogStacks: s.cfg.LogStacks,
		Tally:     &s.supervision,
		Policies: map[string]supervise.Policy{
			// A processor is stateless and its job is handed back before a
			// panic; MaxAttempts bounds a poison input, so restarting at
			// once is always right. Past the limit the pool replaces it.
			actorProcessor: {Directive: actor.RestartDirective, MaxRestarts: 100, Window: 10 * time.Second},
		},
	}
}

func (p *pool) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		for i := 0; i < p.s.cfg.Workers; i++ {
			p.procs = append(p.procs, &procSlot{name: actorProcessor + "-" + strconv.Itoa(i)})
			p.spawn(ctx, i)
		}
	case *dispatch:
		for _, d := range msg.jobs {
			p.add(d)
		}
		p.pump(ctx)
	case *attemptsBegun:
		p.begun(ctx, msg)
		p.pump(ctx)
	case *retryBegin:
		p.beginWaiting = false
		p.pump(ctx)
	case *renewTick:
		p.renew(ctx)
	case *leasesRenewed:
		p.renewed(msg)
	case *jobDone:
		if j := p.jobs[msg.seq]; j != nil {
			p.remove(j)
			p.pump(ctx)
		}
	case *jobFailed:
		p.failed(ctx, msg)
		p.pump(ctx)
	case *actor.Terminated:
		p.terminated(ctx, msg.Who)
		p.pump(ctx)
	case *actor.Restarting:
		p.handOver(ctx)
	case *actor.Stopping:
		p.stopping = true
		var size int64
		for _, j := range p.jobs {
			size += j.work.bytes()
		}
		p.s.pipe.discarded(len(p.jobs), size)
	}
}

func (p *pool) spawn(ctx actor.Context, i int) {
	slot := p.procs[i]
	props := supervise.Props(func() actor.Actor { return &processor{s: p.s} },
		actor.WithMailbox(actor.Bounded(processorMailbox)))
	pid, err := ctx.SpawnNamed(props, slot.name)
	if err != nil {
		p.s.log.Error("spawn processor", "actor", slot.name, "err", err)
		return
	}
	slot.pid = pid
}

// add queues a test, unless the pool already holds it (a sweeper claimed a
// test whose lease ended while it waited here: the renewal could not reach
// the database in time).
func (p *pool) add(d dispatchedTest) {
	if _, dup := p.byTest[d.work.test.ID]; dup {
		p.s.pipe.processed(1, d.work.bytes())
		return
	}
	j := &job{seq: p.s.jobSeq.Add(1), work: d.work, attempts: d.attempts, proc: jobQueued}
	p.jobs[j.seq] = j
	p.byTest[j.work.test.ID] = j.seq
	p.queue = append(p.queue, j)
}

// remove forgets a job that left the pool.
func (p *pool) remove(j *job) {
	if j.proc >= 0 {
		p.procs[j.proc].outstanding--
	}
	delete(p.jobs, j.seq)
	delete(p.byTest, j.work.test.ID)
	p.s.pipe.processed(1, j.work.bytes())
}

// credit is how many more jobs the processors may take now, less those
// whose attempt is being counted (they go to a processor next).
func (p *pool) credit() int {
	n := 0
	for _, slot := range p.procs {
		if slot.pid != nil {
			n += processorCredit - slot.outstanding
		}
	}
	return n - len(p.starting)
}

// send hands a started job to the least busy processor with credit left,
// or puts it back at the head of the queue when none has any (a processor
// was stopped meanwhile).
func (p *pool) send(ctx actor.Context, j *job) {
	best := -1
	for i, slot := range p.procs {
		if slot.pid != nil && slot.outstanding < processorCredit &&
			(best < 0 || slot.outstanding < p.procs[best].outstanding) {
			best = i
		}
	}
	if best < 0 {
		j.proc = jobQueued
		p.queue = append([]*job{j}, p.queue...)
		return
	}
	j.proc = best
	p.procs[best].outstanding++
	ctx.Send(p.procs[best].pid, &process{seq: j.seq, work: j.work})
}

// failed handles a job whose processor panicked: once more at the head of
// the queue, or "failed" once MaxAttempts attempts were counted.
func (p *pool) failed(ctx actor.Context, msg *jobFailed) {
	j := p.jobs[msg.seq]
	if j == nil {
		return
	}
	if j.proc >= 0 {
		p.procs[j.proc].outstanding--
		j.proc = jobQueued
	}
	if j.attempts < p.s.cfg.MaxAttempts {
		p.s.log.Warn("processing panicked; retrying the test", "test_id", j.work.test.ID, "attempt", j.attempts, "reason", msg.reason)
		p.queue = append([]*job{j}, p.queue...)
		return
	}
	reason := truncate(fmt.Sprintf("processing failed %d times: %s", j.attempts, msg.reason))
	p.s.log.Error("giving up on a test that keeps crashing its processor", "test_id", j.work.test.ID, "reason", reason)
	p.s.sendCompletion(ctx, p.s.failedCompletion(j.work.test, reason), j.work.trace)
	p.remove(j)
}

// terminated replaces a processor that its strategy stopped for good,
// after queueing again the jobs its mailbox held.
func (p *pool) terminated(ctx actor.Context, who *actor.PID) {
	if p.stopping {
		return
	}
	for i, slot := range p.procs {
		if slot.pid == nil || slot.pid.GetId() != who.GetId() {
			continue
		}
		var back []*job
		for _, j := range p.jobs {
			if j.proc == i {
				j.proc = jobQueued
				back = append(back, j)
			}
		}
		slot.outstanding, slot.pid = 0, nil
		p.queue = append(back, p.queue...)
		p.s.log.Warn("replacing a processor that was stopped", "actor", slot.name, "requeued", len(back))
		p.spawn(ctx, i)
	}
}

// handOver runs on the failed incarnation before the restart (which stops
// the processors, dropping their mailboxes): every job goes to the next
// incarnation, still counted as queued in the pipeline. (A count of
// attempts in flight comes back to a pool that no longer knows its jobs:
// those attempts are counted once more.)
func (p *pool) handOver(ctx actor.Context) {
	p.stopping = true
	if len(p.jobs) == 0 {
		return
	}
	jobs := make([]dispatchedTest, 0, len(p.jobs))
	for _, j := range p.jobs {
		jobs = append(jobs, dispatchedTest{work: j.work, attempts: j.attempts})
	}
	ctx.Send(ctx.Self(), &dispatch{jobs: jobs})
}

// processor evaluates one test at a time.
type processor struct {
	s *Service
}

func (p *processor) Receive(ctx actor.Context) {
	if msg, ok := ctx.Message().(*process); ok {
		p.process(ctx, msg)
	}
}

func (p *processor) process(ctx actor.Context, msg *process) {
	var span trace.Span
	if p.s.cfg.Tracer != nil && msg.work.trace.IsValid() {
		t := msg.work.test
		_, span = p.s.cfg.Tracer.Start(trace.ContextWithSpanContext(context.Background(), msg.work.trace), "evaluate test",
			trace.WithAttributes(attrTestID.String(t.ID), attrSensorType.String(t.SensorType)))
	}
	defer func() {
		if r := recover(); r != nil {
			reason := panicReason(r)
			if span != nil {
				tracing.End(span, errors.New("processor panicked: "+reason))
			}
			ctx.Send(ctx.Parent(), &jobFailed{seq: msg.seq, reason: reason})
			panic(r)
		}
	}()
	if h := p.s.cfg.hooks; h != nil {
		if h.beforeProcess != nil {
			h.beforeProcess(msg.work.test)
		}
		if h.panicOn != nil && h.panicOn(msg.work.test) {
			panic("test hook: processor panics on test " + msg.work.test.ID)
		}
	}
	c := p.s.evaluateTest(msg.work)
	var sc trace.SpanContext
	if span != nil {
		span.SetAttributes(attrStatus.String(c.Status))
		span.End()
		sc = span.SpanContext()
	}
	p.s.sendCompletion(ctx, c, sc)
	ctx.Send(ctx.Parent(), &jobDone{seq: msg.seq})
}

// evaluateTest judges a test: its submitted readings, or a simulated
// acquisition when it has none. A test that cannot be evaluated at all (its
// stored request unreadable, its type gone from the catalogue) ends
// "failed".
func (s *Service) evaluateTest(w *work) store.Completion {
	t := w.test
	if w.unreadable {
		return s.failedCompletion(t, "stored request is unreadable")
	}
	spec, ok := acceptance.LookupSpec(t.SensorType)
	if !ok {
		return s.failedCompletion(t, "sensor type "+strconv.Quote(t.SensorType)+" is no longer in the catalogue")
	}
	readings, interval, source := w.readings, w.intervalMS, messages.SourceSubmitted
	if len(readings) == 0 {
		readings, interval = acceptance.Simulate(spec, t.ID)
		source = messages.SourceSimulated
	}
	ev := acceptance.Evaluate(spec, readings, interval, w.reference)
	ev.Source = source
	result, err := ev.Encode()
	if err != nil {
		return s.failedCompletion(t, "evaluation cannot be encoded")
	}
	return s.completion(t, messages.StatusCompleted, result, "", &ev)
}

// failedCompletion ends a test "failed" with reason.
func (s *Service) failedCompletion(t store.Test, reason string) store.Completion {
	return s.completion(t, messages.StatusFailed, nil, truncate(reason), nil)
}

// completion builds the completion of t and its event (a new UUIDv7 event
// id: exactly one completion of a test is ever applied, so exactly one event
// id reaches the outbox).
func (s *Service) completion(t store.Test, status string, result []byte, reason string, ev *acceptance.Evaluation) store.Completion {
	// In microseconds, as the stores keep it: the payload's completed_at
	// and the event's CloudEvents time (the outbox row's) are one instant.
	now := time.Now().UTC().Truncate(time.Microsecond)
	eventID := uuid.Must(uuid.NewV7()).String()
	e := messages.TestCompleted{
		Schema:      messages.EventSchema,
		EventID:     eventID,
		Type:        messages.EventTypeCompleted,
		TestID:      t.ID,
		SensorType:  t.SensorType,
		SensorID:    t.SensorID,
		Owner:       t.Owner,
		Status:      status,
		Reason:      reason,
		CreatedAt:   t.CreatedAt,
		CompletedAt: now,
	}
	if status == messages.StatusFailed {
		e.Type = messages.EventTypeFailed
	}
	if ev != nil {
		stats := ev.Stats
		e.Verdict, e.Source, e.Stats = ev.Verdict, ev.Source, &stats
	}
	payload, err := e.Encode()
	if err != nil {
		// Evaluate returns finite numbers only; this is a bug, and the
		// processor's restart and retry path handles it.
		panic(fmt.Errorf("encode event of test %s: %w", t.ID, err))
	}
	return store.Completion{
		TestID: t.ID,
		Status: status,
		Result: result,
		Reason: reason,
		Event: store.OutboxEvent{
			EventID: eventID, Subject: s.cfg.Subjects.Event(t.SensorType, e.Kind()), Payload: payload,
			SensorID: e.SensorID,
		},
		At:       now,
		Accepted: t.CreatedAt,
	}
}

// panicReason is the text of a panic value, bounded.
func panicReason(r any) string {
	var p *supervise.Panic
	if err, ok := r.(error); ok && errors.As(err, &p) {
		r = p.Value
	}
	return truncate(fmt.Sprint(r))
}

// truncate bounds a reason stored and returned to callers, and keeps it
// valid UTF-8 without NUL bytes (which a PostgreSQL text column refuses).
func truncate(s string) string {
	if len(s) > maxReasonLen {
		s = s[:maxReasonLen] + "..."
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
