package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsx"
	"sensorhub/internal/ratelimit"
	"sensorhub/messages"
)

// TestCalloutAdmitsPeopleAsThemselves connects through the real server and
// the auth role's callout: a password and a sensorhub token both admit the
// person, under their own name, with the permissions of their stored roles.
func TestCalloutAdmitsPeopleAsThemselves(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.person(t, "alice", "secret")
	var jwks messages.JWKS
	if _, err := natsx.Request(t.Context(), alice, e.subj.AuthJWKS(), nil, nil, &jwks); err != nil || len(jwks.Keys) == 0 {
		t.Fatalf("alice asks for the JWKS: %+v, %v", jwks, err)
	}
	conns, err := e.nats.Srv.Connz(&server.ConnzOptions{Username: true})
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for _, c := range conns.Conns {
		if c.NameTag == "alice" || c.AuthorizedUser == "alice" {
			named = true
		}
	}
	if !named {
		t.Fatalf("no connection carries alice's name in the server's monitoring: %+v", conns.Conns)
	}

	tok := e.mustLogin(t, "root")
	root, err := e.connectPerson(nats.Token(tok), nats.CustomInboxPrefix(messages.InboxPrefix("root")))
	if err != nil {
		t.Fatalf("connect with a token: %v", err)
	}
	defer root.Close()
	// root is an admin: may watch the events; alice may not.
	assertSubscribe(t, e, root, true)
	assertSubscribe(t, e, alice, false)
}

// assertSubscribe checks the effect of a subscription: an event the
// sensor role publishes arrives, or not.
func assertSubscribe(t *testing.T, e *env, nc *nats.Conn, want bool) {
	t.Helper()
	sub, err := nc.SubscribeSync(e.subj.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := e.sensor.Publish(e.subj.Event("temperature", messages.EventKindCompleted), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.sensor.Flush(); err != nil {
		t.Fatal(err)
	}
	// A probe after the event, on the person's own inbox, bounds the wait:
	// once it is back the event has been routed, if it was going to be.
	if _, err := natsx.Request(t.Context(), nc, e.subj.AuthJWKS(), nil, nil, &messages.JWKS{}); err != nil {
		t.Fatal(err)
	}
	_, err = sub.NextMsg(time.Millisecond)
	if got := err == nil; got != want {
		t.Fatalf("event received = %v, want %v", got, want)
	}
}

func TestCalloutRefuses(t *testing.T) {
	e := newEnv(t, nil)
	expired := expiredToken(t, e)
	for name, opts := range map[string][]nats.Option{
		"no credentials":  nil,
		"wrong password":  {nats.UserInfo("alice", "wrong")},
		"unknown user":    {nats.UserInfo("mallory", "secret")},
		"disabled user":   {nats.UserInfo("bob", "secret")},
		"garbage token":   {nats.Token("not-a-jwt")},
		"expired token":   {nats.Token(expired)},
		"a stranger nkey": {nats.Nkey("UCK7KXAFOXN2MSGWJYU2QDVUDFLUQQA2LQDVV2JBY6TCYXQJMBXO6EJV", func([]byte) ([]byte, error) { return make([]byte, 64), nil })},
	} {
		t.Run(name, func(t *testing.T) {
			nc, err := e.connectPerson(opts...)
			if err == nil {
				nc.Close()
				t.Fatal("admitted")
			}
			if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Fatalf("error %v, want an authorization violation", err)
			}
		})
	}
}

func expiredToken(t *testing.T, e *env) string {
	t.Helper()
	tok, _, err := e.svc.signer.Issue("alice", []string{"user"}, time.Now().Add(-2*e.svc.signer.TTL()))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestWrongPasswordsOverNATSAreRateLimited: forty wrong passwords over NATS
// connects, then over `nats req`; the limit holds on both (the check stops
// calling bcrypt), it also stops the right password from that client, and
// the same user still logs in from another address.
func TestWrongPasswordsOverNATSAreRateLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits = LoginLimits{PerUserAddr: ratelimit.Limit{Every: time.Hour, Burst: 5}}
	})
	for range 40 {
		if nc, err := e.connectPerson(nats.UserInfo("root", "wrong")); err == nil {
			nc.Close()
			t.Fatal("a wrong password was admitted")
		}
	}
	if n := e.logs.Count("login rate limited"); n < 35 {
		t.Fatalf("%d of 40 wrong connects were rate limited, want at least 35 (5 allowed)", n)
	}
	if nc, err := e.connectPerson(nats.UserInfo("root", "secret")); err == nil {
		nc.Close()
		t.Fatal("the right password got through while this client is rate limited")
	}
	// From another address (the edge's forwarded login) root is not locked out.
	e.mustLogin(t, "root")

	// Over `nats req` as alice: her own inbox keys the limit.
	alice := e.person(t, "alice", "secret")
	limited := 0
	for range 40 {
		_, err := natsx.Request(t.Context(), alice, e.subj.AuthToken(), messages.TokenRequest{Username: "root", Password: "wrong"}, nil, nil)
		switch messages.CodeOf(err) {
		case messages.CodeRateLimited:
			limited++
			if messages.AsError(err).RetryAfter < 1 {
				t.Fatalf("rate limited without a retry_after: %v", err)
			}
		case messages.CodeInvalidCredentials:
		default:
			t.Fatalf("nats req login: %v", err)
		}
	}
	if limited < 35 {
		t.Fatalf("%d of 40 wrong logins over nats req were rate limited, want at least 35", limited)
	}
}

// TestLoginLimiter holds the limiter's rules: failures count, successes
// give their token back, one address cannot lock a user out elsewhere,
// many addresses together still run dry on one user.
func TestLoginLimiter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := newLoginLimiter(LoginLimits{
		PerUserAddr: ratelimit.Limit{Every: time.Hour, Burst: 3},
		PerAddr:     ratelimit.Limit{Every: time.Hour, Burst: 100},
		PerUser:     ratelimit.Limit{Every: time.Hour, Burst: 6},
		MaxKeys:     1000,
	})
	fail := func(user, addr string) bool {
		_, _, ok := l.allow(user, addr, t0)
		return ok
	}
	for i := range 3 {
		if !fail("Root", "a") {
			t.Fatalf("attempt %d from a refused", i+1)
		}
	}
	if fail("root", "a") {
		t.Fatal("4th attempt on root from a allowed (usernames fold case)")
	}
	// Another address is not locked out by a's failures.
	refund, _, ok := l.allow("root", "b", t0)
	if !ok {
		t.Fatal("root from b refused after a's failures")
	}
	for range 10 { // successes give their token back: never limited
		refund()
		if refund, _, ok = l.allow("root", "b", t0); !ok {
			t.Fatal("a successful user was limited")
		}
	}
	refund()
	// Spread over many addresses: the per-user bucket (6) runs dry; then
	// each fresh address gets one attempt, an address that tried none more.
	for i := range 5 {
		fail("root", "spread"+string(rune('0'+i)))
	}
	if !fail("root", "fresh1") {
		t.Fatal("a fresh address got no attempt")
	}
	if fail("root", "fresh1") {
		t.Fatal("a second attempt from a spreading address got through a dry per-user bucket")
	}
	// Other users are untouched.
	if !fail("alice", "fresh1") {
		t.Fatal("alice limited by root's attempts")
	}
}
