package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/tracing"
	"sensorhub/messages"
)

// pending is one event between JetStream and Kafka: fetched, not yet
// acknowledged.
type pending struct {
	msg  jetstream.Msg
	rec  kafka.Message
	key  string
	seq  uint64 // stream sequence
	size int
	// solo: the broker refused the record as too large in the company of
	// others; write it alone to learn whether it is too large by itself.
	solo bool
	// span is the event's Kafka write, from admission to the ack (nil:
	// untraced); its traceparent is in rec's headers.
	span trace.Span
}

// end ends p's span (once): err nil when Kafka took the event.
func (p *pending) end(err error) {
	if p.span != nil {
		tracing.End(p.span, err)
		p.span = nil
	}
}

// relay moves events from the durable consumer to Kafka. One relay runs
// per bridge process, on the goroutine of relayActor; its state is lost on
// a restart, which is safe: what it held unacknowledged is redelivered.
//
// It holds at most two batches (the one being written and, while writes
// succeed, the next one fetched meanwhile). While a write fails it fetches
// nothing more, retries what failed (in order, with backoff) and tells
// JetStream the held events are still in progress, so that AckWait does
// not expire and nothing is redelivered while Kafka is down.
type relay struct {
	b   *Bridge
	cfg *Config
	log *slog.Logger

	cons jetstream.Consumer
	held []*pending
	// source is the records' CloudEvents source (Subjects.EventSource).
	source []byte

	lastKeepAlive time.Time // last InProgress (or fetch) of the held batch
	lastProbe     time.Time // last time the relay learnt whether Kafka answers
	backoff       time.Duration
	lastWriteOK   bool // the last Kafka write succeeded: worth fetching ahead

	// floor is a stream sequence up to which every event is known to be
	// acknowledged (by this relay, or by the consumer's ack floor); the
	// relay writes an event only when every one before it is, so that a
	// bridge that died holding events does not let later ones overtake
	// them. gapSince is when the relay began waiting for such an event.
	floor    uint64
	gapSince time.Time
}

func newRelay(b *Bridge) *relay {
	return &relay{b: b, cfg: &b.cfg, log: b.log.With("actor", RelayActor), cons: b.currentConsumer(),
		source: []byte(b.cfg.Subjects.EventSource())}
}

// run relays until ctx is cancelled. On the way out, the events it still
// holds are released (Nak) so that another bridge, or the restarted relay,
// takes them at once rather than after AckWait.
func (r *relay) run(ctx context.Context) {
	defer r.release()
	for ctx.Err() == nil {
		if !r.b.nc.IsConnected() {
			r.b.deps.Set(DepNATS, natsx.ErrNotConnected)
			r.pause(ctx, 100*time.Millisecond)
			continue
		}
		r.b.deps.Set(DepNATS, nil)
		if r.cons == nil {
			if err := r.setup(ctx); err != nil {
				r.fail(ctx, err)
				continue
			}
		}
		if len(r.held) == 0 {
			if r.b.kafka.Open() || r.b.kafka.State() == messages.BreakerHalfOpen {
				// Kafka is down: fetch nothing (events stay pending in
				// JetStream), and probe when the breaker lets a call through.
				r.probeWhenAllowed(ctx)
				continue
			}
			if err := r.fetch(ctx); err != nil {
				r.fail(ctx, err)
				continue
			}
			if len(r.held) == 0 {
				r.probeIfIdle(ctx)
				continue
			}
		}
		r.drain(ctx)
	}
}

func (r *relay) setup(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := r.b.ensure(sctx)
	if err != nil {
		return err
	}
	r.cons = c
	return nil
}

// fail records a NATS-side failure and backs off before the next attempt.
func (r *relay) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	r.b.counts.recordError(err)
	r.log.Debug("relay: jetstream step failed", "err", err)
	r.pause(ctx, r.nextBackoff())
}

// fetch takes whatever is available, up to a batch, without waiting; when
// nothing is, it waits up to FetchWait for one event and then takes what
// came with it. (A Fetch of a whole batch would wait for the batch to fill
// or the wait to expire, delaying a trickle of events by FetchWait.)
func (r *relay) fetch(ctx context.Context) error {
	msgs, err := collect(r.cons.FetchNoWait(r.cfg.BatchSize))
	if err != nil && ackPendingFull(err) {
		// All bridges together hold MaxAckPending events: JetStream is
		// fine, there is just nothing this bridge may take yet.
		r.b.deps.Set(DepJetStream, nil)
		r.pause(ctx, 100*time.Millisecond)
		return nil
	}
	if err != nil {
		return r.fetchFailed(err)
	}
	if len(msgs) == 0 {
		fctx, cancel := context.WithTimeout(ctx, r.cfg.FetchWait)
		msgs, err = collect(r.cons.Fetch(1, jetstream.FetchContext(fctx)))
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return r.fetchFailed(err)
		}
		if len(msgs) > 0 && r.cfg.BatchSize > 1 {
			more, err := collect(r.cons.FetchNoWait(r.cfg.BatchSize - 1))
			msgs = append(msgs, more...)
			if err != nil {
				r.log.Debug("relay: fetch after wait", "err", err)
			}
		}
	}
	r.b.deps.Set(DepJetStream, nil)
	r.backoff = 0
	r.admit(ctx, msgs)
	return nil
}

func collect(batch jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, batch.Error()
}

// ackPendingFull reports JetStream's answer to a pull when the consumer's
// MaxAckPending is reached (a status without a sentinel error).
func ackPendingFull(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "maxackpending")
}

func (r *relay) fetchFailed(err error) error {
	err = fmt.Errorf("fetch from %s: %w", messages.ConsumerBridge, err)
	r.b.deps.Set(DepJetStream, err)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrConsumerDeleted) {
		// Deleted under us (an operator, or a store lost): create again.
		r.cons = nil
	}
	return err
}

// admit turns fetched messages into held records, dead-lettering those
// that can never be written. The bridge does not read payloads: the outbox
// relay puts the event id (Nats-Msg-Id), the sensor id (the record key),
// the test id and the completion time in the NATS headers, the subject
// names the event type, and the payload goes to Kafka as it is.
func (r *relay) admit(ctx context.Context, msgs []jetstream.Msg) {
	if len(r.held) == 0 {
		// The AckWait of these events starts now; events already held
		// keep their own schedule.
		r.lastKeepAlive = time.Now()
	}
	for _, m := range msgs {
		var seq uint64
		if meta, err := m.Metadata(); err == nil {
			seq = meta.Sequence.Stream
		}
		h, err := readHeaders(m)
		if err != nil {
			r.deadLetter(ctx, m, seq, err.Error())
			continue
		}
		p := &pending{msg: m, rec: h.record(m.Data(), seq, r.source), key: h.sensorID, seq: seq}
		if r.cfg.Tracer != nil {
			r.trace(p, h, m.Headers().Get(messages.HeaderTraceparent))
		}
		p.size = recordSize(&p.rec)
		if p.size > r.cfg.MaxMessageBytes {
			reason := fmt.Sprintf("record of %d bytes exceeds the %d-byte limit", p.size, r.cfg.MaxMessageBytes)
			p.end(errors.New(reason))
			r.deadLetter(ctx, m, seq, reason)
			continue
		}
		r.held = append(r.held, p)
	}
	// A redelivered event (one another bridge held) comes after later
	// ones this relay holds already: keep stream order.
	slices.SortStableFunc(r.held, func(a, b *pending) int { return cmp.Compare(a.seq, b.seq) })
	r.b.counts.setHeld(len(r.held))
}

// eventHeaders is what the bridge relays an event by.
type eventHeaders struct {
	eventID, sensorID, testID, eventTime, eventType string
}

// readHeaders takes the event id, sensor id, test id and completion time
// from m's headers and the event type from its subject, or says which are
// missing (or, for the time, not RFC 3339: a CloudEvents consumer would
// refuse the record).
func readHeaders(m jetstream.Msg) (eventHeaders, error) {
	return headersOf(m.Headers(), m.Headers().Get(messages.HeaderMsgID), m.Subject())
}

// headersOf is readHeaders of an event with headers hdr on subject, whose
// id is eventID (a dead letter keeps it under another header).
func headersOf(hdr nats.Header, eventID, subject string) (eventHeaders, error) {
	h := eventHeaders{
		eventID:   eventID,
		sensorID:  hdr.Get(messages.HeaderSensorID),
		testID:    hdr.Get(messages.HeaderTestID),
		eventTime: hdr.Get(messages.HeaderEventTime),
		eventType: messages.EventTypeOfSubject(subject),
	}
	var missing []string
	for _, f := range []struct{ name, value string }{
		{messages.HeaderMsgID, h.eventID},
		{messages.HeaderSensorID, h.sensorID},
		{messages.HeaderTestID, h.testID},
		{messages.HeaderEventTime, h.eventTime},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "event without the header "+strings.Join(missing, ", "))
	}
	if h.eventTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, h.eventTime); err != nil {
			problems = append(problems, fmt.Sprintf("header %s %q is not an RFC 3339 time", messages.HeaderEventTime, h.eventTime))
		}
	}
	if h.eventType == "" {
		problems = append(problems, fmt.Sprintf("subject %q names no event type (its last token is not %s or %s)",
			subject, messages.EventKindCompleted, messages.EventKindFailed))
	}
	if len(problems) > 0 {
		return h, errors.New(strings.Join(problems, "; "))
	}
	return h, nil
}

// Header values that are the same on every record, shared by all of them
// (kafka-go only reads them).
var (
	streamHeaderValue      = []byte(messages.StreamEvents)
	contentTypeHeaderValue = []byte(messages.ContentTypeJSON)
	specVersionHeaderValue = []byte(messages.CloudEventsSpecVersion)
	eventTypeHeaderValues  = map[string][]byte{
		messages.EventTypeCompleted: []byte(messages.EventTypeCompleted),
		messages.EventTypeFailed:    []byte(messages.EventTypeFailed),
	}
)

// record is the Kafka record of the event: its payload unchanged, keyed
// by the sensor id, with today's headers and the CloudEvents attributes
// (binary mode; source is Subjects.EventSource, the same for every record).
// The values of one record share one buffer, and the constant ones are
// shared by all: two allocations per record (the buffer and the header
// list), where the five headers before CloudEvents took four.
func (h eventHeaders) record(payload []byte, seq uint64, source []byte) kafka.Message {
	buf := make([]byte, 0, len(h.sensorID)+len(h.eventID)+len(h.testID)+len(h.eventTime)+20)
	buf = append(buf, h.sensorID...)
	key := buf[:len(buf):len(buf)] // full slice expressions: later appends never show through
	n := len(buf)
	buf = append(buf, h.eventID...)
	id := buf[n:len(buf):len(buf)]
	n = len(buf)
	buf = append(buf, h.testID...)
	subject := buf[n:len(buf):len(buf)]
	n = len(buf)
	buf = append(buf, h.eventTime...)
	at := buf[n:len(buf):len(buf)]
	n = len(buf)
	buf = strconv.AppendUint(buf, seq, 10)
	sequence := buf[n:len(buf):len(buf)]
	typ := eventTypeHeaderValues[h.eventType]
	return kafka.Message{
		Key:   key,
		Value: payload,
		Headers: []kafka.Header{
			{Key: messages.KafkaHeaderEventID, Value: id},
			{Key: messages.KafkaHeaderEventType, Value: typ},
			{Key: messages.KafkaHeaderStream, Value: streamHeaderValue},
			{Key: messages.KafkaHeaderSequence, Value: sequence},
			{Key: messages.KafkaHeaderContentType, Value: contentTypeHeaderValue},
			{Key: messages.KafkaHeaderCESpecVersion, Value: specVersionHeaderValue},
			{Key: messages.KafkaHeaderCEID, Value: id},
			{Key: messages.KafkaHeaderCEType, Value: typ},
			{Key: messages.KafkaHeaderCESource, Value: source},
			{Key: messages.KafkaHeaderCESubject, Value: subject},
			{Key: messages.KafkaHeaderCETime, Value: at},
		},
	}
}

// trace starts the producer span of p's write as a child of the event's
// traceparent (an event published untraced gets none) and puts the span's
// traceparent into the record's headers. Each record has its own span and
// parent, whichever batch it is written in.
func (r *relay) trace(p *pending, h eventHeaders, traceparent string) {
	if traceparent == "" {
		return
	}
	ctx := tracing.FromTraceparent(context.Background(), traceparent)
	_, p.span = r.cfg.Tracer.StartMessaging(ctx, tracing.Messaging{System: tracing.SystemKafka, Destination: r.cfg.Topic,
		Operation: "send", Kind: trace.SpanKindProducer, MessageID: h.eventID, BodySize: len(p.rec.Value)},
		semconv.MessagingKafkaMessageKey(h.sensorID))
	p.rec.Headers = append(p.rec.Headers, kafka.Header{Key: messages.KafkaHeaderTraceparent,
		Value: []byte(tracing.Traceparent(p.span.SpanContext()))})
}

// drain writes the held batch to Kafka until all of it is acknowledged, or
// ctx ends. Events of one key are written in fetch order: when one fails,
// every later event of its key waits for it, so Kafka never holds them out
// of order.
func (r *relay) drain(ctx context.Context) {
	for len(r.held) > 0 && ctx.Err() == nil {
		r.keepAlive()
		if r.b.kafka.Open() {
			r.waitBreaker(ctx)
			continue
		}
		if !r.inOrder(ctx) {
			continue
		}
		n := r.chunkLen()
		chunk := r.held[:n]
		next := r.prefetch()
		errs, err := r.write(ctx, chunk)
		r.admitPrefetched(ctx, next)
		if errors.Is(err, breaker.ErrOpen) {
			continue
		}
		var (
			retry    []*pending
			failed   uint64
			acked    int
			firstErr error
			blocked  = map[string]bool{}
		)
		for i, p := range chunk {
			var e error
			if errs != nil {
				e = errs[i]
			}
			switch {
			case e == nil && !blocked[p.key]:
				r.ack(p)
				p.end(nil)
				acked++
			case e == nil:
				// Written, but behind an event of its key that was not:
				// write it again after that one (a duplicate, in order).
				retry = append(retry, p)
			case tooLarge(e) && (p.solo || n == 1):
				p.end(e)
				r.deadLetter(ctx, p.msg, p.seq, fmt.Sprintf("kafka refused the record as too large: %v", e))
			case tooLarge(e):
				p.solo = true
				blocked[p.key] = true
				retry = append(retry, p)
			default:
				blocked[p.key] = true
				retry = append(retry, p)
				if p.span != nil {
					p.span.AddEvent("kafka write failed; retrying", trace.WithAttributes(attribute.String("error", e.Error())))
				}
				failed++
				if firstErr == nil {
					firstErr = e
				}
			}
		}
		if acked == n {
			// chunkLen keeps a chunk contiguous from the floor.
			r.floor = chunk[n-1].seq
		}
		r.held = append(retry, r.held[n:]...)
		r.b.counts.setHeld(len(r.held))
		r.lastWriteOK = failed == 0
		if failed > 0 {
			r.b.counts.failed.Add(failed)
			werr := fmt.Errorf("write to kafka topic %s: %w", r.cfg.Topic, firstErr)
			r.b.counts.recordError(werr)
			r.b.deps.Set(DepKafka, werr)
			r.log.Debug("relay: kafka write failed", "failed", failed, "err", firstErr)
			r.pause(ctx, r.nextBackoff())
			continue
		}
		r.b.deps.Set(DepKafka, nil)
		r.lastProbe = time.Now()
		r.backoff = 0
	}
}

// inOrder says whether every event before the first held one is
// acknowledged, so that writing it keeps stream order (and with it the
// order per key). When the relay's own floor does not say so, it asks the
// consumer's ack floor. An event below is delivered to a bridge that has
// not acknowledged it: another bridge writing it now, or one that died
// with it, which JetStream redelivers after AckWait (a stopped bridge
// releases what it holds at once). Meanwhile the relay waits a step, keeps
// its events alive and fetches what is redelivered; past twice AckWait it
// goes on regardless (the event may have left the stream) and says so.
func (r *relay) inOrder(ctx context.Context) bool {
	first := r.held[0].seq
	if first <= r.floor+1 {
		r.gapSince = time.Time{}
		return true
	}
	ictx, cancel := context.WithTimeout(ctx, r.cfg.Breaker.CallTimeout)
	info, err := r.cons.Info(ictx)
	cancel()
	if err == nil && info.AckFloor.Stream+1 >= first {
		r.floor = max(r.floor, info.AckFloor.Stream)
		r.gapSince = time.Time{}
		return true
	}
	now := time.Now()
	if r.gapSince.IsZero() {
		r.gapSince = now
		r.log.Debug("relay: waiting for an earlier event another bridge holds", "first_held", first, "floor", r.floor)
	}
	if now.Sub(r.gapSince) > 2*r.cfg.AckWait {
		r.log.Warn("relay: an earlier event was not redelivered within twice the ack wait; writing later ones", "first_held", first, "floor", r.floor)
		r.floor, r.gapSince = first-1, time.Time{}
		return true
	}
	r.pause(ctx, min(r.cfg.AckWait/10, 100*time.Millisecond))
	if len(r.held) < 2*r.cfg.BatchSize {
		msgs, err := collect(r.cons.FetchNoWait(r.cfg.BatchSize))
		if err != nil && !ackPendingFull(err) {
			r.log.Debug("relay: fetch while waiting for an earlier event", "err", err)
		}
		r.admit(ctx, msgs)
	}
	return false
}

// prefetch starts fetching the next batch while Kafka writes the current
// one, so that the two round trips overlap (they are the bulk of the time
// per batch). Only while all is well: the breaker closed, the last write
// clean, and no more than one batch held; so the relay holds at most two
// batches, and after a failed write no more than it had.
func (r *relay) prefetch() <-chan fetched {
	if r.cons == nil || !r.lastWriteOK || len(r.held) > r.cfg.BatchSize || r.b.kafka.State() != messages.BreakerClosed {
		return nil
	}
	ch := make(chan fetched, 1)
	cons, size := r.cons, r.cfg.BatchSize
	go func() {
		msgs, err := collect(cons.FetchNoWait(size))
		ch <- fetched{msgs: msgs, err: err}
	}()
	return ch
}

type fetched struct {
	msgs []jetstream.Msg
	err  error
}

// admitPrefetched waits for the prefetch (a no-wait fetch: at most about a
// second) and queues what it brought behind the events already held, which
// keeps stream order.
func (r *relay) admitPrefetched(ctx context.Context, next <-chan fetched) {
	if next == nil {
		return
	}
	f := <-next
	if f.err != nil && !ackPendingFull(f.err) {
		// The main loop's next fetch reports it if it persists.
		r.log.Debug("relay: prefetch failed", "err", f.err)
	}
	r.admit(ctx, f.msgs)
}

// chunkLen is how many held records the next WriteMessages call takes:
// at most a batch, within chunkBytes, at least one, and a solo record
// alone; it ends before a gap in the stream sequences (an event held
// elsewhere, or already gone), which inOrder checks next. The writer's
// BatchSize is a batch, so each partition's share of a call is one
// produce request.
func (r *relay) chunkLen() int {
	if r.held[0].solo {
		return 1
	}
	n, size := 0, 0
	for i, p := range r.held {
		if p.solo || n == r.cfg.BatchSize || (n > 0 && size+p.size > chunkBytes) ||
			(i > 0 && p.seq != r.held[i-1].seq+1) {
			break
		}
		n++
		size += p.size
	}
	return n
}

// write makes one WriteMessages call through the breaker and returns the
// per-record outcome (nil: all written) or breaker.ErrOpen. The call gets
// the breaker's deadline but not ctx's cancellation: a write in flight
// when the bridge stops finishes, so that its events are acknowledged
// rather than written twice.
func (r *relay) write(ctx context.Context, chunk []*pending) ([]error, error) {
	recs := make([]kafka.Message, len(chunk))
	for i, p := range chunk {
		recs[i] = p.rec
	}
	return r.b.writeRecords(context.WithoutCancel(ctx), recs)
}

// writeRecords is one WriteMessages call of recs through the breaker,
// within ctx and the breaker's deadline: the per-record outcome (nil: all
// written) or breaker.ErrOpen. Records refused as too large do not count
// against the breaker.
func (b *Bridge) writeRecords(ctx context.Context, recs []kafka.Message) ([]error, error) {
	var errs []error
	err := b.kafka.Do(ctx, func(cctx context.Context) error {
		werr := b.writer.WriteMessages(cctx, recs...)
		errs = perMessage(werr, len(recs))
		for _, e := range errs {
			// Records too large say nothing about Kafka's health.
			if e != nil && !tooLarge(e) {
				return werr
			}
		}
		return nil
	})
	if errors.Is(err, breaker.ErrOpen) {
		return nil, err
	}
	if err != nil && errs == nil {
		// The call never ran (ctx ended first): nothing was written.
		errs = perMessage(err, len(recs))
	}
	return errs, nil
}

// ack acknowledges an event Kafka has taken; it counts as successful even
// if the ack is lost, since Kafka has it.
func (r *relay) ack(p *pending) {
	// A plain ack (no confirmation round trip): if it is lost, the event
	// is redelivered and written again, which at-least-once allows.
	if err := p.msg.Ack(); err != nil {
		r.b.counts.recordError(fmt.Errorf("ack stream sequence %d: %w", p.seq, err))
		r.log.Debug("relay: ack failed; the event will be written again", "seq", p.seq, "err", err)
	}
	r.b.counts.successful.Add(1)
}

// keepAlive resets the AckWait of every held event, at most every third
// of AckWait.
func (r *relay) keepAlive() {
	if len(r.held) == 0 || time.Since(r.lastKeepAlive) < r.cfg.AckWait/3 {
		return
	}
	for _, p := range r.held {
		if err := p.msg.InProgress(); err != nil {
			r.log.Debug("relay: in-progress signal failed", "seq", p.seq, "err", err)
		}
	}
	r.lastKeepAlive = time.Now()
}

// waitBreaker waits, keeping the held events alive, until the breaker lets
// a call through again (half-open) or ctx ends.
func (r *relay) waitBreaker(ctx context.Context) {
	step := r.cfg.Breaker.OpenFor / 10
	step = min(max(step, 10*time.Millisecond), 250*time.Millisecond)
	for r.b.kafka.Open() && ctx.Err() == nil {
		r.pause(ctx, step)
	}
}

// probeWhenAllowed is the breaker's trial call when the relay holds no
// events: a metadata request on a fresh connection. Success closes the
// breaker and fetching resumes.
func (r *relay) probeWhenAllowed(ctx context.Context) {
	r.waitBreaker(ctx)
	if ctx.Err() != nil {
		return
	}
	r.probe(ctx)
}

// probeIfIdle checks Kafka when the relay has had nothing to write for
// ProbeInterval, so that health and kafka_reachable stay current, and so
// that a Kafka lost while idle opens the breaker before events arrive.
func (r *relay) probeIfIdle(ctx context.Context) {
	if time.Since(r.lastProbe) < r.cfg.ProbeInterval {
		return
	}
	r.probe(ctx)
}

func (r *relay) probe(ctx context.Context) {
	err := r.b.kafka.Do(ctx, func(cctx context.Context) error { return probeKafka(cctx, r.cfg, r.b.probe) })
	switch {
	case errors.Is(err, breaker.ErrOpen), ctx.Err() != nil:
		return
	case err != nil:
		r.b.counts.recordError(err)
		r.b.deps.Set(DepKafka, err)
	default:
		r.b.deps.Set(DepKafka, nil)
	}
	r.lastProbe = time.Now()
}

// nextBackoff doubles the pause between failed attempts, from 50ms up to
// the breaker's OpenFor (at most 2s).
func (r *relay) nextBackoff() time.Duration {
	limit := min(r.cfg.Breaker.OpenFor, 2*time.Second)
	switch {
	case r.backoff <= 0:
		r.backoff = 50 * time.Millisecond
	case r.backoff < limit:
		r.backoff *= 2
	}
	r.backoff = min(r.backoff, limit)
	return r.backoff
}

// pause waits d or until ctx ends, keeping held events alive meanwhile.
func (r *relay) pause(ctx context.Context, d time.Duration) {
	step := r.cfg.AckWait / 3
	for d > 0 && ctx.Err() == nil {
		s := min(d, step)
		t := time.NewTimer(s)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		d -= s
		r.keepAlive()
	}
}

// errReleased ends the span of an event a stopping relay handed back.
var errReleased = errors.New("released for redelivery: the relay stopped")

// release hands the held events back to JetStream for immediate
// redelivery.
func (r *relay) release() {
	for _, p := range r.held {
		_ = p.msg.Nak()
		p.end(errReleased)
	}
	if len(r.held) > 0 {
		r.log.Info("relay stopped with events not yet in kafka; released them for redelivery", "events", len(r.held))
	}
	r.held = nil
	r.b.counts.setHeld(0)
}
