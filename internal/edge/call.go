package edge

import (
	"context"
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// call sends req to subject through b and decodes the reply into out (when
// not nil). The raw reply is returned for success answers, which the edge
// passes on as they came.
func (s *Server) call(ctx context.Context, b *breaker.Breaker, subject string, req any, hdr nats.Header, out any) (*nats.Msg, error) {
	return breaker.Call(ctx, b, func(ctx context.Context) (*nats.Msg, error) {
		return natsx.Request(ctx, s.nc, subject, req, hdr, out)
	})
}

// fail answers a failed call: the service's own envelope as it came, the
// service's "unavailable" envelope when it did not answer or its breaker
// is open, and an internal error for a reply that could not be read.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, b *breaker.Breaker, unavailable *messages.Error, err error) {
	var e *messages.Error
	switch {
	case errors.As(err, &e):
		writeError(w, e)
	case errors.Is(err, breaker.ErrOpen), natsx.IsUnreachable(err):
		s.log.Debug("downstream unavailable", "breaker", b.Name(), "route", r.Pattern, "err", err)
		writeError(w, unavailable)
	case r.Context().Err() != nil:
		writeError(w, errCancelled)
	default:
		s.log.Warn("bad reply from downstream", "breaker", b.Name(), "route", r.Pattern, "err", err)
		writeError(w, errInternal)
	}
}
