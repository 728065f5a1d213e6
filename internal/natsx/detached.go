package natsx

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// detachedRequest is a micro.Request that an actor answers after the micro
// handler has returned. The library's own request must not be answered
// then: its Respond and Error record the outcome in a field that the
// library reads, unsynchronised, for its statistics as soon as the handler
// returns (a data race). This one publishes the same reply (body, and for
// errors the Nats-Service-Error and Nats-Service-Error-Code headers)
// straight to the reply subject. The price: the service's NumErrors and
// processing time do not count what the actors do.
type detachedRequest struct {
	nc      *nats.Conn
	subject string
	reply   string
	data    []byte
	headers micro.Headers
}

var _ micro.Request = (*detachedRequest)(nil)

// Detach copies what an actor needs from req, in the micro handler, and
// returns a request the actor may answer later from any goroutine.
func Detach(nc *nats.Conn, req micro.Request) micro.Request {
	return &detachedRequest{nc: nc, subject: req.Subject(), reply: req.Reply(), data: req.Data(), headers: req.Headers()}
}

func (r *detachedRequest) Data() []byte           { return r.data }
func (r *detachedRequest) Headers() micro.Headers { return r.headers }
func (r *detachedRequest) Subject() string        { return r.subject }
func (r *detachedRequest) Reply() string          { return r.reply }

func (r *detachedRequest) Respond(data []byte, opts ...micro.RespondOpt) error {
	return r.publish(&nats.Msg{Data: data}, opts)
}

func (r *detachedRequest) RespondJSON(v any, opts ...micro.RespondOpt) error {
	b, err := json.Marshal(v)
	if err != nil {
		return micro.ErrMarshalResponse
	}
	return r.Respond(b, opts...)
}

func (r *detachedRequest) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	if code == "" {
		return fmt.Errorf("%w: error code", micro.ErrArgRequired)
	}
	if description == "" {
		return fmt.Errorf("%w: description", micro.ErrArgRequired)
	}
	msg := &nats.Msg{
		Header: nats.Header{micro.ErrorHeader: []string{description}, micro.ErrorCodeHeader: []string{code}},
		Data:   data,
	}
	return r.publish(msg, opts)
}

func (r *detachedRequest) publish(msg *nats.Msg, opts []micro.RespondOpt) error {
	for _, o := range opts {
		o(msg)
	}
	if r.reply == "" {
		return nil // a publish, not a request: nobody waits
	}
	msg.Subject = r.reply
	if err := r.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("%w: %w", micro.ErrRespond, err)
	}
	return nil
}
