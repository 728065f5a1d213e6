package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/messages"
)

// ErrNoResponders means no service instance listens on the subject: the
// service is down. Breakers count it as a failure.
var ErrNoResponders = errors.New("no responders")

// ErrTimeout means the deadline passed before a reply came. The request may
// or may not have been carried out. Breakers count it as a failure.
var ErrTimeout = errors.New("request timed out")

// ErrNotConnected means the NATS connection is down (reconnecting).
var ErrNotConnected = errors.New("nats not connected")

// DefaultRequestTimeout bounds a request whose context has no deadline.
const DefaultRequestTimeout = 2 * time.Second

// Request sends req (JSON-encoded; a []byte is sent as is) to subject with
// the given headers and waits for the reply until ctx's deadline (or
// DefaultRequestTimeout). A micro service error comes back as a
// *messages.Error; a transport failure as ErrNoResponders, ErrTimeout or
// ErrNotConnected (wrapped). The reply body is decoded into out when out is
// not nil. The raw reply is returned for callers that need its headers.
func Request(ctx context.Context, nc *nats.Conn, subject string, req any, hdr nats.Header, out any) (*nats.Msg, error) {
	obs, ok := observers.Load(nc)
	if !ok {
		return request(ctx, nc, subject, req, hdr, out)
	}
	start := time.Now()
	msg, err := request(ctx, nc, subject, req, hdr, out)
	obs.(RequestObserver).ObserveRequest(subject, Outcome(err), time.Since(start))
	return msg, err
}

func request(ctx context.Context, nc *nats.Conn, subject string, req any, hdr nats.Header, out any) (*nats.Msg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	var data []byte
	switch v := req.(type) {
	case nil:
		data = []byte("{}")
	case []byte:
		data = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode request for %s: %w", subject, err)
		}
		data = b
	}
	if nc == nil || nc.IsClosed() || !nc.IsConnected() {
		return nil, fmt.Errorf("request %s: %w", subject, ErrNotConnected)
	}
	msg, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: data, Header: hdr})
	if err != nil {
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return nil, fmt.Errorf("request %s: %w", subject, ErrNoResponders)
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			return nil, fmt.Errorf("request %s: %w", subject, ErrTimeout)
		case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
			errors.Is(err, nats.ErrDisconnected):
			return nil, fmt.Errorf("request %s: %w", subject, ErrNotConnected)
		}
		return nil, fmt.Errorf("request %s: %w", subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		if e, derr := messages.DecodeError(msg.Data); derr == nil {
			return msg, e
		}
		desc := msg.Header.Get(micro.ErrorHeader)
		return msg, messages.NewError(messages.CodeInternal, "service error "+code+": "+desc)
	}
	if out != nil {
		if err := json.Unmarshal(msg.Data, out); err != nil {
			return msg, fmt.Errorf("decode reply from %s: %w", subject, err)
		}
	}
	return msg, nil
}

// RequestObserver is told the outcome and duration of every Request made
// on a connection it observes (for the metrics). It runs on the caller's
// goroutine after each request: it must be quick and must not block.
type RequestObserver interface {
	ObserveRequest(subject, outcome string, took time.Duration)
}

// observers maps a *nats.Conn to its RequestObserver. A connection
// without one costs Request a lock-free map miss.
var observers sync.Map

// Observe makes obs see every Request on nc, until the returned func is
// called.
func Observe(nc *nats.Conn, obs RequestObserver) (stop func()) {
	observers.Store(nc, obs)
	return func() { observers.CompareAndDelete(nc, obs) }
}

// Outcomes of a request, as Outcome names them.
const (
	OutcomeOK           = "ok"            // a success reply
	OutcomeError        = "error"         // an error reply: the service answered
	OutcomeNoResponders = "no_responders" // nobody serves the subject
	OutcomeTimeout      = "timeout"       // no reply within the deadline
	OutcomeNotConnected = "not_connected" // NATS itself is down
	OutcomeFailed       = "failed"        // anything else (encoding, a bad reply)
)

// Outcome names the outcome of a Request by its error.
func Outcome(err error) string {
	var e *messages.Error
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &e):
		return OutcomeError
	case errors.Is(err, ErrNoResponders):
		return OutcomeNoResponders
	case errors.Is(err, ErrTimeout):
		return OutcomeTimeout
	case errors.Is(err, ErrNotConnected):
		return OutcomeNotConnected
	}
	return OutcomeFailed
}

// IsUnreachable reports whether err means the service did not answer at all
// (down, overloaded past its deadline, or NATS itself down).
func IsUnreachable(err error) bool {
	return errors.Is(err, ErrNoResponders) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrNotConnected)
}
