package natsx

import (
	"encoding/json"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/messages"
)

// ReplyJSON answers req with v as JSON. A value that cannot be encoded is
// answered as an internal error, so the caller never waits for a timeout.
func ReplyJSON(req micro.Request, v any, headers ...micro.Headers) error {
	b, err := json.Marshal(v)
	if err != nil {
		return ReplyError(req, messages.NewError(messages.CodeInternal, "encode reply"))
	}
	var opts []micro.RespondOpt
	for _, h := range headers {
		opts = append(opts, micro.WithHeaders(h))
	}
	return req.Respond(b, opts...)
}

// ReplyError answers req with the error envelope: the HTTP-style status in
// the Nats-Service-Error-Code header, the message in Nats-Service-Error and
// {"error","code"} as the body. Errors that are not *messages.Error go out
// as a generic internal error (their detail belongs in the logs).
func ReplyError(req micro.Request, err error) error {
	e := messages.AsError(err)
	return req.Error(strconv.Itoa(e.HTTPStatus()), e.Message, e.JSON())
}

// RespondMsgError answers a plain (non-micro) request with the same error
// shape as ReplyError, so that Request turns it into a *messages.Error.
func RespondMsgError(m *nats.Msg, err error) error {
	e := messages.AsError(err)
	return m.RespondMsg(&nats.Msg{
		Header: nats.Header{
			micro.ErrorHeader:     []string{e.Message},
			micro.ErrorCodeHeader: []string{strconv.Itoa(e.HTTPStatus())},
		},
		Data: e.JSON(),
	})
}
