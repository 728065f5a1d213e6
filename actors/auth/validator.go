package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

// ValidatorConfig configures a Validator. Zero fields take the defaults.
type ValidatorConfig struct {
	// Breaker guards the calls to auth.validate (CallTimeout default 500ms:
	// a caller waits at most that long before the local fallback).
	Breaker breaker.Config
	// BreakerName names it after the caller, e.g. "sensor.auth" (default
	// "auth").
	BreakerName string
	Logger      *slog.Logger
}

// Validator authenticates callers for the other roles. It asks auth (which
// also refuses disabled and deleted users) and, when auth does not answer
// or its breaker is open, verifies the token locally with the JWKS cached
// by a token.KeySource, marking the reply AuthMode "fallback". It is safe
// for concurrent use.
type Validator struct {
	nc   *nats.Conn
	subj messages.Subjects
	keys *token.KeySource
	b    *breaker.Breaker
	log  *slog.Logger

	mu   sync.Mutex
	mode string // last mode logged: online, fallback or unavailable
}

// Modes of a Validator, for its state-change log lines.
const (
	modeOnline      = messages.AuthModeOnline
	modeFallback    = messages.AuthModeFallback
	modeUnavailable = "unavailable"
)

// NewValidator returns a Validator asking auth over nc, falling back to
// keys (which may be nil: then there is no fallback).
func NewValidator(nc *nats.Conn, subj messages.Subjects, keys *token.KeySource, cfg ValidatorConfig) *Validator {
	if cfg.Breaker.CallTimeout <= 0 {
		cfg.Breaker.CallTimeout = 500 * time.Millisecond
	}
	if cfg.BreakerName == "" {
		cfg.BreakerName = messages.RoleAuth
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Validator{
		nc:   nc,
		subj: subj,
		keys: keys,
		b:    breaker.New(cfg.BreakerName, cfg.Breaker, authFailed, cfg.Logger),
		log:  cfg.Logger.With("component", "validator"),
		mode: modeOnline,
	}
}

// Breaker is the breaker guarding the calls to auth, for health reports.
func (v *Validator) Breaker() *breaker.Breaker { return v.b }

// authFailed says which answers count against the breaker: auth not
// answering, or answering that it cannot work. A definite "no" (an
// unauthorized or bad token) proves auth is up.
func authFailed(err error) bool {
	var e *messages.Error
	if errors.As(err, &e) {
		return e.Code == messages.CodeInternal || e.Code.Retryable()
	}
	return true
}

// Validate returns the verdict on tok. A forged, malformed, expired or
// revoked token is a *messages.Error with code unauthorized (final, never
// retried locally); with auth silent and no keys cached it is
// messages.ErrAuthUnavailable. The reply's AuthMode says how it was
// checked.
func (v *Validator) Validate(ctx context.Context, tok string) (messages.ValidateReply, error) {
	if err := (messages.ValidateRequest{Token: tok}).Validate(); err != nil {
		return messages.ValidateReply{}, err
	}
	reply, err := breaker.Call(ctx, v.b, func(ctx context.Context) (messages.ValidateReply, error) {
		var r messages.ValidateReply
		_, err := natsx.Request(ctx, v.nc, v.subj.AuthValidate(), messages.ValidateRequest{Token: tok}, nil, &r)
		return r, err
	})
	if err == nil {
		reply.AuthMode = messages.AuthModeOnline
		v.setMode(modeOnline, nil)
		return reply, nil
	}
	if ctx.Err() != nil {
		return messages.ValidateReply{}, fmt.Errorf("validate token: %w", ctx.Err())
	}
	if !authFailed(err) {
		return messages.ValidateReply{}, err // auth's own verdict
	}
	return v.fallback(tok, err)
}

// fallback verifies tok with the cached keys because auth did not answer
// (cause). It cannot see disabled users: that is the price of staying up.
func (v *Validator) fallback(tok string, cause error) (messages.ValidateReply, error) {
	var ver *token.Verifier
	ok := false
	if v.keys != nil {
		ver, ok = v.keys.Verifier()
	}
	if !ok {
		v.setMode(modeUnavailable, cause)
		return messages.ValidateReply{}, messages.ErrAuthUnavailable
	}
	v.setMode(modeFallback, cause)
	claims, err := ver.Verify(tok, time.Now())
	switch {
	case errors.Is(err, token.ErrExpiredToken):
		return messages.ValidateReply{}, errTokenExpired
	case err != nil:
		return messages.ValidateReply{}, messages.ErrUnauthorized
	}
	reply := messages.ValidateReply{
		Valid:    true,
		Subject:  claims.Subject,
		Roles:    claims.Roles,
		TokenID:  claims.ID,
		AuthMode: messages.AuthModeFallback,
	}
	if reply.Roles == nil {
		reply.Roles = []string{}
	}
	if claims.ExpiresAt != nil {
		reply.ExpiresAt = claims.ExpiresAt.Unix()
	}
	return reply, nil
}

// setMode logs a change of mode, once per change (never per request).
func (v *Validator) setMode(mode string, cause error) {
	v.mu.Lock()
	prev := v.mode
	v.mode = mode
	v.mu.Unlock()
	if prev == mode {
		return
	}
	switch mode {
	case modeOnline:
		v.log.Info("auth answers again: validating tokens online", "breaker", v.b.Name())
	case modeFallback:
		v.log.Warn("auth does not answer: validating tokens locally with the cached JWKS (disabled users are not seen)", "breaker", v.b.Name(), "cause", errText(cause))
	case modeUnavailable:
		v.log.Error("auth does not answer and no JWKS is cached: refusing tokens", "breaker", v.b.Name(), "cause", errText(cause))
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
