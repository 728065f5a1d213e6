package auth

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/crypto/bcrypt"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/store"
	"sensorhub/messages"
)

// loginActor checks credentials and issues tokens, one login at a time
// (bcrypt is CPU-bound; the pool sets the parallelism). It keeps no state.
type loginActor struct{ s *Service }

func (a *loginActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *loginRequest:
		a.login(m)
	}
}

// login answers one TokenRequest. An unknown user, a wrong password and a
// disabled user all get the same answer after the same bcrypt work, so the
// answer tells nothing about which usernames exist.
func (a *loginActor) login(m *loginRequest) {
	defer m.done()
	defer supervise.ReplyOnPanic(a.s.replyInternal(m.req))
	s := a.s
	req, err := messages.DecodeTokenRequest(m.req.Data())
	if err != nil {
		s.reply(m.req, nil, err)
		return
	}
	if s.cfg.beforeLogin != nil {
		s.cfg.beforeLogin(req.Username)
	}
	user, err := breaker.Call(s.calls, s.db, func(ctx context.Context) (store.User, error) {
		return s.cfg.Store.GetUser(ctx, req.Username)
	})
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		s.dummies.compare(req.Password)
		s.reply(m.req, nil, messages.ErrInvalidCredentials)
		return
	case databaseDown(err):
		s.reply(m.req, nil, messages.ErrDatabaseUnavailable)
		return
	default:
		s.log.Error("login: read user", "err", err)
		s.reply(m.req, nil, errInternal)
		return
	}
	s.dummies.seen(user.PasswordHash)
	if err := bcrypt.CompareHashAndPassword(user.PasswordHash, []byte(req.Password)); err != nil {
		if !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			s.log.Warn("login: unusable password hash", "user", user.Username, "err", err)
		}
		s.reply(m.req, nil, messages.ErrInvalidCredentials)
		return
	}
	if user.Disabled {
		s.log.Info("login refused: user disabled", "user", user.Username)
		s.reply(m.req, nil, messages.ErrInvalidCredentials)
		return
	}
	tok, _, err := s.signer.Issue(user.Username, user.Roles, time.Now())
	if err != nil {
		s.log.Error("login: issue token", "user", user.Username, "err", err)
		s.reply(m.req, nil, errInternal)
		return
	}
	s.reply(m.req, messages.TokenReply{AccessToken: tok, TokenType: "bearer", ExpiresIn: int(s.signer.TTL() / time.Second)}, nil)
}
