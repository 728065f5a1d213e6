package sensor

import (
	"context"
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
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
// round on its own goroutine: rows in Seq order, published asynchronously
// with Nats-Msg-Id = event id (JetStream drops a republished one) and the
// sensor id and event type in headers for the bridge, and a row
// is deleted only after its PubAck. While NATS or JetStream is down the rows
// wait in the database and the ticker retries; nudges that arrive during a
// round coalesce into one more round.
type outboxRelay struct {
	s     *Service
	busy  bool
	again bool
}

func (r *outboxRelay) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *outboxNudge:
		if r.busy {
			r.again = true
			return
		}
		r.start(ctx)
	case *relayDone:
		r.busy = false
		if msg.err != nil {
			r.s.log.Debug("outbox relay round failed", "err", msg.err)
		}
		if msg.more || r.again {
			r.again = false
			r.start(ctx)
		}
	}
}

func (r *outboxRelay) start(ctx actor.Context) {
	s, self := r.s, ctx.Self()
	r.busy = s.tasks.goTracked(func() {
		n, more, err := s.relayOnce()
		s.tasks.send(self, &relayDone{published: n, more: more, err: err})
	})
}

// relayOnce publishes one batch of outbox rows and deletes the acknowledged
// ones. more says that a full batch went out and more rows may wait.
func (s *Service) relayOnce() (published int, more bool, err error) {
	if !s.nc.IsConnected() {
		err := fmt.Errorf("relay outbox: %w", natsx.ErrNotConnected)
		s.jsState.Set(err)
		return 0, false, err
	}
	if !s.streamReady.Load() {
		err := s.jsb.Do(s.ctx, func(ctx context.Context) error {
			_, err := natsx.EnsureEventStream(ctx, s.js, s.cfg.Subjects, s.cfg.Stream)
			return err
		})
		if err != nil {
			s.jsState.Set(err)
			return 0, false, err
		}
		s.streamReady.Store(true)
		s.jsState.Set(nil)
	}
	rows, err := dbCall(s.data, func(ctx context.Context) ([]store.OutboxRow, error) {
		return s.cfg.Store.OutboxPending(ctx, s.cfg.OutboxBatch)
	})
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
	acked, perr := s.publish(rows)
	if perr != nil {
		s.jsState.Set(perr)
		if errors.Is(perr, jetstream.ErrNoStreamResponse) || errors.Is(perr, nats.ErrNoResponders) {
			// The stream is gone (deleted, or JetStream restarted without
			// it): ensure it again next round.
			s.streamReady.Store(false)
		}
	} else {
		s.jsState.Set(nil)
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

// sensorID is the sensor id of row, which travels in the event's NATS
// headers so that the bridge keys the Kafka record without reading the
// payload (the event type is the subject's last token). A row written
// before the outbox kept it (or by an older sensor role during an upgrade)
// has it empty: it comes from the payload then. A payload that does not
// decode gives none, and the bridge dead-letters the event with the reason.
func (s *Service) sensorID(row store.OutboxRow) string {
	if row.SensorID != "" {
		return row.SensorID
	}
	ev, err := messages.DecodeEvent(row.Payload)
	if err != nil {
		s.log.Warn("outbox row without a sensor id, and its payload does not decode; the bridge will dead-letter it",
			"event_id", row.EventID, "err", err)
		return ""
	}
	return ev.SensorID
}

// publish sends rows to JetStream asynchronously under the jetstream breaker
// and waits for their PubAcks until the call's deadline. It returns the Seq
// of every acknowledged row (a duplicate ack counts: the event is stored).
func (s *Service) publish(rows []store.OutboxRow) ([]int64, error) {
	var acked []int64
	err := s.jsb.Do(s.ctx, func(ctx context.Context) error {
		futures := make([]jetstream.PubAckFuture, 0, len(rows))
		var sendErr error
		for _, row := range rows {
			f, err := s.js.PublishMsgAsync(natsx.EventMsg(row.Subject, row.EventID, s.sensorID(row), row.Payload))
			if err != nil {
				sendErr = fmt.Errorf("publish event %s: %w", row.EventID, err)
				break
			}
			futures = append(futures, f)
		}
		var ackErr error
		for i, f := range futures {
			select {
			case <-f.Ok():
				acked = append(acked, rows[i].Seq)
			case err := <-f.Err():
				if ackErr == nil {
					ackErr = fmt.Errorf("publish event %s: %w", rows[i].EventID, err)
				}
			case <-ctx.Done():
				return errors.Join(sendErr, fmt.Errorf("wait for pub acks: %w", ctx.Err()))
			}
		}
		return errors.Join(sendErr, ackErr)
	})
	return acked, err
}
