package bridge

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/messages"
)

// batchHeaderPrefix starts JetStream's batch publish headers
// (Nats-Batch-Id, Nats-Batch-Sequence, Nats-Batch-Commit).
const batchHeaderPrefix = "Nats-Batch-"

// deadLetter moves an event Kafka can never take to SENSOR_EVENTS_DLQ with
// the reason, then acknowledges it, so that one poison event does not stop
// the others behind it. If the dead-letter stream does not take it (NATS
// trouble, or the DLQ is full) the event is neither lost nor acknowledged:
// it is released for a later try.
func (r *relay) deadLetter(ctx context.Context, m jetstream.Msg, seq uint64, reason string) {
	hdr := nats.Header{}
	for k, vs := range m.Headers() {
		// The sensor role's atomic batch headers stay with the event as
		// stored: copied, they would make this publish a batch of its own,
		// which the dead-letter stream (without allow_atomic) refuses.
		if strings.HasPrefix(http.CanonicalHeaderKey(k), batchHeaderPrefix) {
			continue
		}
		hdr[k] = append([]string(nil), vs...)
	}
	// The event id dedupes the event stream; the dead letter is deduped
	// by its place in the stream instead, so that dead-lettering the same
	// message twice (a lost ack) stores it once.
	// The event id, which it replaces, is kept under the name Kafka
	// consumers know it by.
	if id := m.Headers().Get(messages.HeaderMsgID); id != "" {
		hdr.Set(messages.KafkaHeaderEventID, id)
	}
	hdr.Set(messages.HeaderMsgID, messages.StreamEvents+":"+strconv.FormatUint(seq, 10))
	hdr.Set(messages.HeaderDeadLetterReason, reason)
	hdr.Set(messages.HeaderOriginalSubject, m.Subject())
	hdr.Set(messages.HeaderOriginalStream, messages.StreamEvents)
	hdr.Set(messages.HeaderOriginalSequence, strconv.FormatUint(seq, 10))
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_, err := r.b.js.PublishMsg(pctx, &nats.Msg{Subject: r.cfg.Subjects.DeadLetter(), Header: hdr, Data: m.Data()})
	if err != nil {
		err = fmt.Errorf("dead-letter stream sequence %d: %w", seq, err)
		r.b.counts.recordError(err)
		r.log.Warn("relay: could not dead-letter an event; it stays pending", "seq", seq, "reason", reason, "err", err)
		_ = m.NakWithDelay(r.cfg.Breaker.OpenFor)
		return
	}
	if err := m.Ack(); err != nil {
		r.log.Debug("relay: ack of a dead-lettered event failed; it may be dead-lettered again", "seq", seq, "err", err)
	}
	r.b.counts.deadLettered.Add(1)
	r.log.Warn("relay: event dead-lettered", "seq", seq, "subject", m.Subject(), "reason", reason)
}
