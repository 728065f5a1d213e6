package auth

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/natsauth"
	"sensorhub/internal/store"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

// calloutQueue is the queue group of the callout subscription: with several
// auth copies, each connect is decided once.
const calloutQueue = "sensorhub-auth"

// calloutRequest is one connecting person, handed to a login actor (a
// password check is a bcrypt round, like a login).
type calloutRequest struct {
	msg  *nats.Msg
	done func()
}

func (s *Service) subscribeCallout() (*nats.Subscription, error) {
	sub, err := s.nc.QueueSubscribe(natsauth.CalloutSubject, calloutQueue, s.handleCallout)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// handleCallout runs on the subscription's goroutine: it only hands the
// request on, or refuses at once when too many logins wait.
func (s *Service) handleCallout(msg *nats.Msg) {
	if !s.logins.acquire() {
		s.refuseCallout(msg, "auth overloaded")
		return
	}
	s.system.Root.Send(s.logins.pick(), &calloutRequest{msg: msg, done: s.logins.release})
}

func (s *Service) refuseCallout(msg *nats.Msg, reason string) {
	req, err := natsauth.OpenRequest(msg, s.cfg.Callout.XKey)
	if err != nil {
		s.log.Warn("auth callout: unreadable request", "err", err)
		return // the server times out and refuses the client
	}
	s.answerCallout(msg, req, "", nil, time.Time{}, reason)
}

// callout decides one connect: a username and password, or a sensorhub
// token passed as the NATS token. The person is admitted with the
// permissions of their stored roles, under their own name.
func (a *loginActor) callout(m *calloutRequest) {
	defer m.done()
	s := a.s
	req, err := natsauth.OpenRequest(m.msg, s.cfg.Callout.XKey)
	if err != nil {
		s.log.Warn("auth callout: unreadable request", "err", err)
		return
	}
	defer supervise.ReplyOnPanic(func(any) { s.answerCallout(m.msg, req, "", nil, time.Time{}, "internal error") })
	opts := req.Claims.ConnectOptions
	addr := "ip:" + req.Claims.ClientInformation.Host
	var (
		user    store.User
		expires time.Time
	)
	switch {
	case opts.Token != "":
		user, expires, err = s.checkToken(opts.Token)
	case opts.Username != "":
		user, err = s.checkPassword(opts.Username, opts.Password, addr)
		expires = time.Now().Add(s.cfg.Callout.UserTTL)
	default:
		err = errNoCredentials
	}
	if err == nil {
		err = personName(user.Username)
	}
	if err != nil {
		s.log.Info("NATS connect refused", "user", opts.Username, "client", req.Claims.ClientInformation.Host, "reason", messages.AsError(err).Message)
		s.answerCallout(m.msg, req, "", nil, time.Time{}, messages.AsError(err).Message)
		return
	}
	perms := natsauth.PersonPermissions(s.cfg.Subjects, user.Username, user.Roles)
	s.answerCallout(m.msg, req, user.Username, &perms, expires, "")
}

// answerCallout grants perms to username until expires, or refuses with
// reason when perms is nil.
func (s *Service) answerCallout(msg *nats.Msg, req *natsauth.CalloutRequest, username string, perms *natsauth.Permissions, expires time.Time, reason string) {
	var (
		payload []byte
		err     error
	)
	if perms != nil {
		payload, err = req.Grant(s.cfg.Callout.Issuer, s.cfg.Callout.XKey, username, *perms, expires)
	} else {
		payload, err = req.Refuse(s.cfg.Callout.Issuer, s.cfg.Callout.XKey, reason)
	}
	if err != nil {
		s.log.Error("auth callout: answer", "err", err)
		return
	}
	if err := msg.Respond(payload); err != nil {
		s.log.Warn("auth callout: respond", "err", err)
	}
}

// checkToken admits a sensorhub token: signature and claims, then the
// user's stored state (a disabled or deleted user is refused; the stored
// roles count). When the database cannot be asked, the signature decides
// with the token's roles, as validation does.
func (s *Service) checkToken(raw string) (store.User, time.Time, error) {
	claims, err := s.verifier.Verify(raw, time.Now())
	if err != nil {
		if errors.Is(err, token.ErrExpiredToken) {
			return store.User{}, time.Time{}, errTokenExpired
		}
		return store.User{}, time.Time{}, messages.ErrUnauthorized
	}
	expires := time.Now().Add(s.cfg.TokenTTL)
	if claims.ExpiresAt != nil {
		expires = claims.ExpiresAt.Time
	}
	user, err := breaker.Call(s.calls, s.db, func(ctx context.Context) (store.User, error) {
		return s.cfg.Store.GetUser(ctx, claims.Subject)
	})
	switch {
	case err == nil && user.Disabled:
		return store.User{}, time.Time{}, errUserDisabled
	case err == nil:
		return user, expires, nil
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, time.Time{}, errUserGone
	default:
		s.log.Warn("auth callout: user not checked, the token's roles count", "user", claims.Subject, "err", err)
		return store.User{Username: claims.Subject, Roles: claims.Roles}, expires, nil
	}
}

// personName refuses a username that cannot be an inbox prefix or that
// would share one with a role (a person named "sensor" would read the
// sensor role's replies).
func personName(name string) error {
	if err := messages.ValidUsername(name); err != nil {
		return messages.NewError(messages.CodeUnauthorized, messages.AsError(err).Message)
	}
	return nil
}
