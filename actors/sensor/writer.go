package sensor

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/breaker"
	"sensorhub/internal/store"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// Messages of the writer.
type (
	// insertTest asks the writer to store an authenticated submission.
	insertTest struct{ sub *submission }
	// insertsDone is the outcome of one InsertTests group commit. It
	// carries its submissions, so that a restarted writer still answers them.
	insertsDone struct {
		batch   []*submission
		results []store.InsertResult
		err     error
		at      time.Time
	}
	// completeTest asks the writer to finish a test. Its sender has counted
	// it as sent in the pipeline (Service.sendCompletion). trace is the span
	// of the test's evaluation (not valid when untraced).
	completeTest struct {
		c     store.Completion
		trace trace.SpanContext
	}
	// completionsDone is the outcome of one CompleteTests group commit.
	completionsDone struct {
		batch   []*pendingCompletion
		applied []bool
		err     error
	}
	// retryCompletions ends the backoff after a failed CompleteTests.
	retryCompletions struct{}
)

// sendCompletion hands a completion to the writer, counting it in the
// pipeline first. parent is the span its commit continues (the test's
// evaluation; not valid for an untraced test).
func (s *Service) sendCompletion(ctx actor.Context, c store.Completion, parent trace.SpanContext) {
	s.pipe.completionSent()
	ctx.Send(s.writerPID, &completeTest{c: c, trace: parent})
}

// pendingCompletion is a completion waiting for its commit.
type pendingCompletion struct {
	c store.Completion
	// parent is the span the completion continues, span its share of the
	// completion group commit (nil when untraced), whose traceparent the
	// outbox row keeps.
	parent trace.SpanContext
	span   trace.Span
	// failures counts commits that failed for anything but an outage; solo
	// marks one to be retried alone, so that one bad completion cannot
	// hold a whole batch back.
	failures int
	solo     bool
}

const (
	// completionBackoffMin and Max bound the wait between two commits of
	// completions while the database is down.
	completionBackoffMin = 100 * time.Millisecond
	completionBackoffMax = 5 * time.Second
	// maxCompletionFailures is how often a completion may fail for a reason
	// other than an outage before it is dropped (logged; the sweeper
	// processes its test again once the lease ends).
	maxCompletionFailures = 3
)

// writer is the store writer: it group-commits inserts and completions.
// While one transaction of a kind runs (on its own goroutine, the result
// coming back as a message), new requests accumulate; when it ends, the
// next batch goes at once. Inserts and completions run independently.
type writer struct {
	// What the writer uses of the role, and nothing else.
	data          *database // the store behind its breaker
	pipe          *pipeline
	outcomes      *outcomes
	tasks         *tasks
	ctx           context.Context // ends at Stop
	log           *slog.Logger
	insertBatch   int
	completeBatch int
	dispatch      func(ctx actor.Context, jobs []dispatchedTest) // to the processor pool
	outboxPID     *actor.PID                                     // nudged after each commit
	tracer        *tracing.Tracer                                // nil: tracing off
	dialect       string                                         // the store's, for the spans

	inserts    []*submission // waiting for the next insert batch
	insertBusy bool

	completions  []*pendingCompletion // waiting for the next completion batch
	completeBusy bool
	backoff      time.Duration // current wait after an outage; 0 when healthy
	waiting      bool          // a retryCompletions is scheduled
}

func newWriter(s *Service) *writer {
	return &writer{
		data: s.data, pipe: s.pipe, outcomes: &s.outcomes, tasks: s.tasks, ctx: s.ctx, log: s.log,
		insertBatch: s.cfg.InsertBatch, completeBatch: s.cfg.CompleteBatch,
		dispatch: s.dispatchJobs, outboxPID: s.outboxPID, tracer: s.cfg.Tracer, dialect: s.cfg.Store.Dialect(),
	}
}

func (w *writer) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *insertTest:
		if msg.sub.span != nil {
			msg.sub.insertSpan = w.startCommitSpan(msg.sub.spanContext(), "insert tests")
		}
		w.inserts = append(w.inserts, msg.sub)
		w.flushInserts(ctx)
	case *insertsDone:
		w.insertsDone(ctx, msg)
	case *completeTest:
		p := &pendingCompletion{c: msg.c, parent: msg.trace}
		if w.tracer != nil && msg.trace.IsValid() {
			p.span = w.startCommitSpan(msg.trace, "complete tests")
			p.c.Event.Traceparent = tracing.Traceparent(p.span.SpanContext())
		}
		w.completions = append(w.completions, p)
		w.flushCompletions(ctx)
	case *completionsDone:
		w.completionsDone(ctx, msg)
	case *retryCompletions:
		w.waiting = false
		w.flushCompletions(ctx)
	case *actor.Restarting:
		w.handOver(ctx)
	case *actor.Stopping:
		w.fail(errStopping)
		w.pipe.abandoned(len(w.completions))
		endCompletionSpans(w.completions, errStopping)
		w.completions = nil
	}
	w.pipe.insertsWaiting(len(w.inserts))
}

// startCommitSpan starts a test's share of a group commit (its wait for
// the batch and the batch's transaction), as a child of parent.
func (w *writer) startCommitSpan(parent trace.SpanContext, name string) trace.Span {
	ctx := trace.ContextWithSpanContext(context.Background(), parent)
	_, span := w.tracer.Start(ctx, name, trace.WithAttributes(semconv.DBSystemNameKey.String(dbSystemName(w.dialect))))
	return span
}

// dbSystemName is the semantic conventions' name of a store dialect.
func dbSystemName(dialect string) string {
	if dialect == "postgres" {
		return "postgresql"
	}
	return dialect
}

// logContext is the context of the completion's log lines (with its span).
func (p *pendingCompletion) logContext() context.Context {
	if p.span == nil {
		return context.Background()
	}
	return trace.ContextWithSpan(context.Background(), p.span)
}

// endCompletionSpans ends the spans of completions that leave the writer
// (err: given up; nil: committed).
func endCompletionSpans(ps []*pendingCompletion, err error) {
	for _, p := range ps {
		if p.span != nil {
			tracing.End(p.span, err)
			p.span = nil
		}
	}
}

// handOver runs on the failed incarnation before the restart. The queued
// submissions were never told "processing": they get an error and may be
// retried. The queued completions are sent to the next incarnation (they
// stay counted as completing in the pipeline); a batch in flight comes back to it by itself.
func (w *writer) handOver(ctx actor.Context) {
	w.fail(errInternal)
	endCompletionSpans(w.completions, errInternal)
	for _, p := range w.completions {
		ctx.Send(ctx.Self(), &completeTest{c: p.c, trace: p.parent})
	}
	w.completions = nil
}

func (w *writer) fail(err error) {
	for _, sub := range w.inserts {
		sub.fail(err)
	}
	w.inserts = nil
}

func (w *writer) flushInserts(ctx actor.Context) {
	if w.insertBusy || len(w.inserts) == 0 {
		return
	}
	n, size := 0, 0
	for n < len(w.inserts) && n < w.insertBatch {
		size += len(w.inserts[n].test.Request)
		if n > 0 && size > maxInsertBytes {
			break
		}
		n++
	}
	batch := w.inserts[:n:n]
	w.inserts = w.inserts[n:]
	tests := make([]store.NewTest, len(batch))
	for i, sub := range batch {
		tests[i] = sub.test
		if sub.insertSpan != nil {
			sub.insertSpan.SetAttributes(semconv.DBOperationBatchSize(len(batch)))
		}
	}
	w.insertBusy = true
	self, data, tasks := ctx.Self(), w.data, w.tasks
	at := time.Now().UTC()
	if !tasks.goTracked(func() {
		res, err := dbCall(data, func(ctx context.Context) ([]store.InsertResult, error) {
			return data.store.InsertTests(ctx, tests)
		})
		if err == nil && len(res) != len(tests) {
			err = errors.New("insert tests: store returned a result per test of another batch")
		}
		tasks.send(self, &insertsDone{batch: batch, results: res, err: err, at: at})
	}) {
		w.insertsDone(ctx, &insertsDone{batch: batch, err: context.Canceled})
	}
}

// insertsDone answers every caller of the batch: "processing" only now that
// the tests are committed (a duplicate: the earlier test's status; a key
// reused for another body: 422). The new tests (not the duplicates of an
// earlier submission) go to the processor pool.
func (w *writer) insertsDone(ctx actor.Context, msg *insertsDone) {
	w.insertBusy = false
	if msg.err != nil {
		e := w.data.errorOf(msg.err, "insert tests")
		for _, sub := range msg.batch {
			sub.fail(e)
		}
	} else {
		// Dispatch first: the tests are counted as dispatched before their
		// submissions are answered, so Stop's wait for an idle pipeline
		// never sees a gap.
		var jobs []dispatchedTest
		for i, sub := range msg.batch {
			if !msg.results[i].Duplicate {
				wk := newWork(testOf(sub.test, msg.at), &sub.body)
				wk.trace = sub.spanContext()
				jobs = append(jobs, dispatchedTest{work: wk})
			}
		}
		w.dispatch(ctx, jobs)
		for i, sub := range msg.batch {
			r := msg.results[i]
			if r.KeyReused {
				sub.fail(messages.ErrIdempotencyReused)
				continue
			}
			// A duplicate answers what became of the earlier test.
			status := r.Status
			if status == "" {
				status = messages.StatusProcessing
			}
			sub.accept(messages.TestAccepted{
				TestID:    r.ID,
				Status:    status,
				AuthMode:  sub.test.AuthMode,
				Duplicate: r.Duplicate,
			})
		}
	}
	w.flushInserts(ctx)
}

// testOf is the stored form of a test just inserted. CreatedAt is the
// writer's clock when the batch went out; the store's own timestamp is
// microseconds later.
func testOf(t store.NewTest, at time.Time) store.Test {
	return store.Test{
		ID:             t.ID,
		Owner:          t.Owner,
		SensorType:     t.SensorType,
		SensorID:       t.SensorID,
		Request:        t.Request,
		IdempotencyKey: t.IdempotencyKey,
		AuthMode:       t.AuthMode,
		Status:         messages.StatusProcessing,
		LeaseUntil:     t.LeaseUntil,
		CreatedAt:      at,
		UpdatedAt:      at,
	}
}

// dispatchJobs sends jobs to the processor pool, counting them (and the
// bytes they hold) as queued.
func (s *Service) dispatchJobs(ctx actor.Context, jobs []dispatchedTest) {
	if len(jobs) == 0 {
		return
	}
	var size int64
	for _, j := range jobs {
		size += j.work.bytes()
	}
	s.pipe.dispatched(len(jobs), size)
	ctx.Send(s.poolPID, &dispatch{jobs: jobs})
}

func (w *writer) flushCompletions(ctx actor.Context) {
	if w.completeBusy || w.waiting || len(w.completions) == 0 {
		return
	}
	n := min(len(w.completions), w.completeBatch)
	if w.completions[0].solo {
		n = 1
	} else {
		for i := 1; i < n; i++ {
			if w.completions[i].solo {
				n = i
				break
			}
		}
	}
	batch := w.completions[:n:n]
	w.completions = w.completions[n:]
	cs := make([]store.Completion, len(batch))
	for i, p := range batch {
		cs[i] = p.c
		if p.span != nil {
			p.span.SetAttributes(semconv.DBOperationBatchSize(len(batch)))
		}
	}
	w.completeBusy = true
	self, data, tasks := ctx.Self(), w.data, w.tasks
	if !tasks.goTracked(func() {
		applied, err := dbCall(data, func(ctx context.Context) ([]bool, error) {
			return data.store.CompleteTests(ctx, cs)
		})
		if err == nil && len(applied) != len(cs) {
			err = errors.New("complete tests: store returned a result per completion of another batch")
		}
		tasks.send(self, &completionsDone{batch: batch, applied: applied, err: err})
	}) {
		// Stopping: the tests stay "processing" until a sweeper claims them.
		w.completeBusy = false
		w.pipe.abandoned(len(batch) + len(w.completions))
		endCompletionSpans(batch, errStopping)
		endCompletionSpans(w.completions, errStopping)
		w.completions = nil
	}
}

// completionsDone ends a completion commit. On success the outbox relay is
// nudged. An outage puts the batch back at the head of the queue and waits
// with an exponential backoff (the sweeper is the safety net should this
// process die meanwhile). Any other error retries each completion alone, and
// drops one that keeps failing.
func (w *writer) completionsDone(ctx actor.Context, msg *completionsDone) {
	w.completeBusy = false
	switch {
	case msg.err == nil:
		w.backoff = 0
		w.pipe.committed(len(msg.batch))
		w.outcomes.ended(msg.batch, msg.applied)
		for i, p := range msg.batch {
			if p.span != nil {
				p.span.SetAttributes(attrApplied.Bool(msg.applied[i]))
			}
		}
		endCompletionSpans(msg.batch, nil)
		ctx.Send(w.outboxPID, &outboxNudge{})
	case errors.Is(msg.err, context.Canceled) && w.ctx.Err() != nil:
		w.pipe.abandoned(len(msg.batch))
		endCompletionSpans(msg.batch, msg.err)
	case isDatabaseOutage(msg.err) || errors.Is(msg.err, breaker.ErrOpen) || errors.Is(msg.err, store.ErrRetry):
		w.completions = append(msg.batch, w.completions...)
		w.retryLater(ctx)
	default:
		var keep []*pendingCompletion
		for _, p := range msg.batch {
			p.failures++
			if p.failures >= maxCompletionFailures {
				w.log.ErrorContext(p.logContext(), "dropping a completion the store keeps refusing; the sweeper will process the test again",
					"test_id", p.c.TestID, "err", msg.err)
				w.pipe.abandoned(1)
				endCompletionSpans([]*pendingCompletion{p}, msg.err)
				continue
			}
			p.solo = true
			keep = append(keep, p)
		}
		w.completions = append(keep, w.completions...)
		w.retryLater(ctx)
	}
	w.flushCompletions(ctx)
}

// retryLater schedules the next completion commit after the backoff.
func (w *writer) retryLater(ctx actor.Context) {
	w.backoff = min(max(2*w.backoff, completionBackoffMin), completionBackoffMax)
	w.waiting = true
	self, d, tasks, stop := ctx.Self(), w.backoff, w.tasks, w.ctx.Done()
	if !tasks.goTracked(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			tasks.send(self, &retryCompletions{})
		case <-stop:
		}
	}) {
		w.waiting = false
	}
}
