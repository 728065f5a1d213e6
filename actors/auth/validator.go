package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/singleflight"

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
	// CacheTTL is how long auth's "yes" for a token is reused without
	// asking again (default DefaultCacheTTL; negative: never). It bounds
	// how stale a verdict this process acts on can be: a user disabled or
	// deleted, or whose roles changed (auth answers with the stored roles),
	// is seen at most CacheTTL after the change, because an entry's life
	// counts from before auth was asked (so from before it read the
	// database), not from when its answer came. An entry never outlives the
	// token's expiry less cacheExpiryMargin. The bound does not hold while
	// auth does not answer: the fallback trusts the token's own claims.
	CacheTTL time.Duration
	// CacheSize bounds the tokens remembered (default DefaultCacheSize).
	CacheSize int
	// ConfirmEvery is how long a cached "yes" is trusted after auth last
	// answered (default DefaultConfirmEvery): past it, the next request
	// asks auth itself, so that auth going away shows (as the fallback)
	// within that time, as it did without a cache.
	ConfirmEvery time.Duration
}

// Defaults of the Validator's token cache.
const (
	DefaultCacheTTL     = 30 * time.Second
	DefaultCacheSize    = 10000
	DefaultConfirmEvery = 50 * time.Millisecond
	// DefaultValidateCallTimeout is the deadline of a call to auth.validate.
	DefaultValidateCallTimeout = 500 * time.Millisecond
	// cacheExpiryMargin keeps a cached verdict from running up to the
	// token's expiry: past that point auth is asked again, and refuses it.
	cacheExpiryMargin = 5 * time.Second
)

// Validator authenticates callers for the other roles. It asks auth (which
// also refuses disabled and deleted users) and, when auth does not answer
// or its breaker is open, verifies the token locally with the JWKS cached
// by a token.KeySource, marking the reply AuthMode "fallback". It is safe
// for concurrent use.
//
// Auth's "yes" is remembered per token for CacheTTL, so that a
// client sending thousands of requests with one token costs auth (a NATS
// round trip, a signature check and a database read of the user) a few
// requests a second instead of one each: a cached "yes" is used while auth
// has answered anything within ConfirmEvery; otherwise one request asks
// auth with its own token (the concurrent first requests of a token share
// one call). The price: a user disabled or deleted meanwhile keeps being
// accepted here, and with the roles auth last reported, until the entry
// lapses, CacheTTL after auth was asked at the latest. Refusals and
// fallback verdicts are never cached, and while auth does not answer the
// cache is not used.
type Validator struct {
	nc    *nats.Conn
	subj  messages.Subjects
	keys  *token.KeySource
	b     *breaker.Breaker
	log   *slog.Logger
	cache *tokenCache // nil: every token goes to auth
	// flights shares one call to auth among the concurrent first requests
	// of a token (by token).
	flights singleflight.Group
	now     func() time.Time

	// confirmEvery, lastAnswer (unix nanoseconds), authDown and confirming
	// decide when a cached verdict may be used; see trustCache.
	confirmEvery time.Duration
	lastAnswer   atomic.Int64
	authDown     atomic.Bool
	confirming   atomic.Bool

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
		cfg.Breaker.CallTimeout = DefaultValidateCallTimeout
	}
	if cfg.BreakerName == "" {
		cfg.BreakerName = messages.RoleAuth
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.ConfirmEvery <= 0 {
		cfg.ConfirmEvery = DefaultConfirmEvery
	}
	v := &Validator{
		nc:   nc,
		subj: subj,
		keys: keys,
		b:    breaker.New(cfg.BreakerName, cfg.Breaker, authFailed, cfg.Logger),
		log:  cfg.Logger.With("component", "validator"),
		now:  time.Now,
		mode: modeOnline,

		confirmEvery: cfg.ConfirmEvery,
	}
	if cfg.CacheTTL > 0 {
		v.cache = newTokenCache(cfg.CacheTTL, cfg.CacheSize)
	}
	return v
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
	if err := ctx.Err(); err != nil {
		return messages.ValidateReply{}, fmt.Errorf("validate token: %w", err)
	}
	if v.cache == nil {
		return v.check(ctx, tok)
	}
	now := v.now()
	if r, ok := v.cache.get(tok, now); ok {
		trust, confirmer := v.trustCache(now)
		if trust {
			return r, nil
		}
		if confirmer {
			defer v.confirming.Store(false)
		}
	}
	return v.shared(ctx, tok)
}

// trustCache says whether a cached verdict may be used now: auth answered
// within confirmEvery, or another request is asking it right now. When
// neither, the caller becomes the one that asks (confirmer) and must reset
// v.confirming when done. While auth is known not to answer, nothing cached
// is used.
func (v *Validator) trustCache(now time.Time) (trust, confirmer bool) {
	if v.authDown.Load() {
		return false, false
	}
	if now.Sub(time.Unix(0, v.lastAnswer.Load())) < v.confirmEvery {
		return true, false
	}
	if v.confirming.CompareAndSwap(false, true) {
		return false, true
	}
	return true, false
}

// shared asks auth about tok, in one call shared by every caller waiting
// for the same token. The call runs detached from the first caller's ctx
// (the breaker's call timeout bounds it), so that a caller giving up cuts
// no one else short. Auth's "yes" is cached from the time it was asked
// (see CacheTTL); its "no" drops the entry.
func (v *Validator) shared(ctx context.Context, tok string) (messages.ValidateReply, error) {
	ch := v.flights.DoChan(tok, func() (any, error) {
		asked := v.now()
		r, err := v.check(context.WithoutCancel(ctx), tok)
		switch {
		case err == nil && r.AuthMode == messages.AuthModeOnline && r.TokenID != "":
			v.cache.put(tok, r, asked)
		case err != nil:
			v.cache.forget(tok)
		}
		return r, err
	})
	select {
	case res := <-ch:
		r, _ := res.Val.(messages.ValidateReply)
		return r, res.Err
	case <-ctx.Done():
		return messages.ValidateReply{}, fmt.Errorf("validate token: %w", ctx.Err())
	}
}

// check asks auth about tok, and falls back to the local keys when auth
// does not answer.
func (v *Validator) check(ctx context.Context, tok string) (messages.ValidateReply, error) {
	reply, err := breaker.Call(ctx, v.b, func(ctx context.Context) (messages.ValidateReply, error) {
		var r messages.ValidateReply
		_, err := natsx.Request(ctx, v.nc, v.subj.AuthValidate(), messages.ValidateRequest{Token: tok}, nil, &r)
		return r, err
	})
	if err == nil {
		v.answered()
		reply.AuthMode = messages.AuthModeOnline
		v.setMode(modeOnline, nil)
		return reply, nil
	}
	if ctx.Err() != nil {
		return messages.ValidateReply{}, fmt.Errorf("validate token: %w", ctx.Err())
	}
	if !authFailed(err) {
		v.answered()
		return messages.ValidateReply{}, err // auth's own verdict
	}
	v.authDown.Store(true)
	return v.fallback(tok, err)
}

// answered notes that auth answered (yes or no): cached verdicts may be
// used for confirmEvery.
func (v *Validator) answered() {
	v.lastAnswer.Store(v.now().UnixNano())
	v.authDown.Store(false)
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

// tokenCache remembers auth's verdicts by token. The key is the whole token rather than its jti: the jti would
// have to be read from the token without checking it on every request (a
// JSON decode that showed in the CPU profile), and only the exact token
// auth said yes to may hit. The entry keeps the jti for the record. It is
// safe for concurrent use.
type tokenCache struct {
	ttl  time.Duration
	size int

	mu      sync.Mutex
	entries map[string]cacheEntry // by token
}

// cacheEntry is auth's "yes" for one token (reply.TokenID is its jti),
// reusable until until.
type cacheEntry struct {
	reply messages.ValidateReply
	until time.Time
}

func newTokenCache(ttl time.Duration, size int) *tokenCache {
	return &tokenCache{ttl: ttl, size: size, entries: map[string]cacheEntry{}}
}

// get returns the verdict cached for tok, unless it has lapsed.
func (c *tokenCache) get(tok string, now time.Time) (messages.ValidateReply, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[tok]
	switch {
	case !ok:
		return messages.ValidateReply{}, false
	case !now.Before(e.until):
		delete(c.entries, tok)
		return messages.ValidateReply{}, false
	}
	return e.reply, true
}

// put caches r until the TTL or shortly before the token expires,
// whichever comes first. When full, lapsed entries go first, then
// arbitrary ones.
func (c *tokenCache) put(tok string, r messages.ValidateReply, now time.Time) {
	until := now.Add(c.ttl)
	if r.ExpiresAt > 0 {
		until = minTime(until, time.Unix(r.ExpiresAt, 0).Add(-cacheExpiryMargin))
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[tok]; !ok && len(c.entries) >= c.size {
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.size {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[tok] = cacheEntry{reply: r, until: until}
}

// forget drops the verdict cached for tok.
func (c *tokenCache) forget(tok string) {
	c.mu.Lock()
	delete(c.entries, tok)
	c.mu.Unlock()
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
