package token_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/internal/testenv"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

func TestKeySource(t *testing.T) {
	srv := testenv.NATS(t)
	// auth writes the keys; the sensor role reads them.
	js, err := jetstream.New(srv.Conn(t, messages.RoleAuth))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := jetstream.New(srv.Conn(t, messages.RoleSensor))
	if err != nil {
		t.Fatal(err)
	}
	ks := token.NewKeySource(reader, token.VerifierConfig{}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ks.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// No bucket yet: no keys, and Run keeps going.
	if _, ok := ks.Verifier(); ok {
		t.Fatal("verifier before any JWKS was published")
	}
	select {
	case <-done:
		t.Fatal("Run returned before ctx ended")
	default:
	}

	first := newSigner(t, newKey(t))
	if err := token.PublishJWKS(ctx, js, first.JWKS(), 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ks.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("no keys 10s after publishing")
	}
	tok, _, _ := first.Issue("alice", nil, time.Now())
	v, _ := ks.Verifier()
	if _, err := v.Verify(tok, time.Now()); err != nil {
		t.Fatalf("verify with KV keys: %v", err)
	}

	// The bucket keeps one version and holds exactly what was put.
	kv, err := js.KeyValue(ctx, messages.BucketKeys)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 1 {
		t.Errorf("history = %d, want 1", st.History())
	}

	// A new key set replaces the old one.
	second := newSigner(t, newKey(t))
	if err := token.PublishJWKS(ctx, js, second.JWKS(), 1); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the second key set", func() bool {
		v, _ := ks.Verifier()
		ids := v.KeyIDs()
		return len(ids) == 1 && ids[0] == second.KeyID()
	})

	// A garbage value is ignored: the last good keys stay.
	if _, err := kv.Put(ctx, messages.KeyJWKS, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, messages.KeyJWKS, []byte(`{"keys":[]}`)); err != nil {
		t.Fatal(err)
	}
	third := newSigner(t, newKey(t))
	if err := token.PublishJWKS(ctx, js, third.JWKS(), 1); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the third key set", func() bool {
		v, _ := ks.Verifier()
		return v.KeyIDs()[0] == third.KeyID()
	})

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
}

func TestKeySourceSurvivesNATSRestart(t *testing.T) {
	srv := testenv.NATS(t)
	// auth writes the keys; the sensor role reads them.
	js, err := jetstream.New(srv.Conn(t, messages.RoleAuth))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := jetstream.New(srv.Conn(t, messages.RoleSensor))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ks := token.NewKeySource(reader, token.VerifierConfig{}, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { ks.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	a := newSigner(t, newKey(t))
	if err := token.PublishJWKS(ctx, js, a.JWKS(), 1); err != nil {
		t.Fatal(err)
	}
	<-ks.Ready()

	srv.Shutdown()
	// Keys stay usable while NATS is down.
	if _, ok := ks.Verifier(); !ok {
		t.Fatal("keys lost while NATS is down")
	}
	srv.Start()

	b := newSigner(t, newKey(t))
	testenv.Eventually(t, "publishing after the restart", func() bool {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		return token.PublishJWKS(pctx, js, b.JWKS(), 1) == nil
	})
	testenv.Eventually(t, "the key set published after the restart", func() bool {
		v, _ := ks.Verifier()
		return v.KeyIDs()[0] == b.KeyID()
	})
}
