package sensor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// Messages of the outbox relay.
type (
	// outboxNudge asks for a relay round: the writer sends one after each
	// committed completion batch, the ticker every relayInterval.
	outboxNudge struct{}
	// relayDone is the outcome of one relay round.
	relayDone struct {
		published int
		more      bool
		err       error
	}
)

// outboxRelay publishes the outbox to the SENSOR_EVENTS stream, one batch per
// round on its own goroutine: rows in Seq order and, per sensor, one after
// the other (see publish), with Nats-Msg-Id = event id and the sensor id,
// test id and completion time in headers for the bridge (eventHeaders); a row is deleted only after
// its PubAck. While NATS or JetStream is down the rows wait in the database
// and the ticker retries; nudges that arrive during a round coalesce into
// one more round. While the stream is full the relay backs off
// (relayInterval, doubling up to maxFullBackoff while nothing fits)
// instead of knocking every round, and the breaker stays out of it: one
// log line when the stream fills, one when it has room again.
type outboxRelay struct {
	s     *Service
	busy  bool
	again bool
	// backoff is the pause after the last round found the stream full
	// (0: not full); no round starts before resumeAt.
	backoff  time.Duration
	resumeAt time.Time
}

// maxFullBackoff caps the pause between tries while the stream is full.
const maxFullBackoff = 5 * time.Second

func (r *outboxRelay) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *outboxNudge:
		if r.busy {
			r.again = true
			return
		}
		if time.Now().Before(r.resumeAt) {
			// Backing off from a full stream; the ticker nudges again.
			return
		}
		r.start(ctx)
	case *relayDone:
		r.busy = false
		if msg.err != nil {
			r.s.log.Debug("outbox relay round failed", "err", msg.err)
		}
		if errors.Is(msg.err, errStreamFull) {
			// Double the pause while nothing fits; while the bridge makes
			// room and some of each round fits, keep the shortest.
			r.backoff = min(max(2*r.backoff, relayInterval), maxFullBackoff)
			if msg.published > 0 {
				r.backoff = relayInterval
			}
			r.resumeAt = time.Now().Add(r.backoff)
			r.again = false
			return
		}
		r.backoff, r.resumeAt = 0, time.Time{}
		if msg.more || r.again {
			r.again = false
			r.start(ctx)
		}
	}
}

func (r *outboxRelay) start(ctx actor.Context) {
	s, self := r.s, ctx.Self()
	// While the stream is full, publish in waves even where atomic batches
	// work: a batch is stored only whole, and one larger than the room left
	// would wait for the bridge to make room for all of it, while waves
	// fill what room there is, still in order per sensor.
	waves := r.backoff > 0
	r.busy = s.tasks.goTracked(func() {
		n, more, err := s.relayOnce(waves)
		s.tasks.send(self, &relayDone{published: n, more: more, err: err})
	})
}

// relayOnce publishes one batch of outbox rows and deletes the acknowledged
// ones. more says that a full batch went out and more rows may wait. waves
// publishes in waves even where the stream takes atomic batches.
func (s *Service) relayOnce(waves bool) (published int, more bool, err error) {
	if !s.nc.IsConnected() {
		err := fmt.Errorf("relay outbox: %w", natsx.ErrNotConnected)
		s.jsState.Set(err)
		return 0, false, err
	}
	if !s.streamReady.Load() {
		var stream jetstream.Stream
		err := s.jsb.Do(s.ctx, func(ctx context.Context) (err error) {
			stream, err = natsx.EnsureEventStream(ctx, s.js, s.cfg.Subjects, s.cfg.Stream)
			return err
		})
		if err != nil {
			s.jsState.Set(err)
			return 0, false, err
		}
		s.atomicPublish.Store(natsx.AtomicPublish(stream))
		s.streamReady.Store(true)
		s.jsState.Set(nil)
	}
	rows, err := dbCall(s.data, func(ctx context.Context) ([]store.OutboxRow, error) {
		return s.cfg.Store.OutboxPending(ctx, s.cfg.OutboxBatch)
	})
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
	acked, perr := s.publish(rows, waves || !s.atomicPublish.Load())
	switch {
	case errors.Is(perr, errStreamFull):
		// JetStream answers: only the stream is out of room.
		s.jsState.Set(nil)
		s.streamState.Set(perr)
	case perr != nil:
		s.jsState.Set(perr)
		if errors.Is(perr, jetstream.ErrNoStreamResponse) || errors.Is(perr, nats.ErrNoResponders) {
			// The stream is gone (deleted, or JetStream restarted without
			// it): ensure it again next round.
			s.streamReady.Store(false)
		}
	default:
		s.jsState.Set(nil)
		s.streamState.Set(nil)
	}
	if len(acked) > 0 {
		if _, err := dbCall(s.data, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, s.cfg.Store.DeleteOutbox(ctx, acked)
		}); err != nil {
			// Published but not deleted: the next round publishes them
			// again. JetStream drops such a duplicate by its Nats-Msg-Id
			// only within the stream's duplicate window
			// (--stream-duplicate-window, default 2 min); a database
			// outage longer than that stores it again, and Kafka gets it
			// twice with one event id, which consumers dedupe (delivery is
			// at least once on every hop).
			return len(acked), false, errors.Join(perr, err)
		}
	}
	return len(acked), perr == nil && len(rows) == s.cfg.OutboxBatch, perr
}

// eventHeaders are the NATS headers of row's event, so that the bridge
// keys the Kafka record and fills its CloudEvents attributes without reading
// the payload (the event type is the subject's last token): the event id,
// the sensor id, the test id and the completion time (the row's CreatedAt).
// A row written before the outbox kept the sensor id (or by an older sensor
// role during an upgrade) has it empty: it comes from the payload then, and
// so does a missing test id. A payload that does not decode gives none, and
// the bridge dead-letters the event with the reason.
func (s *Service) eventHeaders(row store.OutboxRow) natsx.EventHeaders {
	h := natsx.EventHeaders{EventID: row.EventID, SensorID: row.SensorID, TestID: row.TestID, Time: row.CreatedAt}
	if h.SensorID != "" && h.TestID != "" {
		return h
	}
	ev, err := messages.DecodeEvent(row.Payload)
	if err != nil {
		s.log.Warn("outbox row without a sensor or test id, and its payload does not decode; the bridge will dead-letter it",
			"event_id", row.EventID, "err", err)
		return h
	}
	h.SensorID = cmp.Or(h.SensorID, ev.SensorID)
	h.TestID = cmp.Or(h.TestID, ev.TestID)
	return h
}

// publish stores rows in SENSOR_EVENTS under the jetstream breaker, in
// outbox order per sensor, and returns the Seq of every row stored (a
// duplicate ack counts: the event is stored).
//
// A JetStream refusal is not final for what follows it: with DiscardNew a
// full stream refuses one event and may take the next (smaller, or sent
// after the bridge made room). So a later event of a sensor must not be
// stored while an earlier one was refused. Where the stream takes atomic
// batches (and waves is false) the rows go out as atomic batches of up to
// atomicBatchMax, in outbox order, each committed and acknowledged before
// the next: a batch is stored whole or not at all, so a refusal leaves the
// refused batch and everything after it in the outbox, behind nothing of
// theirs, at a few round trips per batch however few sensors there are.
// Otherwise the rows go out in waves (publishWaves).
func (s *Service) publish(rows []store.OutboxRow, waves bool) ([]int64, error) {
	var acked []int64
	err := s.jsb.Do(s.ctx, func(ctx context.Context) error {
		heads := make([]natsx.EventHeaders, len(rows))
		for i, row := range rows {
			heads[i] = s.eventHeaders(row)
		}
		if waves {
			stored, err := s.publishInWaves(ctx, rows, heads)
			acked = append(acked, stored...)
			return err
		}
		for len(rows) > 0 {
			if !s.atomicPublish.Load() {
				// The stream stopped taking atomic batches mid-round
				// (see publishAtomic): the rest goes out in waves.
				stored, err := s.publishInWaves(ctx, rows, heads)
				acked = append(acked, stored...)
				return err
			}
			n := min(len(rows), int(s.atomicBatchMax.Load()))
			stored, err := s.publishAtomic(ctx, rows[:n], heads[:n])
			if errors.Is(err, errAtomicUnusable) {
				// The server would not take this batch as one, for a
				// reason that says nothing of the events: publish it in
				// waves, whose plain publishes dedupe by Nats-Msg-Id.
				s.log.Debug("atomic batch refused, publishing it in waves", "err", err)
				stored, err = s.publishInWaves(ctx, rows[:n], heads[:n])
			}
			acked = append(acked, stored...)
			if err != nil {
				return err
			}
			rows, heads = rows[n:], heads[n:]
		}
		return nil
	})
	return acked, err
}

// publishInWaves publishes rows in waves (publishWaves), awaiting each
// wave's PubAcks before the next; after a wave with a refusal nothing more
// is sent. Rows of many sensors keep the pipelining; one busy sensor costs
// a round trip per event.
func (s *Service) publishInWaves(ctx context.Context, rows []store.OutboxRow, heads []natsx.EventHeaders) ([]int64, error) {
	sensors := make([]string, len(rows))
	for i := range rows {
		sensors[i] = heads[i].SensorID
	}
	var acked []int64
	for _, wave := range publishWaves(sensors) {
		stored, err := s.publishWave(ctx, rows, heads, wave)
		acked = append(acked, stored...)
		if err != nil {
			return acked, err
		}
	}
	return acked, nil
}

// publishWaves splits the indexes of a batch's rows, given by their sensor
// ids, into waves: row i is in wave k when k earlier rows have its sensor
// id. Each wave keeps outbox order.
func publishWaves(sensors []string) [][]int {
	seen := make(map[string]int, len(sensors))
	var waves [][]int
	for i, id := range sensors {
		k := seen[id]
		seen[id] = k + 1
		if k == len(waves) {
			waves = append(waves, nil)
		}
		waves[k] = append(waves[k], i)
	}
	return waves
}

// publishWave publishes rows[i] for every i of wave asynchronously and
// waits for their PubAcks. It returns the Seq of the rows stored and the
// first refusal (or send error).
func (s *Service) publishWave(ctx context.Context, rows []store.OutboxRow, heads []natsx.EventHeaders, wave []int) ([]int64, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(wave))
	// spans[j] is the publish span of futures[j]'s event (nil: untraced).
	var spans []trace.Span
	if s.cfg.Tracer != nil {
		spans = make([]trace.Span, 0, len(wave))
		defer func() {
			for _, span := range spans {
				if span != nil {
					tracing.End(span, errors.New("publish abandoned"))
				}
			}
		}()
	}
	var sendErr error
	for _, i := range wave {
		row, h := rows[i], heads[i]
		var span trace.Span
		if s.cfg.Tracer != nil && row.Traceparent != "" {
			span = s.startPublishSpan(row)
			h.Traceparent = tracing.Traceparent(span.SpanContext())
		}
		f, err := s.js.PublishMsgAsync(natsx.EventMsg(row.Subject, h, row.Payload))
		if err != nil {
			sendErr = fmt.Errorf("publish event %s: %w", row.EventID, classifyPublish(err))
			if span != nil {
				tracing.End(span, sendErr)
			}
			break
		}
		futures = append(futures, f)
		if spans != nil {
			spans = append(spans, span)
		}
	}
	// end ends the span of futures[j] (once).
	end := func(j int, err error) {
		if spans != nil && spans[j] != nil {
			tracing.End(spans[j], err)
			spans[j] = nil
		}
	}
	stored := make([]int64, 0, len(futures))
	var ackErr error
	for j, f := range futures {
		row := rows[wave[j]]
		select {
		case <-f.Ok():
			stored = append(stored, row.Seq)
			end(j, nil)
		case err := <-f.Err():
			perr := fmt.Errorf("publish event %s: %w", row.EventID, classifyPublish(err))
			end(j, perr)
			if ackErr == nil {
				ackErr = perr
			}
		case <-ctx.Done():
			return stored, errors.Join(sendErr, fmt.Errorf("wait for pub acks: %w", ctx.Err()))
		}
	}
	return stored, errors.Join(sendErr, ackErr)
}

// startPublishSpan starts the producer span of row's publish, continuing
// the trace of the completion that wrote it (its Traceparent).
func (s *Service) startPublishSpan(row store.OutboxRow) trace.Span {
	ctx := tracing.FromTraceparent(context.Background(), row.Traceparent)
	_, span := s.cfg.Tracer.StartMessaging(ctx, tracing.Messaging{System: tracing.SystemNATS, Destination: row.Subject,
		Operation: "publish", Kind: trace.SpanKindProducer, MessageID: row.EventID, BodySize: len(row.Payload)},
		attrTestID.String(row.TestID))
	return span
}

// errStreamFull marks a publish that SENSOR_EVENTS refused for want of
// room (DiscardNew at its byte or message bound). JetStream is up and
// answering, so it does not count against the jetstream breaker; the
// relay backs off instead, and the outbox keeps the events.
var errStreamFull = errors.New("stream_full: " + messages.StreamEvents + " refuses new events until the bridge drains it")

// jsStoreFailed is JetStream's error code for a message the stream would
// not store (JSStreamStoreFailedF); the description says why.
const jsStoreFailed = 10077

// classifyPublish wraps errStreamFull around a refusal for want of room.
func classifyPublish(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jsStoreFailed &&
		(strings.Contains(apiErr.Description, "maximum bytes exceeded") || strings.Contains(apiErr.Description, "maximum messages exceeded")) {
		return fmt.Errorf("%w (%s)", errStreamFull, apiErr.Description)
	}
	return err
}

// Dependencies of the role's health report that the relay owns.
const (
	// depEventStream is down while SENSOR_EVENTS is full.
	depEventStream = "event_stream"
	// depOutboxBacklog is down while the outbox is at MaxOutboxBacklog
	// and submissions are refused.
	depOutboxBacklog = "outbox_backlog"
)

// errBacklogFull refuses submissions while the outbox is at its bound:
// nothing is stored, and a retry after the events drained is safe.
var errBacklogFull = &messages.Error{Code: messages.CodeBacklogFull,
	Message: "too many events wait to be relayed (outbox backlog at its bound), retry later", RetryAfter: 5}

// backlogCount is the outbox's size as last counted, and its bound.
type backlogCount struct {
	limit    int64 // 0: no bound
	rows     atomic.Int64
	counting atomic.Bool
}

// full says that the outbox was at its bound when last counted.
func (b *backlogCount) full() bool { return b.limit > 0 && b.rows.Load() >= b.limit }

// countBacklog counts the outbox rows on a tracked goroutine (one count at
// a time), so that intake admits by the last count without a query per
// submission. A failed count keeps the last one.
func (s *Service) countBacklog() {
	if !s.outbox.counting.CompareAndSwap(false, true) {
		return
	}
	ok := s.tasks.goTracked(func() {
		defer s.outbox.counting.Store(false)
		n, err := dbCall(s.data, func(ctx context.Context) (int64, error) {
			return s.cfg.Store.OutboxBacklog(ctx)
		})
		if err != nil {
			s.log.Debug("count outbox backlog", "err", err)
			return
		}
		s.outbox.rows.Store(n)
		if s.outbox.full() {
			s.backlogState.Set(fmt.Errorf("%s: %d events wait in the outbox (bound %d); submissions are refused", messages.CodeBacklogFull, n, s.outbox.limit))
		} else {
			s.backlogState.Set(nil)
		}
	})
	if !ok {
		s.outbox.counting.Store(false)
	}
}
