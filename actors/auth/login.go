package auth

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/crypto/bcrypt"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/store"
	"sensorhub/messages"
)

// loginActor checks credentials: it issues tokens and answers the NATS
// auth callout, one at a time (bcrypt is CPU-bound; the pool sets the
// parallelism). It keeps no state.
type loginActor struct{ s *Service }

func (a *loginActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *loginRequest:
		a.login(m)
	case *calloutRequest:
		a.callout(m)
	}
}

// login answers one TokenRequest.
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
	user, err := s.checkPassword(req.Username, req.Password, m.addr(req))
	if err != nil {
		s.reply(m.req, nil, err)
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

// addr is the rate-limit key of the client behind a login. Only the edge
// may publish on the forwarded subject, so only there is the body's
// client_addr believed. A login over `nats req` is keyed by the identity
// whose inbox the reply goes to (a person can read only their own inbox,
// so naming another's gains no answer).
func (m *loginRequest) addr(req messages.TokenRequest) string {
	if m.forwarded {
		if req.ClientAddr != "" {
			return "ip:" + req.ClientAddr
		}
		return "ip:unknown"
	}
	if rest, ok := strings.CutPrefix(m.req.Reply(), "_INBOX_"); ok {
		if owner, _, ok := strings.Cut(rest, "."); ok && owner != "" {
			return "nats:" + owner
		}
	}
	return "nats"
}

// checkPassword checks username and password for a login from addr, within
// the rate limits. An unknown user, a wrong password and a disabled user
// all get the same answer after the same bcrypt work, so the answer tells
// nothing about which usernames exist. Errors are *messages.Error.
func (s *Service) checkPassword(username, password, addr string) (store.User, error) {
	refund, wait, ok := s.limiter.allow(username, addr, time.Now())
	if !ok {
		s.log.Info("login rate limited", "user", username, "client", addr)
		return store.User{}, errRateLimited(wait)
	}
	// Only a wrong answer counts against the limits: a success, or a
	// database that could not be asked, gives the token back.
	failed := false
	defer func() {
		if !failed {
			refund()
		}
	}()
	user, err := breaker.Call(s.calls, s.db, func(ctx context.Context) (store.User, error) {
		return s.cfg.Store.GetUser(ctx, username)
	})
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		s.dummies.compare(password)
		failed = true
		return store.User{}, messages.ErrInvalidCredentials
	case databaseDown(err):
		return store.User{}, messages.ErrDatabaseUnavailable
	default:
		s.log.Error("login: read user", "err", err)
		return store.User{}, errInternal
	}
	s.dummies.seen(user.PasswordHash)
	if err := bcrypt.CompareHashAndPassword(user.PasswordHash, []byte(password)); err != nil {
		if !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			s.log.Warn("login: unusable password hash", "user", user.Username, "err", err)
		}
		failed = true
		return store.User{}, messages.ErrInvalidCredentials
	}
	if user.Disabled {
		s.log.Info("login refused: user disabled", "user", user.Username)
		failed = true
		return store.User{}, messages.ErrInvalidCredentials
	}
	return user, nil
}
