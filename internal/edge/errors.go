package edge

import (
	"errors"

	"sensorhub/messages"
)

// ErrNoConn is returned by New without a NATS connection.
var ErrNoConn = errors.New("edge: nil NATS connection")

// Envelopes the edge answers by itself.
var (
	errNotFound         = messages.NewError(messages.CodeNotFound, "no such route")
	errMethodNotAllowed = messages.NewError(messages.CodeMethodNotAllowed, "method not allowed on this route")
	errBadRequestLine   = messages.NewError(messages.CodeBadRequest, "bad request")
	errInternal         = messages.NewError(messages.CodeInternal, "internal error")
	errNATSDown         = messages.NewError(messages.CodeUnavailable, "nats disconnected")
	errCancelled        = messages.NewError(messages.CodeUnavailable, "request cancelled")
	errReadBody         = messages.NewError(messages.CodeBadRequest, "could not read the request body")
)
