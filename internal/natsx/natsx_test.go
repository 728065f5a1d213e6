package natsx_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

func TestRequestReplyAndErrors(t *testing.T) {
	srv := testenv.NATS(t)
	// A fake auth service on the auth role's identity, asked by the edge's.
	responder, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Name: "test-auth", Credentials: srv.Creds(messages.RoleAuth), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(responder.Close)
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Name: "test", Credentials: srv.Creds(messages.RoleEdge), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := natsx.WaitConnected(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	subj := messages.DefaultSubjects()
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	svc, err := natsx.AddService(responder, subj, "auth", "test",
		natsx.Endpoint{Name: "token-forwarded", Subject: subj.AuthTokenForwarded(), Handler: func(req micro.Request) {
			_ = natsx.ReplyJSON(req, messages.TokenReply{AccessToken: "t", TokenType: "bearer", ExpiresIn: 60})
		}},
		natsx.Endpoint{Name: "validate", Handler: func(req micro.Request) {
			_ = natsx.ReplyError(req, messages.ErrUnauthorized)
		}},
		natsx.Endpoint{Name: "jwks", Handler: func(req micro.Request) {
			_ = natsx.ReplyError(req, errors.New("secret detail"))
		}},
		natsx.Endpoint{Name: "health", Handler: func(req micro.Request) { <-block }},
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var tok messages.TokenReply
	if _, err := natsx.Request(ctx, nc, subj.AuthTokenForwarded(), messages.TokenRequest{Username: "u", Password: "p"}, nil, &tok); err != nil || tok.AccessToken != "t" {
		t.Fatalf("token: %+v, %v", tok, err)
	}

	msg, err := natsx.Request(ctx, nc, subj.AuthValidate(), messages.ValidateRequest{Token: "x"}, nil, nil)
	if !errors.Is(err, messages.ErrUnauthorized) || messages.CodeOf(err) != messages.CodeUnauthorized {
		t.Fatalf("validate: err = %v, want unauthorized envelope", err)
	}
	if got := msg.Header.Get(micro.ErrorCodeHeader); got != "401" {
		t.Fatalf("error code header = %q, want 401", got)
	}

	_, err = natsx.Request(ctx, nc, subj.AuthJWKS(), nil, nil, nil)
	if e := messages.AsError(err); e.Code != messages.CodeInternal || e.Message == "secret detail" {
		t.Fatalf("jwks: %+v: an unknown error must leave as a generic internal error", e)
	}

	_, err = natsx.Request(ctx, nc, subj.SensorSubmit(), nil, nil, nil)
	if !errors.Is(err, natsx.ErrNoResponders) || !natsx.IsUnreachable(err) {
		t.Fatalf("no service: err = %v, want ErrNoResponders", err)
	}

	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = natsx.Request(tctx, nc, subj.Health("auth"), nil, nil, nil)
	if !errors.Is(err, natsx.ErrTimeout) || !natsx.IsUnreachable(err) {
		t.Fatalf("hung service: err = %v, want ErrTimeout", err)
	}

	info := svc.Info()
	if info.Name != "sensorhub-auth" || len(info.Endpoints) != 4 || info.Endpoints[0].Subject != "sensorhub.auth.token.forwarded" {
		t.Fatalf("service info = %+v", info)
	}
}

func TestEmbeddedRefusesBusyPortUnlessFallback(t *testing.T) {
	srv := testenv.NATS(t)
	busy := srv.Srv.Addr().String()
	if _, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Listen: busy}); err == nil {
		t.Fatal("second server on a busy port started")
	}
	ns, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Listen: busy, FallbackFreePort: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer natsx.ShutdownEmbedded(ns)
	if ns.Addr().String() == busy {
		t.Fatalf("fallback server on the busy address %s", busy)
	}
}

func TestRequestWhenDisconnected(t *testing.T) {
	srv := testenv.NATS(t)
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Credentials: srv.Creds(messages.RoleEdge), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := natsx.WaitConnected(context.Background(), nc); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	_, err = natsx.Request(context.Background(), nc, "x.y", nil, nil, nil)
	if !natsx.IsUnreachable(err) {
		t.Fatalf("err = %v, want unreachable", err)
	}
}

// recorder is a RequestObserver that remembers what it was told.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) ObserveRequest(subject, outcome string, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if took <= 0 {
		outcome += " (no duration)"
	}
	r.seen = append(r.seen, subject+" "+outcome)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// An observed connection reports every request's subject and outcome; a
// connection no longer observed (or never) reports nothing.
func TestObserveRequests(t *testing.T) {
	srv := testenv.NATS(t)
	logger := slog.New(slog.DiscardHandler)
	responder, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Name: "test-auth", Credentials: srv.Creds(messages.RoleAuth), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(responder.Close)
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Name: "test", Credentials: srv.Creds(messages.RoleEdge), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	other, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Name: "test-other", Credentials: srv.Creds(messages.RoleEdge), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	for _, c := range []*nats.Conn{nc, other} {
		if err := natsx.WaitConnected(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	subj := messages.DefaultSubjects()
	svc, err := natsx.AddService(responder, subj, "auth", "test",
		natsx.Endpoint{Name: "validate", Handler: func(req micro.Request) { _ = natsx.ReplyError(req, messages.ErrUnauthorized) }},
		natsx.Endpoint{Name: "jwks", Handler: func(req micro.Request) { _ = natsx.ReplyJSON(req, messages.JWKS{}) }},
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	stop := natsx.Observe(nc, rec)
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	_, _ = natsx.Request(ctx, nc, subj.AuthJWKS(), nil, nil, nil)
	_, _ = natsx.Request(ctx, nc, subj.AuthValidate(), messages.ValidateRequest{Token: "x"}, nil, nil)
	_, _ = natsx.Request(ctx, nc, subj.Health(messages.RoleSensor), nil, nil, nil) // nobody serves it
	_, _ = natsx.Request(ctx, other, subj.AuthJWKS(), nil, nil, nil)               // not observed
	want := []string{
		subj.AuthJWKS() + " " + natsx.OutcomeOK,
		subj.AuthValidate() + " " + natsx.OutcomeError,
		subj.Health(messages.RoleSensor) + " " + natsx.OutcomeNoResponders,
	}
	if got := rec.got(); !slices.Equal(got, want) {
		t.Fatalf("observed %q, want %q", got, want)
	}
	stop()
	_, _ = natsx.Request(ctx, nc, subj.AuthJWKS(), nil, nil, nil)
	if got := rec.got(); len(got) != len(want) {
		t.Fatalf("observed after stop: %q", got[len(want):])
	}
}
