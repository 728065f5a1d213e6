package edge

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// The wait before the second send of a submission, doubled for each next
// one up to the cap; each wait is drawn between half of it and all of it,
// so that the submissions of one outage do not come back in one wave.
const (
	submitBackoffMin = 50 * time.Millisecond
	submitBackoffMax = time.Second
)

// Envelopes of a submission the edge could not settle. errSensorRefused:
// no send reached a sensor process (no responders, the breaker open, the
// edge's NATS down), so nothing is stored.
var errSensorRefused = messages.ErrSensorUnavailable

// newIdempotencyKey gives a submission without one a key of its own, so
// that the edge's retries, and the client's after an outcome_unknown, are
// safe. A UUIDv7 is in the key format messages validates.
func newIdempotencyKey() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// submit sends req to sensorhub.sensor.submit under its idempotency key
// (in hdr and in the body) and decodes the answer into acc. A send whose
// answer is lost (a timeout, or no responders while a sensor process
// restarts) is sent again with the same key, after a backoff, at most
// SubmitAttempts times and within SubmitTimeout; a definite answer of the
// sensor (accepted, 4xx, database unavailable...) ends it at once.
//
// When it gives up, the error says which kind of 503 it is: errSensorRefused
// when no send reached a sensor process, messages.ErrOutcomeUnknown when
// one may have (it went out and no answer came; then even a later 5xx of
// the sensor does not prove that nothing is stored). Any other error is
// the sensor's own envelope, the caller going away, or a reply that could
// not be read.
func (s *Server) submit(ctx context.Context, req messages.SubmitTest, hdr nats.Header, acc *messages.TestAccepted) (*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SubmitTimeout)
	defer cancel()
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	subject := s.subj.SensorSubmit()
	unknown := false // some send went out and was never answered
	backoff := submitBackoffMin
	for attempt := 1; ; attempt++ {
		connected := s.nc.IsConnected()
		msg, err := s.call(ctx, s.sensor, subject, data, hdr, acc)
		if err == nil {
			if attempt > 1 {
				s.stats.submitsRecovered.Add(1)
				s.log.DebugContext(ctx, "submission answered after a retry", "attempts", attempt, "idempotency_key", req.IdempotencyKey)
			}
			return msg, nil
		}
		var e *messages.Error
		switch {
		case errors.As(err, &e):
			// The sensor answered. A 5xx means this send stored nothing,
			// but an earlier one that went unanswered may have.
			if unknown && e.HTTPStatus() >= 500 {
				return nil, s.outcomeUnknown(ctx, req, attempt, err)
			}
			return nil, err
		case errors.Is(err, breaker.ErrOpen):
			// Not sent, and nothing will be until the breaker lets a probe
			// through: no point waiting here.
			return nil, s.givenUp(ctx, req, attempt, unknown, err)
		case errors.Is(err, natsx.ErrNoResponders):
			// Not delivered: no sensor process listens right now.
		case errors.Is(err, natsx.ErrNotConnected) && !connected:
			// Not sent: the edge's own connection was down before it.
		case natsx.IsUnreachable(err):
			unknown = true // sent (or perhaps sent), and no answer came
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
			// SubmitTimeout ended before the send.
			return nil, s.givenUp(ctx, req, attempt, unknown, err)
		default:
			// The caller went away, or a reply that could not be read.
			return nil, err
		}
		if attempt >= s.cfg.SubmitAttempts || !s.waitToRetry(ctx, backoff) {
			return nil, s.givenUp(ctx, req, attempt, unknown, err)
		}
		backoff = min(2*backoff, submitBackoffMax)
		s.stats.submitRetries.Add(1)
		s.log.DebugContext(ctx, "retrying a submission whose answer was lost", "attempt", attempt+1,
			"idempotency_key", req.IdempotencyKey, "err", err)
	}
}

// waitToRetry waits a jittered backoff and reports whether a send may
// follow: false when ctx ends first or would end during the wait.
func (s *Server) waitToRetry(ctx context.Context, backoff time.Duration) bool {
	d := backoff/2 + rand.N(backoff/2+1)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// givenUp is the 503 of a submission that no attempt settled.
func (s *Server) givenUp(ctx context.Context, req messages.SubmitTest, attempts int, unknown bool, err error) error {
	if unknown {
		return s.outcomeUnknown(ctx, req, attempts, err)
	}
	s.stats.sensorRef.Add(1)
	s.log.DebugContext(ctx, "submission refused: no sensor process took it", "attempts", attempts,
		"idempotency_key", req.IdempotencyKey, "err", err)
	return errSensorRefused
}

func (s *Server) outcomeUnknown(ctx context.Context, req messages.SubmitTest, attempts int, err error) error {
	s.stats.outcomeUnknown.Add(1)
	s.log.DebugContext(ctx, "submission outcome unknown: sent and not answered", "attempts", attempts,
		"idempotency_key", req.IdempotencyKey, "err", err)
	return messages.ErrOutcomeUnknown
}
