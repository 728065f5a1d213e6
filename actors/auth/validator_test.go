package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/actors/actortest"
	"sensorhub/internal/breaker"
	"sensorhub/internal/token"
	"sensorhub/messages"

	"sensorhub/internal/testenv"
)

const (
	msgFallback    = "auth does not answer: validating tokens locally with the cached JWKS (disabled users are not seen)"
	msgNoKeys      = "auth does not answer and no JWKS is cached: refusing tokens"
	msgOnlineAgain = "auth answers again: validating tokens online"
)

// keySource runs a KeySource on e's NATS until the test ends and waits
// until it holds the keys auth published.
func (e *env) keySource(t *testing.T) *token.KeySource {
	t.Helper()
	js, err := jetstream.New(e.sensor)
	if err != nil {
		t.Fatal(err)
	}
	ks := token.NewKeySource(js, token.VerifierConfig{}, actortest.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ks.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	actortest.Closed(t, ks.Ready())
	return ks
}

func validate(t *testing.T, v *Validator, tok string) (messages.ValidateReply, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return v.Validate(ctx, tok)
}

func TestValidatorOnlineThenFallback(t *testing.T) {
	e := newEnv(t, nil)
	ks := e.keySource(t)
	v := NewValidator(e.sensor, e.subj, ks, ValidatorConfig{
		Breaker:     breaker.Config{Failures: 2, OpenFor: time.Hour},
		BreakerName: "sensor.auth",
		Logger:      e.cfg.Logger,
	})
	clock := useFakeClock(v)
	if v.Breaker().Name() != "sensor.auth" || v.Breaker().CallTimeout() != 500*time.Millisecond {
		t.Errorf("breaker %s, call timeout %s", v.Breaker().Name(), v.Breaker().CallTimeout())
	}
	tok := e.mustLogin(t, "alice")
	r, err := validate(t, v, tok)
	if err != nil || r.Subject != "alice" || r.AuthMode != messages.AuthModeOnline {
		t.Fatalf("online: %+v, %v", r, err)
	}

	// Auth's "no" is final and proves auth is up: no breaker failure.
	for range 5 {
		_, err := validate(t, v, "abc.def.ghi")
		wantCode(t, err, messages.CodeUnauthorized)
	}
	if h := v.Breaker().Health(); h.State != messages.BreakerClosed || h.TotalFailures != 0 {
		t.Fatalf("breaker after refusals = %+v", h)
	}

	if err := e.svc.Stop(wait); err != nil {
		t.Fatal(err)
	}
	// Past ConfirmEvery the cached "yes" is not trusted without auth: the
	// next request asks, finds auth gone and falls back.
	clock.advance(time.Second)
	for i := range 5 {
		start := time.Now()
		r, err := validate(t, v, tok)
		if err != nil || r.Subject != "alice" || r.AuthMode != messages.AuthModeFallback || r.TokenID == "" {
			t.Fatalf("fallback %d: %+v, %v", i, r, err)
		}
		if time.Since(start) >= wait {
			t.Fatal("fallback answered only at the deadline")
		}
	}
	if v.Breaker().State() != messages.BreakerOpen {
		t.Errorf("breaker = %s after auth stopped, want open", v.Breaker().State())
	}
	// One line for the change of mode, not one per request.
	rec := e.logs.WaitFor(t, msgFallback, "breaker", "sensor.auth")
	if !strings.Contains(rec.Attr("cause"), "no responders") {
		t.Errorf("cause = %q", rec.Attr("cause"))
	}
	if n := e.logs.Count(msgFallback); n != 1 {
		t.Errorf("%d fallback lines, want 1", n)
	}

	// The fallback still refuses what is not good.
	expired, _, _ := e.svc.signer.Issue("alice", nil, time.Now().Add(-2*time.Hour))
	forged, _, _ := newTestSigner(t).Issue("alice", []string{messages.RoleAdmin}, time.Now())
	for name, tc := range map[string]struct {
		tok string
		msg string
	}{
		"expired":  {expired, "token expired"},
		"forged":   {forged, messages.ErrUnauthorized.Message},
		"garbage":  {"abc.def.ghi", messages.ErrUnauthorized.Message},
		"empty":    {"", messages.ErrUnauthorized.Message},
		"oversize": {strings.Repeat("a", messages.MaxTokenLen+1), messages.ErrUnauthorized.Message},
	} {
		_, err := validate(t, v, tc.tok)
		if got := wantCode(t, err, messages.CodeUnauthorized); got.Message != tc.msg {
			t.Errorf("%s: message %q, want %q", name, got.Message, tc.msg)
		}
	}
}

func TestValidatorBackOnline(t *testing.T) {
	e := newEnv(t, nil)
	ks := e.keySource(t)
	v := NewValidator(e.sensor, e.subj, ks, ValidatorConfig{
		Breaker: breaker.Config{Failures: 1, OpenFor: 50 * time.Millisecond},
		Logger:  e.cfg.Logger,
	})
	tok := e.mustLogin(t, "alice")
	if err := e.svc.Stop(wait); err != nil {
		t.Fatal(err)
	}
	if r, err := validate(t, v, tok); err != nil || r.AuthMode != messages.AuthModeFallback {
		t.Fatalf("fallback: %+v, %v", r, err)
	}
	e.start(t)
	testenv.Eventually(t, "online validation after auth came back", func() bool {
		r, err := validate(t, v, tok)
		return err == nil && r.AuthMode == messages.AuthModeOnline
	})
	e.logs.WaitFor(t, msgOnlineAgain)
}

func TestValidatorWithoutKeys(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.mustLogin(t, "alice")
	if err := e.svc.Stop(wait); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(e.sensor)
	if err != nil {
		t.Fatal(err)
	}
	notRun := token.NewKeySource(js, token.VerifierConfig{}, actortest.Discard())
	for name, ks := range map[string]*token.KeySource{"nil": nil, "empty": notRun} {
		v := NewValidator(e.sensor, e.subj, ks, ValidatorConfig{Logger: e.cfg.Logger, BreakerName: "test." + name})
		for range 3 {
			_, err := validate(t, v, tok)
			if !errors.Is(err, messages.ErrAuthUnavailable) {
				t.Fatalf("%s keys: err = %v, want auth_unavailable", name, err)
			}
		}
		e.logs.WaitFor(t, msgNoKeys, "breaker", "test."+name)
		if n := e.logs.Count(msgNoKeys, "breaker", "test."+name); n != 1 {
			t.Errorf("%s: %d lines, want 1", name, n)
		}
	}
}

func TestValidatorFallsBackWhenAuthHangs(t *testing.T) {
	e := newEnv(t, nil)
	ks := e.keySource(t)
	tok := e.mustLogin(t, "alice")
	if err := e.svc.Stop(wait); err != nil {
		t.Fatal(err)
	}
	// Something listens on auth.validate and never answers.
	hung := e.nats.Conn(t, messages.RoleAuth)
	sub, err := hung.Subscribe(e.subj.AuthValidate(), func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := hung.Flush(); err != nil {
		t.Fatal(err)
	}
	v := NewValidator(e.sensor, e.subj, ks, ValidatorConfig{Breaker: breaker.Config{CallTimeout: 100 * time.Millisecond}, Logger: e.cfg.Logger})
	r, err := validate(t, v, tok)
	if err != nil || r.AuthMode != messages.AuthModeFallback {
		t.Fatalf("%+v, %v", r, err)
	}
	rec := e.logs.WaitFor(t, msgFallback)
	if !strings.Contains(rec.Attr("cause"), "timed out") {
		t.Errorf("cause = %q", rec.Attr("cause"))
	}
}

func TestValidatorCallerGone(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.mustLogin(t, "alice")
	v := NewValidator(e.sensor, e.subj, nil, ValidatorConfig{Logger: e.cfg.Logger})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Validate(ctx, tok); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if h := v.Breaker().Health(); h.TotalFailures != 0 {
		t.Errorf("a cancelled caller counted as a failure: %+v", h)
	}
}

func TestAuthFailed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{messages.ErrUnauthorized, false},
		{messages.NewError(messages.CodeBadRequest, "x"), false},
		{messages.NewError(messages.CodeInternal, "x"), true},
		{messages.NewError(messages.CodeOverloaded, "x"), true},
		{errors.New("decode reply"), true},
	} {
		if got := authFailed(tc.err); got != tc.want {
			t.Errorf("authFailed(%v) = %v", tc.err, got)
		}
	}
}

// fakeClock is the clock of a Validator's cache in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// useFakeClock makes v's cache and liveness rule read a clock that only
// moves when the test advances it.
func useFakeClock(v *Validator) *fakeClock {
	c := &fakeClock{now: time.Now()}
	v.now = c.Now
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// authRequests counts the requests to auth.validate that reach the server
// (a plain subscription gets a copy of each).
type authRequests struct {
	nc  *nats.Conn
	sub *nats.Subscription
}

func countAuthRequests(t *testing.T, e *env) *authRequests {
	t.Helper()
	// A connection of its own: the server lets a responder answer each
	// request once, and a second copy on the auth role's connection would
	// use up that one answer.
	nc := e.nats.Conn(t, messages.RoleAuth)
	sub, err := nc.SubscribeSync(e.subj.AuthValidate())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &authRequests{nc: nc, sub: sub}
}

// n is the number of requests so far: the flush makes the server deliver
// every request published before it.
func (a *authRequests) n(t *testing.T) int {
	t.Helper()
	if err := a.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	n, _, err := a.sub.Pending()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// One token used again and again costs auth one request, then one per
// ConfirmEvery (a request that checks auth still answers), and one more
// once the entry lapses.
func TestValidatorCachesAuthsYes(t *testing.T) {
	e := newEnv(t, nil)
	v := NewValidator(e.sensor, e.subj, nil, ValidatorConfig{Logger: e.cfg.Logger, CacheTTL: 10 * time.Second, ConfirmEvery: 100 * time.Millisecond})
	clock := useFakeClock(v)
	calls := countAuthRequests(t, e)
	tok := e.mustLogin(t, "alice")

	for i := range 50 {
		r, err := validate(t, v, tok)
		if err != nil || r.Subject != "alice" || r.AuthMode != messages.AuthModeOnline {
			t.Fatalf("validate %d: %+v, %v", i, r, err)
		}
	}
	if n := calls.n(t); n != 1 {
		t.Fatalf("50 validations of one token asked auth %d times, want 1", n)
	}

	clock.advance(200 * time.Millisecond) // past ConfirmEvery
	for range 10 {
		if _, err := validate(t, v, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.n(t); n != 2 {
		t.Fatalf("after ConfirmEvery auth was asked %d times in all, want 2", n)
	}

	clock.advance(11 * time.Second) // past CacheTTL
	if _, err := validate(t, v, tok); err != nil {
		t.Fatal(err)
	}
	if n := calls.n(t); n != 3 {
		t.Fatalf("after CacheTTL auth was asked %d times in all, want 3", n)
	}

	// Another token of the same user is another entry; a refused token is
	// never cached.
	other := e.mustLogin(t, "alice")
	if _, err := validate(t, v, other); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := validate(t, v, "abc.def.ghi")
		wantCode(t, err, messages.CodeUnauthorized)
	}
	if n := calls.n(t); n != 7 {
		t.Fatalf("a second token and 3 refusals: auth asked %d times in all, want 7", n)
	}
}

// A user disabled after its token was cached is refused at the latest when
// the entry lapses (CacheTTL), and at once by a request that finds auth
// unconfirmed for ConfirmEvery (it asks auth with its own token).
func TestValidatorCacheLapsesForDisabledUser(t *testing.T) {
	e := newEnv(t, nil)
	v := NewValidator(e.sensor, e.subj, nil, ValidatorConfig{Logger: e.cfg.Logger, CacheTTL: 30 * time.Second, ConfirmEvery: 100 * time.Millisecond})
	clock := useFakeClock(v)
	alice, root := e.mustLogin(t, "alice"), e.mustLogin(t, "root")
	for _, tok := range []string{alice, root} {
		if _, err := validate(t, v, tok); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	u, err := e.store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	u.Disabled = true
	if _, err := e.store.UpsertUser(ctx, u); err != nil {
		t.Fatal(err)
	}

	// Within the entry's life, and auth confirmed: the cached "yes".
	if r, err := validate(t, v, alice); err != nil || r.Subject != "alice" {
		t.Fatalf("cached: %+v, %v", r, err)
	}

	// Past CacheTTL, with auth confirmed by root's requests all along: the
	// entry has lapsed, auth is asked and says no.
	for range 31 {
		clock.advance(time.Second)
		if _, err := validate(t, v, root); err != nil {
			t.Fatal(err)
		}
	}
	_, err = validate(t, v, alice)
	if got := wantCode(t, err, messages.CodeUnauthorized); got.Message != "user disabled" {
		t.Fatalf("after CacheTTL: %q, want user disabled", got.Message)
	}
}

func TestTokenCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	yes := func(exp time.Time) messages.ValidateReply {
		return messages.ValidateReply{Valid: true, Subject: "alice", TokenID: "j1", ExpiresAt: exp.Unix(), AuthMode: messages.AuthModeOnline}
	}
	c := newTokenCache(30*time.Second, 2)

	c.put("tok-1", yes(now.Add(time.Hour)), now)
	if r, ok := c.get("tok-1", now.Add(29*time.Second)); !ok || r.TokenID != "j1" {
		t.Errorf("entry within the TTL: %+v %v", r, ok)
	}
	if _, ok := c.get("tok-1x", now); ok {
		t.Error("another token hit the entry")
	}
	if _, ok := c.get("tok-1", now.Add(30*time.Second)); ok {
		t.Error("entry outlived the TTL")
	}

	// Never up to the token's expiry.
	c.put("tok-2", yes(now.Add(10*time.Second)), now)
	if _, ok := c.get("tok-2", now.Add(10*time.Second-cacheExpiryMargin)); ok {
		t.Error("entry outlived the token's expiry less the margin")
	}
	c.put("tok-3", yes(now.Add(cacheExpiryMargin)), now)
	if _, ok := c.get("tok-3", now); ok {
		t.Error("a token about to expire was cached")
	}

	// Bounded: a full cache makes room.
	for i := range 10 {
		c.put(fmt.Sprint("t", i), yes(now.Add(time.Hour)), now)
	}
	if n := len(c.entries); n > 2 {
		t.Errorf("%d entries, want at most 2", n)
	}
	c.put("t9", yes(now.Add(time.Hour)), now)
	c.forget("t9")
	if _, ok := c.get("t9", now); ok {
		t.Error("forgotten entry still there")
	}
}

// The concurrent first requests of one token share one call to auth.
func TestValidatorSharesTheFirstCall(t *testing.T) {
	e := newEnv(t, nil)
	v := NewValidator(e.sensor, e.subj, nil, ValidatorConfig{Logger: e.cfg.Logger, CacheTTL: time.Hour, ConfirmEvery: time.Hour})
	useFakeClock(v)
	calls := countAuthRequests(t, e)
	tok := e.mustLogin(t, "alice")

	const n = 32
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			r, err := validate(t, v, tok)
			if err == nil && (r.Subject != "alice" || r.AuthMode != messages.AuthModeOnline) {
				err = fmt.Errorf("reply %+v", r)
			}
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.n(t); got != 1 {
		t.Fatalf("%d concurrent first validations of one token asked auth %d times, want 1", n, got)
	}
}
