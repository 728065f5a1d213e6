package auth

import (
	"context"
	"errors"
	"testing"

	"sensorhub/internal/store"
	"sensorhub/internal/token"
)

func TestRefuseDefaultPassword(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	_, _ = st.UpsertUser(ctx, store.User{Username: "alice", PasswordHash: hash(t, "secret")})
	_, _ = st.UpsertUser(ctx, store.User{Username: "old", PasswordHash: hash(t, DefaultPassword), Disabled: true})
	if err := RefuseDefaultPassword(ctx, st); err != nil {
		t.Fatalf("no enabled user has the default password: %v", err)
	}
	_, _ = st.UpsertUser(ctx, store.User{Username: "admin", PasswordHash: hash(t, DefaultPassword)})
	err := RefuseDefaultPassword(ctx, st)
	if !errors.Is(err, ErrDefaultPassword) {
		t.Fatalf("err = %v, want ErrDefaultPassword", err)
	}
	st.err = store.ErrUnavailable
	if err := RefuseDefaultPassword(ctx, st); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("err = %v, want the store's error", err)
	}
}

func newTestSigner(t testing.TB) *token.Signer {
	t.Helper()
	key, _, err := token.LoadOrCreateKey(t.TempDir() + "/k.pem")
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.NewSigner(key, token.SignerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
