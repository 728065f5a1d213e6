package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/actors/actortest"
	"sensorhub/internal/breaker"
	"sensorhub/internal/token"
	"sensorhub/messages"
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
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	ks := token.NewKeySource(js, token.VerifierConfig{}, actortest.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ks.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	actortest.Closed(t, ks.Ready(), wait)
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
	v := NewValidator(e.nc, e.subj, ks, ValidatorConfig{
		Breaker:     breaker.Config{Failures: 2, OpenFor: time.Hour},
		BreakerName: "sensor.auth",
		Logger:      e.cfg.Logger,
	})
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
	rec := e.logs.WaitFor(t, wait, msgFallback, "breaker", "sensor.auth")
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
	v := NewValidator(e.nc, e.subj, ks, ValidatorConfig{
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
	actortest.Eventually(t, wait, "online validation after auth came back", func() bool {
		r, err := validate(t, v, tok)
		return err == nil && r.AuthMode == messages.AuthModeOnline
	})
	e.logs.WaitFor(t, wait, msgOnlineAgain)
}

func TestValidatorWithoutKeys(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.mustLogin(t, "alice")
	if err := e.svc.Stop(wait); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	notRun := token.NewKeySource(js, token.VerifierConfig{}, actortest.Discard())
	for name, ks := range map[string]*token.KeySource{"nil": nil, "empty": notRun} {
		v := NewValidator(e.nc, e.subj, ks, ValidatorConfig{Logger: e.cfg.Logger, BreakerName: "test." + name})
		for range 3 {
			_, err := validate(t, v, tok)
			if !errors.Is(err, messages.ErrAuthUnavailable) {
				t.Fatalf("%s keys: err = %v, want auth_unavailable", name, err)
			}
		}
		e.logs.WaitFor(t, wait, msgNoKeys, "breaker", "test."+name)
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
	sub, err := e.nc.Subscribe(e.subj.AuthValidate(), func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	v := NewValidator(e.nc, e.subj, ks, ValidatorConfig{Breaker: breaker.Config{CallTimeout: 100 * time.Millisecond}, Logger: e.cfg.Logger})
	r, err := validate(t, v, tok)
	if err != nil || r.AuthMode != messages.AuthModeFallback {
		t.Fatalf("%+v, %v", r, err)
	}
	rec := e.logs.WaitFor(t, wait, msgFallback)
	if !strings.Contains(rec.Attr("cause"), "timed out") {
		t.Errorf("cause = %q", rec.Attr("cause"))
	}
}

func TestValidatorCallerGone(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.mustLogin(t, "alice")
	v := NewValidator(e.nc, e.subj, nil, ValidatorConfig{Logger: e.cfg.Logger})
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
