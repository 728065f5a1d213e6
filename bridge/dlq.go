package bridge

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/segmentio/kafka-go"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// The dead-letter operations (sensorhub dlq): admins ask the bridge on
// sensorhub.bridge.dlq.*, and the bridge reads, replays and deletes with
// its own identity (people have no JetStream write or consume rights).
//
// A replay writes the record straight to Kafka through the bridge's writer
// and breaker, the way the relay would have written it (event id, CloudEvents
// attributes, nats-stream and nats-sequence of its original place), and
// deletes the dead letter only once Kafka acknowledged it. It does not go
// back through SENSOR_EVENTS: republished under its own Nats-Msg-Id inside
// the stream's duplicate window, JetStream would drop it without a word,
// and outside the window it would come back under a new sequence behind
// everything published since.

// dlqScanLimit bounds the dead letters one request reads when a reason
// filter skips most of them; the answer's Next goes on from there.
const dlqScanLimit = 4 * messages.MaxDeadLetterPage

// dlqRequestTimeout bounds a list, get or purge; a replay gets the Kafka
// breaker's call timeout on top.
const dlqRequestTimeout = 5 * time.Second

func (b *Bridge) dlqEndpoints() []natsx.Endpoint {
	s := b.cfg.Subjects
	return []natsx.Endpoint{
		{Name: "dlq-list", Subject: s.DeadLetterList(), Handler: b.handleDLQList},
		{Name: "dlq-get", Subject: s.DeadLetterGet(), Handler: b.handleDLQGet},
		{Name: "dlq-replay", Subject: s.DeadLetterReplay(), Handler: b.handleDLQReplay},
		{Name: "dlq-purge", Subject: s.DeadLetterPurge(), Handler: b.handleDLQPurge},
	}
}

func (b *Bridge) reply(req micro.Request, v any, err error) {
	if err != nil {
		_ = natsx.ReplyError(req, err)
		return
	}
	if err := natsx.ReplyJSON(req, v); err != nil {
		b.log.Debug("reply to a dead-letter request", "err", err)
	}
}

func (b *Bridge) handleDLQList(req micro.Request) {
	r, err := messages.DecodeListDeadLetters(req.Data())
	if err != nil {
		b.reply(req, nil, err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, dlqRequestTimeout)
	defer cancel()
	page, err := b.ListDeadLetters(ctx, r)
	b.reply(req, page, err)
}

func (b *Bridge) handleDLQGet(req micro.Request) {
	r, err := messages.DecodeGetDeadLetter(req.Data())
	if err != nil {
		b.reply(req, nil, err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, dlqRequestTimeout)
	defer cancel()
	d, err := b.DeadLetter(ctx, r.Sequence)
	b.reply(req, d, err)
}

func (b *Bridge) handleDLQReplay(req micro.Request) {
	r, err := messages.DecodeReplayDeadLetters(req.Data())
	if err != nil {
		b.reply(req, nil, err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, dlqRequestTimeout+b.cfg.Breaker.CallTimeout)
	defer cancel()
	done, err := b.ReplayDeadLetters(ctx, r.Selection())
	b.reply(req, done, err)
}

func (b *Bridge) handleDLQPurge(req micro.Request) {
	r, err := messages.DecodePurgeDeadLetters(req.Data())
	if err != nil {
		b.reply(req, nil, err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, dlqRequestTimeout)
	defer cancel()
	done, err := b.PurgeDeadLetters(ctx, r.Selection())
	b.reply(req, done, err)
}

// errDLQUnavailable is the answer while JetStream does not answer.
func errDLQUnavailable(err error) error {
	return &messages.Error{Code: messages.CodeUnavailable, Message: "dead-letter stream " + messages.StreamDeadLetter + " unavailable: " + err.Error()}
}

func errNoDeadLetter(seq uint64) *messages.Error {
	return &messages.Error{Code: messages.CodeNotFound, Message: fmt.Sprintf("no dead letter at sequence %d", seq)}
}

func (b *Bridge) dlqStream(ctx context.Context) (jetstream.Stream, error) {
	s, err := b.js.Stream(ctx, messages.StreamDeadLetter)
	if err != nil {
		return nil, errDLQUnavailable(err)
	}
	return s, nil
}

// scan calls f with each dead letter above after, oldest first, until f
// returns false, the stream ends, or dlqScanLimit were read. It returns
// the last sequence read and whether the stream ended there.
func (b *Bridge) scan(ctx context.Context, s jetstream.Stream, after uint64, f func(*jetstream.RawStreamMsg) bool) (last uint64, end bool, err error) {
	lastSeq := s.CachedInfo().State.LastSeq
	last = after
	for range dlqScanLimit {
		if last >= lastSeq {
			return last, true, nil
		}
		m, err := s.GetMsg(ctx, last+1, jetstream.WithGetMsgSubject(b.cfg.Subjects.DeadLetter()))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return lastSeq, true, nil
		}
		if err != nil {
			return last, false, errDLQUnavailable(err)
		}
		last = m.Sequence
		if !f(m) {
			return last, last >= lastSeq, nil
		}
	}
	return last, last >= lastSeq, nil
}

// ListDeadLetters answers a page of dead letters (see messages.ListDeadLetters).
func (b *Bridge) ListDeadLetters(ctx context.Context, r messages.ListDeadLetters) (messages.DeadLetterPage, error) {
	if r.Limit <= 0 {
		r.Limit = messages.DefaultDeadLetterPage
	}
	s, err := b.dlqStream(ctx)
	if err != nil {
		return messages.DeadLetterPage{}, err
	}
	page := messages.DeadLetterPage{DeadLetters: []messages.DeadLetterSummary{}, Total: s.CachedInfo().State.Msgs}
	last, end, err := b.scan(ctx, s, r.After, func(m *jetstream.RawStreamMsg) bool {
		sum := summary(m)
		if strings.Contains(sum.Reason, r.Reason) {
			page.DeadLetters = append(page.DeadLetters, sum)
		}
		return len(page.DeadLetters) < r.Limit
	})
	if err != nil {
		return messages.DeadLetterPage{}, err
	}
	if !end {
		page.Next = last
	}
	return page, nil
}

// DeadLetter answers one dead letter whole, or not_found.
func (b *Bridge) DeadLetter(ctx context.Context, seq uint64) (messages.DeadLetterDetail, error) {
	s, err := b.dlqStream(ctx)
	if err != nil {
		return messages.DeadLetterDetail{}, err
	}
	m, err := b.getDeadLetter(ctx, s, seq)
	if err != nil {
		return messages.DeadLetterDetail{}, err
	}
	d := messages.DeadLetterDetail{DeadLetter: summary(m), Headers: map[string][]string(m.Header)}
	if d.Headers == nil {
		d.Headers = map[string][]string{}
	}
	if utf8.Valid(m.Data) {
		d.Payload, d.PayloadEncoding = string(m.Data), messages.PayloadText
	} else {
		d.Payload, d.PayloadEncoding = base64.StdEncoding.EncodeToString(m.Data), messages.PayloadBase64
	}
	return d, nil
}

func (b *Bridge) getDeadLetter(ctx context.Context, s jetstream.Stream, seq uint64) (*jetstream.RawStreamMsg, error) {
	m, err := s.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, errNoDeadLetter(seq)
	case err != nil:
		return nil, errDLQUnavailable(err)
	case m.Subject != b.cfg.Subjects.DeadLetter():
		return nil, errNoDeadLetter(seq)
	}
	return m, nil
}

func summary(m *jetstream.RawStreamMsg) messages.DeadLetterSummary {
	h := m.Header
	orig, _ := strconv.ParseUint(h.Get(messages.HeaderOriginalSequence), 10, 64)
	return messages.DeadLetterSummary{
		Sequence:         m.Sequence,
		Time:             m.Time.UTC(),
		EventID:          h.Get(messages.KafkaHeaderEventID),
		TestID:           h.Get(messages.HeaderTestID),
		SensorID:         h.Get(messages.HeaderSensorID),
		Subject:          h.Get(messages.HeaderOriginalSubject),
		Stream:           h.Get(messages.HeaderOriginalStream),
		OriginalSequence: orig,
		Reason:           h.Get(messages.HeaderDeadLetterReason),
		Size:             len(m.Data),
	}
}

// selected reads the dead letters sel names: each of its sequences (a
// missing one as a failed result), or up to a page of all of them from
// above After whose reason contains Reason. next is the After of the
// next request (0: no more).
func (b *Bridge) selected(ctx context.Context, s jetstream.Stream, sel messages.DeadLetterSelection, page int) (msgs []*jetstream.RawStreamMsg, missing []messages.DeadLetterResult, next uint64, err error) {
	if !sel.All {
		for _, seq := range sel.Sequences {
			m, err := b.getDeadLetter(ctx, s, seq)
			var e *messages.Error
			if errors.As(err, &e) && e.Code == messages.CodeNotFound {
				missing = append(missing, failed(seq, "", e))
				continue
			}
			if err != nil {
				return nil, nil, 0, err
			}
			msgs = append(msgs, m)
		}
		return msgs, missing, 0, nil
	}
	last, end, err := b.scan(ctx, s, sel.After, func(m *jetstream.RawStreamMsg) bool {
		if strings.Contains(m.Header.Get(messages.HeaderDeadLetterReason), sel.Reason) {
			msgs = append(msgs, m)
		}
		return len(msgs) < page
	})
	if err != nil {
		return nil, nil, 0, err
	}
	if !end {
		next = last
	}
	return msgs, nil, next, nil
}

func failed(seq uint64, eventID string, e *messages.Error) messages.DeadLetterResult {
	return messages.DeadLetterResult{Sequence: seq, EventID: eventID, Status: messages.DeadLetterFailed, Code: e.Code, Error: e.Message}
}

// replayable is a dead letter and the record it becomes.
type replayable struct {
	m   *jetstream.RawStreamMsg
	rec kafka.Message
}

// ReplayDeadLetters writes the selected dead letters to Kafka as the relay
// would have (the original event id as event-id and ce_id, the original
// stream sequence as nats-sequence), and deletes each from the DLQ once
// Kafka acknowledged it. One that still cannot be relayed (a header
// missing, too large) fails with bad_request; while Kafka does not take
// them (down, the breaker open) they fail with unavailable. Failed dead
// letters stay where they are.
func (b *Bridge) ReplayDeadLetters(ctx context.Context, sel messages.DeadLetterSelection) (messages.DeadLettersDone, error) {
	s, err := b.dlqStream(ctx)
	if err != nil {
		return messages.DeadLettersDone{}, err
	}
	msgs, results, next, err := b.selected(ctx, s, sel, min(b.cfg.BatchSize, messages.MaxDeadLetterPage))
	if err != nil {
		return messages.DeadLettersDone{}, err
	}
	source := []byte(b.cfg.Subjects.EventSource())
	var todo []replayable
	for _, m := range msgs {
		sum := summary(m)
		h, err := headersOf(m.Header, sum.EventID, sum.Subject)
		if err != nil {
			results = append(results, failed(m.Sequence, sum.EventID, &messages.Error{Code: messages.CodeBadRequest,
				Message: "still cannot be relayed: " + err.Error()}))
			continue
		}
		rec := h.record(m.Data, sum.OriginalSequence, source)
		if n := recordSize(&rec); n > b.cfg.MaxMessageBytes {
			results = append(results, failed(m.Sequence, sum.EventID, &messages.Error{Code: messages.CodeBadRequest,
				Message: fmt.Sprintf("still cannot be relayed: record of %d bytes exceeds the bridge's %d-byte limit", n, b.cfg.MaxMessageBytes)}))
			continue
		}
		todo = append(todo, replayable{m: m, rec: rec})
	}
	var kafkaErr *messages.Error // once Kafka failed, the rest are not tried
	for len(todo) > 0 {
		n, size := 0, 0
		for n < len(todo) && n < b.cfg.BatchSize && (n == 0 || size+recordSize(&todo[n].rec) <= chunkBytes) {
			size += recordSize(&todo[n].rec)
			n++
		}
		chunk := todo[:n]
		todo = todo[n:]
		if kafkaErr == nil {
			kafkaErr = b.replayChunk(ctx, s, chunk, &results)
			continue
		}
		for _, r := range chunk {
			results = append(results, failed(r.m.Sequence, summary(r.m).EventID, kafkaErr))
		}
	}
	out := messages.DeadLettersDone{Results: results, Next: next}
	for _, r := range results {
		if r.Status == messages.DeadLetterFailed {
			out.Failed++
		} else {
			out.Done++
		}
	}
	if out.Done > 0 || out.Failed > 0 {
		b.log.Info("dlq: replay", "replayed", out.Done, "failed", out.Failed)
	}
	return out, nil
}

// replayChunk writes one chunk and records each outcome; it returns the
// error that stopped Kafka from taking the chunk, if it was Kafka's.
func (b *Bridge) replayChunk(ctx context.Context, s jetstream.Stream, chunk []replayable, results *[]messages.DeadLetterResult) *messages.Error {
	recs := make([]kafka.Message, len(chunk))
	for i, r := range chunk {
		recs[i] = r.rec
	}
	errs, err := b.writeRecords(ctx, recs)
	var kafkaErr *messages.Error
	if errors.Is(err, breaker.ErrOpen) {
		kafkaErr = &messages.Error{Code: messages.CodeUnavailable, Message: "kafka unavailable (breaker " + BreakerName + " open); the dead letter stays"}
	}
	for i, r := range chunk {
		id := summary(r.m).EventID
		var e error
		if errs != nil {
			e = errs[i]
		}
		switch {
		case kafkaErr != nil:
			*results = append(*results, failed(r.m.Sequence, id, kafkaErr))
		case e != nil && tooLarge(e):
			*results = append(*results, failed(r.m.Sequence, id, &messages.Error{Code: messages.CodeBadRequest,
				Message: "still cannot be relayed: kafka refused the record as too large: " + e.Error()}))
		case e != nil:
			b.counts.recordError(fmt.Errorf("replay to kafka topic %s: %w", b.cfg.Topic, e))
			ke := &messages.Error{Code: messages.CodeUnavailable, Message: "kafka did not take it: " + e.Error() + "; the dead letter stays"}
			*results = append(*results, failed(r.m.Sequence, id, ke))
		default:
			res := messages.DeadLetterResult{Sequence: r.m.Sequence, EventID: id, Status: messages.DeadLetterReplayed}
			if err := s.DeleteMsg(context.WithoutCancel(ctx), r.m.Sequence); err != nil {
				// In Kafka, still in the DLQ: a later replay writes it
				// again, which consumers dedupe by its event id.
				res.Error = "in kafka, but not removed from the DLQ: " + err.Error()
			}
			*results = append(*results, res)
		}
	}
	if kafkaErr == nil {
		for _, e := range errs {
			if e != nil && !tooLarge(e) {
				return &messages.Error{Code: messages.CodeUnavailable, Message: "not tried: kafka did not take an earlier dead letter (" + e.Error() + "); the dead letter stays"}
			}
		}
	}
	return kafkaErr
}

// PurgeDeadLetters deletes the selected dead letters for good (the caller
// confirmed it: messages.PurgeDeadLetters).
func (b *Bridge) PurgeDeadLetters(ctx context.Context, sel messages.DeadLetterSelection) (messages.DeadLettersDone, error) {
	s, err := b.dlqStream(ctx)
	if err != nil {
		return messages.DeadLettersDone{}, err
	}
	msgs, results, next, err := b.selected(ctx, s, sel, messages.MaxDeadLetterPage)
	if err != nil {
		return messages.DeadLettersDone{}, err
	}
	out := messages.DeadLettersDone{Next: next}
	for _, m := range msgs {
		id := summary(m).EventID
		if err := s.DeleteMsg(ctx, m.Sequence); err != nil {
			results = append(results, failed(m.Sequence, id, errDLQUnavailable(err).(*messages.Error)))
			continue
		}
		results = append(results, messages.DeadLetterResult{Sequence: m.Sequence, EventID: id, Status: messages.DeadLetterPurged})
	}
	out.Results = results
	for _, r := range results {
		if r.Status == messages.DeadLetterFailed {
			out.Failed++
		} else {
			out.Done++
		}
	}
	if out.Done > 0 {
		b.log.Warn("dlq: purged dead letters", "purged", out.Done, "failed", out.Failed)
	}
	return out, nil
}
