package auth

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/store"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

// validateActor checks a token: the signature and claims locally, then that
// its user still exists and is enabled, and answers with the user's roles as
// the database has them now. It keeps no state.
type validateActor struct{ s *Service }

func (a *validateActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *validateRequest:
		a.validate(m)
	}
}

// validate answers one ValidateRequest. The roles in the reply are the
// stored ones, not the token's: a role granted or taken away, like a user
// disabled, counts from the next validation (within the callers' cache TTL),
// not from the token's expiry. When the database cannot be asked, the
// signature decides and the token's roles stand (the same trust the other
// roles' fallback gives); the reply says so in HeaderUserCheck and keeps
// AuthMode "online".
func (a *validateActor) validate(m *validateRequest) {
	defer m.done()
	defer supervise.ReplyOnPanic(a.s.replyInternal(m.req))
	s := a.s
	req, err := messages.DecodeValidateRequest(m.req.Data())
	if err != nil {
		s.reply(m.req, nil, err)
		return
	}
	claims, err := s.verifier.Verify(req.Token, time.Now())
	switch {
	case errors.Is(err, token.ErrExpiredToken):
		s.reply(m.req, nil, errTokenExpired)
		return
	case err != nil:
		s.reply(m.req, nil, messages.ErrUnauthorized)
		return
	}
	check := "ok"
	user, err := breaker.Call(s.calls, s.db, func(ctx context.Context) (store.User, error) {
		return s.cfg.Store.GetUser(ctx, claims.Subject)
	})
	switch {
	case err == nil && user.Disabled:
		s.reply(m.req, nil, errUserDisabled)
		return
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		s.reply(m.req, nil, errUserGone)
		return
	case databaseDown(err):
		check = "skipped"
	default:
		s.log.Error("validate: read user", "err", err)
		check = "skipped"
	}
	roles := claims.Roles
	if check == "ok" {
		roles = user.Roles
	}
	reply := messages.ValidateReply{
		Valid:    true,
		Subject:  claims.Subject,
		Roles:    roles,
		TokenID:  claims.ID,
		AuthMode: messages.AuthModeOnline,
	}
	if reply.Roles == nil {
		reply.Roles = []string{}
	}
	if claims.ExpiresAt != nil {
		reply.ExpiresAt = claims.ExpiresAt.Unix()
	}
	s.reply(m.req, reply, nil, micro.Headers{HeaderUserCheck: []string{check}})
}
