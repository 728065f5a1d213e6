package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/tracing"
)

// JetStream's atomic batch publish (nats-server 2.12 or later, on a stream
// with allow_atomic), as the server implements it: every message of a batch
// carries Nats-Batch-Id (at most 64 characters) and Nats-Batch-Sequence,
// counting from 1 without gaps; the last one also carries
// Nats-Batch-Commit: 1. The server stages the messages and, at the commit,
// checks the whole batch (dedup, DiscardNew limits, headers) before it
// stores any of it: one refusal refuses the batch. Only the commit needs a
// reply subject; its answer is a PubAck with the last message's sequence,
// the batch id and the count, or the batch's error. Messages before the
// commit go without one (the server would answer each with an empty
// message). A batch whose commit does not arrive within 10 s is abandoned.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	// atomicBatchSize is the server's default bound on a batch's messages
	// (JetStream limit max_batch_size); a server set lower refuses a
	// larger batch as too large, and the relay halves its batches then.
	atomicBatchSize = 1000
)

// JetStream's error codes that refuse an atomic batch for how it was sent,
// not for its events: the batch goes out in waves instead.
const (
	// jsAtomicDisabled: the stream does not (or no longer) allow atomic
	// publish (an older role updated it without allow_atomic).
	jsAtomicDisabled = 10174
	// jsAtomicUnsupportedHeader: a header the batch may not carry.
	jsAtomicUnsupportedHeader = 10177
	// jsAtomicTooLarge: more messages than the server's max_batch_size.
	jsAtomicTooLarge = 10199
	// jsAtomicDuplicate: a message's Nats-Msg-Id is already in the stream's
	// duplicate window (or twice in the batch). Inside an atomic batch a
	// duplicate is not acknowledged as such but refuses the whole batch;
	// it happens when a batch was stored but its rows were not deleted (a
	// lost commit ack, a failed delete). Plain publishes ack the
	// duplicates and store the rest, so the waves unstick the outbox.
	jsAtomicDuplicate = 10201
	// jsDuplicateConflict: a Nats-Msg-Id being stored right now
	// (clustered stream); a duplicate as well.
	jsDuplicateConflict = 10158
)

// errAtomicUnusable marks an atomic batch refused for one of the reasons
// above: nothing of it is stored, and publish sends it in waves.
var errAtomicUnusable = errors.New("atomic batch refused")

// batchAck is the server's answer to a batch commit.
type batchAck struct {
	Error    *jetstream.APIError `json:"error,omitempty"`
	Stream   string              `json:"stream"`
	Sequence uint64              `json:"seq"`
	Batch    string              `json:"batch"`
	Count    int                 `json:"count"`
}

// publishAtomic stores rows in SENSOR_EVENTS as one atomic batch, in order,
// and returns the Seq of every row, or none and the batch's refusal (or
// the send error). ctx bounds the wait for the commit's answer.
func (s *Service) publishAtomic(ctx context.Context, rows []store.OutboxRow, heads []natsx.EventHeaders) ([]int64, error) {
	id := uuid.NewString()
	// spans[i] is the publish span of rows[i] (nil: untraced); they end
	// together, with the batch's outcome.
	var spans []trace.Span
	end := func(err error) {
		for i, span := range spans {
			if span != nil {
				tracing.End(span, err)
				spans[i] = nil
			}
		}
	}
	if s.cfg.Tracer != nil {
		spans = make([]trace.Span, len(rows))
		defer end(errors.New("publish abandoned"))
	}
	fail := func(err error) ([]int64, error) {
		err = fmt.Errorf("publish atomic batch of %d events (%s to %s): %w", len(rows), rows[0].EventID, rows[len(rows)-1].EventID, err)
		end(err)
		return nil, err
	}
	var answer []byte
	for i, row := range rows {
		h := heads[i]
		if spans != nil && row.Traceparent != "" {
			spans[i] = s.startPublishSpan(row)
			h.Traceparent = tracing.Traceparent(spans[i].SpanContext())
		}
		msg := natsx.EventMsg(row.Subject, h, row.Payload)
		msg.Header.Set(hdrBatchID, id)
		msg.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(rows)-1 {
			if err := s.nc.PublishMsg(msg); err != nil {
				// The server abandons the batch without its commit.
				return fail(err)
			}
			continue
		}
		msg.Header.Set(hdrBatchCommit, "1")
		resp, err := s.nc.RequestMsgWithContext(ctx, msg)
		if err != nil {
			// No answer: the batch may be stored or not. Its rows stay in
			// the outbox; if it was stored, the next round's batch is
			// refused as a duplicate and goes out in waves, which dedupe.
			return fail(err)
		}
		answer = resp.Data
	}
	var ack batchAck
	if err := json.Unmarshal(answer, &ack); err != nil {
		return fail(fmt.Errorf("decode the commit's answer: %w", err))
	}
	if ack.Error != nil {
		switch ack.Error.ErrorCode {
		case jsAtomicDisabled:
			// Ensure the stream again next round; meanwhile, waves.
			s.atomicPublish.Store(false)
			s.streamReady.Store(false)
			return fail(fmt.Errorf("%w: %w", errAtomicUnusable, ack.Error))
		case jsAtomicTooLarge:
			s.atomicBatchMax.Store(max(1, int64(len(rows)/2)))
			return fail(fmt.Errorf("%w: %w", errAtomicUnusable, ack.Error))
		case jsAtomicUnsupportedHeader, jsAtomicDuplicate, jsDuplicateConflict:
			return fail(fmt.Errorf("%w: %w", errAtomicUnusable, ack.Error))
		}
		return fail(classifyPublish(ack.Error))
	}
	if ack.Batch != id || ack.Count != len(rows) {
		return fail(fmt.Errorf("commit acknowledged batch %q of %d events, want %q of %d", ack.Batch, ack.Count, id, len(rows)))
	}
	end(nil)
	stored := make([]int64, len(rows))
	for i, row := range rows {
		stored[i] = row.Seq
	}
	return stored, nil
}
