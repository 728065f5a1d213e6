package auth

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// Validate answers with the roles stored now, not the token's: a role
// granted or taken away, or a user disabled or deleted, counts at the next
// validation, not at the token's expiry. With the database down the
// token's roles stand, and the reply says the user check was skipped.
func TestValidateAnswersWithTheStoredRoles(t *testing.T) {
	cases := []struct {
		name   string
		user   string // logs in first; the token carries the roles it had then
		change func(t *testing.T, st *flakyStore)
		roles  []string // the reply's roles; nil when refused
		check  string   // HeaderUserCheck
		refuse string   // the refusal's message
	}{
		{"unchanged", "alice", nil, []string{"user"}, "ok", ""},
		{"admin granted", "alice", setRoles("alice", "user", messages.RoleAdmin), []string{"user", messages.RoleAdmin}, "ok", ""},
		{"admin taken away", "root", setRoles("root", "user"), []string{"user"}, "ok", ""},
		{"every role taken away", "root", setRoles("root"), []string{}, "ok", ""},
		{"disabled", "alice", func(t *testing.T, st *flakyStore) {
			if err := st.SetUserDisabled(t.Context(), "alice", true); err != nil {
				t.Fatal(err)
			}
		}, nil, "", "user disabled"},
		{"deleted", "root", func(t *testing.T, st *flakyStore) {
			if err := st.DeleteUser(t.Context(), "root"); err != nil {
				t.Fatal(err)
			}
		}, nil, "", "user no longer exists"},
		{"database down: the token's roles", "alice", func(t *testing.T, st *flakyStore) {
			setRoles("alice", messages.RoleAdmin)(t, st)
			st.down.Store(true)
		}, []string{"user"}, "skipped", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tok := e.mustLogin(t, tc.user)
			if tc.change != nil {
				tc.change(t, e.store)
			}
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			var vr messages.ValidateReply
			msg, err := natsx.Request(ctx, e.edge, e.subj.AuthValidate(), messages.ValidateRequest{Token: tok}, nil, &vr)
			if tc.roles == nil {
				if got := wantCode(t, err, messages.CodeUnauthorized); got.Message != tc.refuse {
					t.Fatalf("refused with %q, want %q", got.Message, tc.refuse)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if vr.Subject != tc.user || vr.Roles == nil || !slices.Equal(vr.Roles, tc.roles) || msg.Header.Get(HeaderUserCheck) != tc.check {
				t.Fatalf("reply %+v, user check %q; want roles %q, check %q", vr, msg.Header.Get(HeaderUserCheck), tc.roles, tc.check)
			}
			if vr.HasRole(messages.RoleAdmin) != slices.Contains(tc.roles, messages.RoleAdmin) {
				t.Fatalf("HasRole(admin) = %v with roles %q", vr.HasRole(messages.RoleAdmin), vr.Roles)
			}
		})
	}
}

// setRoles replaces the stored roles of user.
func setRoles(user string, roles ...string) func(*testing.T, *flakyStore) {
	return func(t *testing.T, st *flakyStore) {
		t.Helper()
		u, err := st.GetUser(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		u.Roles = roles
		if _, err := st.UpsertUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
}

// A role change reaches a sensor role's validator within its CacheTTL: the
// cached verdict keeps the old roles until the entry lapses, then auth's
// answer brings the stored ones.
func TestValidatorSeesARoleChangeWithinCacheTTL(t *testing.T) {
	e := newEnv(t, nil)
	v := NewValidator(e.sensor, e.subj, nil, ValidatorConfig{Logger: e.cfg.Logger, CacheTTL: 30 * time.Second, ConfirmEvery: 100 * time.Millisecond})
	clock := useFakeClock(v)
	alice, root := e.mustLogin(t, "alice"), e.mustLogin(t, "root")
	for _, tok := range []string{alice, root} {
		if _, err := validate(t, v, tok); err != nil {
			t.Fatal(err)
		}
	}
	setRoles("alice", "user", messages.RoleAdmin)(t, e.store)

	if r, err := validate(t, v, alice); err != nil || r.HasRole(messages.RoleAdmin) {
		t.Fatalf("within the entry's life: %+v, %v; want the cached roles", r, err)
	}
	// Past CacheTTL, auth confirmed all along by root's requests.
	for range 31 {
		clock.advance(time.Second)
		if _, err := validate(t, v, root); err != nil {
			t.Fatal(err)
		}
	}
	r, err := validate(t, v, alice)
	if err != nil || !slices.Equal(r.Roles, []string{"user", messages.RoleAdmin}) {
		t.Fatalf("after CacheTTL: %+v, %v; want the stored roles", r, err)
	}
}

// A cached verdict lives CacheTTL from when auth was asked, not from when
// its answer came: however slow the answer, a change made right after auth
// read the database is seen within CacheTTL.
func TestValidatorCacheTTLCountsFromTheQuestion(t *testing.T) {
	srv := testenv.NATS(t)
	nc := srv.Conn(t, messages.RoleSensor)   // the validator's role
	authNC := srv.Conn(t, messages.RoleAuth) // the stand-in's
	subj := messages.DefaultSubjects()
	const ttl, slow = 30 * time.Second, 10 * time.Second
	v := NewValidator(nc, subj, nil, ValidatorConfig{CacheTTL: ttl, ConfirmEvery: time.Hour, Breaker: breaker.Config{CallTimeout: wait}})
	clock := useFakeClock(v)
	start := clock.Now()

	// A stand-in for auth whose answer takes slow (on the validator's clock).
	var asked atomic.Int64
	sub, err := authNC.Subscribe(subj.AuthValidate(), func(m *nats.Msg) {
		asked.Add(1)
		clock.advance(slow)
		body, _ := json.Marshal(messages.ValidateReply{Valid: true, Subject: "alice", Roles: []string{"user"}, TokenID: "j1", ExpiresAt: start.Add(time.Hour).Unix()})
		_ = m.Respond(body)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := authNC.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		at        time.Duration // since the first question
		wantAsked int64
	}{
		{0, 1},          // asked; the answer comes at slow
		{slow, 1},       // cached
		{ttl - 1, 1},    // still cached
		{ttl + 1, 2},    // lapsed ttl after the question (not ttl after the answer)
		{ttl + slow, 2}, // the new entry, asked at ttl+1
	}
	for _, s := range steps {
		if now := clock.Now(); now.Before(start.Add(s.at)) {
			clock.advance(start.Add(s.at).Sub(now))
		}
		if r, err := validate(t, v, "a.b.c"); err != nil || r.Subject != "alice" {
			t.Fatalf("at %s: %+v, %v", s.at, r, err)
		}
		if n := asked.Load(); n != s.wantAsked {
			t.Fatalf("at %s: auth asked %d times, want %d", s.at, n, s.wantAsked)
		}
	}
}
