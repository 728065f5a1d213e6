package auth

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/actors/supervise"
	"sensorhub/internal/token"
)

// jwksActor answers the jwks endpoint with the public keys.
type jwksActor struct{ s *Service }

func (a *jwksActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *jwksRequest:
		defer m.done()
		defer supervise.ReplyOnPanic(a.s.replyInternal(m.req))
		a.s.reply(m.req, a.s.signer.JWKS(), nil)
	}
}

// errNotConnected stands for a publish not tried while NATS is down.
var errNotConnected = errors.New("nats not connected")

// Pacing of the JWKS publisher.
const (
	publishMinBackoff = 100 * time.Millisecond
	publishMaxBackoff = 5 * time.Second
	publishTimeout    = 5 * time.Second
)

// publishKeys puts the JWKS into JetStream KV, retrying until it works or
// ctx ends, and again after each reconnect (a NATS that lost its storage
// comes back without the bucket). It logs once when it cannot publish and
// once when it can again.
func (s *Service) publishKeys(ctx context.Context) {
	defer s.wg.Done()
	reconnected := s.nc.StatusChanged(nats.CONNECTED)
	defer s.nc.RemoveStatusListener(reconnected)
	js, err := jetstream.New(s.nc)
	if err != nil {
		s.log.Error("cannot publish JWKS: no JetStream context", "err", err)
		return
	}
	failing := false
	for {
		backoff := publishMinBackoff
		for {
			err := errNotConnected
			if s.nc.IsConnected() {
				pctx, cancel := context.WithTimeout(ctx, publishTimeout)
				err = token.PublishJWKS(pctx, js, s.signer.JWKS(), s.cfg.KeysReplicas)
				cancel()
			}
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if !failing {
				failing = true
				s.log.Warn("cannot publish JWKS to JetStream yet; other roles cannot verify tokens locally until it works; retrying in the background", "err", err)
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-reconnected: // try at once
				t.Stop()
			}
			backoff = min(2*backoff, publishMaxBackoff)
		}
		if failing {
			failing = false
			s.log.Info("JWKS published to JetStream", "kid", s.signer.KeyID())
		}
		select {
		case <-ctx.Done():
			return
		case <-reconnected:
		}
	}
}
