package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/actors/actortest"
	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/token"
	"sensorhub/messages"

	"sensorhub/internal/testenv"
)

func TestLoginTokenVerifiesWithPublishedKeys(t *testing.T) {
	e := newEnv(t, nil)
	reply, err := e.login(t, "root", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if reply.TokenType != "bearer" || reply.ExpiresIn != 3600 || reply.AccessToken == "" {
		t.Fatalf("reply = %+v", reply)
	}

	// With the keys from the jwks endpoint.
	var jwks messages.JWKS
	if err := e.request(t, e.subj.AuthJWKS(), nil, &jwks); err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(jwks, token.VerifierConfig{})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(reply.AccessToken, time.Now())
	if err != nil {
		t.Fatalf("verify with the endpoint's JWKS: %v", err)
	}
	if claims.Subject != "root" || len(claims.Roles) != 1 || claims.Roles[0] != messages.RoleAdmin || claims.ID == "" {
		t.Errorf("claims = %+v", claims)
	}

	// With the keys published in the KV bucket.
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
	kv, _ := ks.Verifier()
	if _, err := kv.Verify(reply.AccessToken, time.Now()); err != nil {
		t.Fatalf("verify with the KV JWKS: %v", err)
	}

	// And auth.validate agrees.
	var vr messages.ValidateReply
	if err := e.request(t, e.subj.AuthValidate(), messages.ValidateRequest{Token: reply.AccessToken}, &vr); err != nil {
		t.Fatal(err)
	}
	if !vr.Valid || vr.Subject != "root" || vr.AuthMode != messages.AuthModeOnline || vr.TokenID != claims.ID || !vr.HasRole(messages.RoleAdmin) {
		t.Errorf("validate reply = %+v", vr)
	}
}

func TestKeyFileIsKeptAcrossRestarts(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.mustLogin(t, "alice")
	kid := e.svc.signer.KeyID()
	if err := e.svc.Stop(wait); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	if e.svc.signer.KeyID() != kid {
		t.Fatal("a restarted auth signs with a new key")
	}
	var vr messages.ValidateReply
	if err := e.request(t, e.subj.AuthValidate(), messages.ValidateRequest{Token: tok}, &vr); err != nil {
		t.Fatalf("old token after restart: %v", err)
	}
}

func TestUnknownUserAndWrongPasswordGetIdenticalAnswers(t *testing.T) {
	e := newEnv(t, nil)
	raw := func(user, password string) ([]byte, string, string) {
		t.Helper()
		body, _ := json.Marshal(messages.TokenRequest{Username: user, Password: password})
		msg, err := e.edge.Request(e.subj.AuthTokenForwarded(), body, wait)
		if err != nil {
			t.Fatal(err)
		}
		return msg.Data, msg.Header.Get(micro.ErrorCodeHeader), msg.Header.Get(micro.ErrorHeader)
	}
	wrongBody, wrongCode, wrongDesc := raw("alice", "wrong")
	unknownBody, unknownCode, unknownDesc := raw("mallory", "wrong")
	disabledBody, _, _ := raw("bob", "secret")
	if !bytes.Equal(wrongBody, unknownBody) || wrongCode != unknownCode || wrongDesc != unknownDesc {
		t.Errorf("answers differ:\nwrong password: %s %s %s\nunknown user:   %s %s %s", wrongCode, wrongDesc, wrongBody, unknownCode, unknownDesc, unknownBody)
	}
	if !bytes.Equal(wrongBody, disabledBody) {
		t.Errorf("disabled user answer %s differs from %s", disabledBody, wrongBody)
	}
	if wrongCode != "401" {
		t.Errorf("error code header = %q, want 401", wrongCode)
	}
	e2, err := messages.DecodeError(wrongBody)
	if err != nil || e2.Code != messages.CodeInvalidCredentials {
		t.Errorf("body = %s (%v)", wrongBody, err)
	}
}

func TestBadLoginRequests(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		body []byte
		code messages.Code
	}{
		{"not json", []byte("username=alice"), messages.CodeInvalidJSON},
		{"unknown field", []byte(`{"username":"alice","password":"x","admin":true}`), messages.CodeInvalidJSON},
		{"empty password", []byte(`{"username":"alice","password":""}`), messages.CodeBadRequest},
		{"password over 72 bytes", []byte(`{"username":"alice","password":"` + string(bytes.Repeat([]byte("x"), 73)) + `"}`), messages.CodeBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, e.request(t, e.subj.AuthTokenForwarded(), tc.body, nil), tc.code)
		})
	}
}

func TestValidate(t *testing.T) {
	e := newEnv(t, nil)
	good := e.mustLogin(t, "alice")
	expired, _, _ := e.svc.signer.Issue("alice", nil, time.Now().Add(-2*time.Hour))
	ghost, _, _ := e.svc.signer.Issue("ghost", nil, time.Now())
	otherKey := newTestSigner(t)
	forged, _, _ := otherKey.Issue("alice", []string{messages.RoleAdmin}, time.Now())

	tests := []struct {
		name    string
		tok     string
		code    messages.Code // "" for valid
		message string
	}{
		{"good", good, "", ""},
		{"expired", expired, messages.CodeUnauthorized, "token expired"},
		{"unknown user", ghost, messages.CodeUnauthorized, "user no longer exists"},
		{"forged", forged, messages.CodeUnauthorized, messages.ErrUnauthorized.Message},
		{"garbage", "abc.def.ghi", messages.CodeUnauthorized, messages.ErrUnauthorized.Message},
		{"empty", "", messages.CodeUnauthorized, messages.ErrUnauthorized.Message},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			var vr messages.ValidateReply
			msg, err := natsx.Request(ctx, e.edge, e.subj.AuthValidate(), messages.ValidateRequest{Token: tc.tok}, nil, &vr)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if vr.Subject != "alice" || msg.Header.Get(HeaderUserCheck) != "ok" {
					t.Errorf("reply %+v, user check %q", vr, msg.Header.Get(HeaderUserCheck))
				}
				return
			}
			if got := wantCode(t, err, tc.code); got.Message != tc.message {
				t.Errorf("message = %q, want %q", got.Message, tc.message)
			}
		})
	}
}

func TestDisabledUserRefusedAtLoginAndValidate(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.login(t, "bob", "secret")
	wantCode(t, err, messages.CodeInvalidCredentials)

	tok := e.mustLogin(t, "alice")
	ctx := context.Background()
	u, err := e.store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	u.Disabled = true
	if _, err := e.store.UpsertUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	err = e.request(t, e.subj.AuthValidate(), messages.ValidateRequest{Token: tok}, nil)
	if got := wantCode(t, err, messages.CodeUnauthorized); got.Message != "user disabled" {
		t.Errorf("message = %q", got.Message)
	}
	_, err = e.login(t, "alice", "secret")
	wantCode(t, err, messages.CodeInvalidCredentials)
}

func TestPanicInLoginAnswersAtOnceAndRestarts(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.LoginWorkers = 1
		c.beforeLogin = func(user string) {
			if user == "boom" {
				panic("injected failure")
			}
		}
	})
	// The request gets an internal error, not a timeout: the reply goes out
	// before the restart.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	_, err := natsx.Request(ctx, e.edge, e.subj.AuthTokenForwarded(), messages.TokenRequest{Username: "boom", Password: "x"}, nil, nil)
	wantCode(t, err, messages.CodeInternal)
	if time.Since(start) >= wait {
		t.Fatal("answered only at the deadline")
	}
	rec := e.logs.WaitFor(t, "actor supervision", "directive", "restart")
	if rec.Attr("actor") != "auth/login-0" || rec.Attr("reason") != "injected failure" {
		t.Errorf("supervision record = %s", rec)
	}
	if n := e.logs.Count("actor supervision"); n != 1 {
		t.Errorf("%d supervision lines, want 1", n)
	}
	// The next login is served by the restarted actor.
	e.mustLogin(t, "alice")
	if e.svc.Role().Restarts("login-0") != 1 {
		t.Errorf("restarts = %d", e.svc.Role().Restarts("login-0"))
	}
}

func TestCrashedActorsRestartAndServe(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LoginWorkers = 1; c.ValidateWorkers = 1 })
	role := e.svc.Role()
	names := []string{"login-0", "validate-0", ActorJWKS, ActorHealth}
	for _, name := range names {
		if role.Child(name) == nil {
			t.Fatalf("no actor %s in %v", name, role.Names())
		}
		role.Send(role.Child(name), &supervise.Crash{Reason: "chaos " + name})
	}
	for _, name := range names {
		e.logs.WaitFor(t, "actor supervision", "actor", "auth/"+name, "directive", "restart")
	}
	tok := e.mustLogin(t, "alice")
	if err := e.request(t, e.subj.AuthValidate(), messages.ValidateRequest{Token: tok}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.request(t, e.subj.AuthJWKS(), nil, &messages.JWKS{}); err != nil {
		t.Fatal(err)
	}
	if err := e.request(t, e.subj.Health(messages.RoleAuth), nil, &messages.HealthReply{}); err != nil {
		t.Fatal(err)
	}
}

func TestDatabaseDown(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.DatabaseBreaker = breaker.Config{Failures: 3, OpenFor: time.Hour, CallTimeout: time.Second}
	})
	tok := e.mustLogin(t, "alice")
	e.store.down.Store(true)

	for i := range 3 {
		start := time.Now()
		_, err := e.login(t, "alice", "secret")
		if got := wantCode(t, err, messages.CodeDatabaseUnavailable); got.Message != messages.MsgDatabaseUnavailable {
			t.Errorf("message = %q", got.Message)
		}
		if time.Since(start) >= wait {
			t.Fatalf("login %d: answered only at the deadline", i)
		}
	}
	if state := e.svc.db.State(); state != messages.BreakerOpen {
		t.Fatalf("breaker %s after 3 failures, want open", state)
	}
	e.logs.WaitFor(t, "circuit breaker state changed", "breaker", BreakerDatabase, "to", "open")

	// Open: answered without asking the database.
	calls := e.store.getUsers.Load()
	_, err := e.login(t, "alice", "secret")
	wantCode(t, err, messages.CodeDatabaseUnavailable)
	if e.store.getUsers.Load() != calls {
		t.Error("the open breaker let a call through")
	}

	// Validate still answers, on the signature alone, and says so.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var vr messages.ValidateReply
	msg, err := natsx.Request(ctx, e.edge, e.subj.AuthValidate(), messages.ValidateRequest{Token: tok}, nil, &vr)
	if err != nil {
		t.Fatal(err)
	}
	if vr.Subject != "alice" || vr.AuthMode != messages.AuthModeOnline || msg.Header.Get(HeaderUserCheck) != "skipped" {
		t.Errorf("reply %+v, user check %q", vr, msg.Header.Get(HeaderUserCheck))
	}

	// Health says degraded, with the database down and the breaker open.
	var h messages.HealthReply
	if err := e.request(t, e.subj.Health(messages.RoleAuth), nil, &h); err != nil {
		t.Fatal(err)
	}
	if h.Status != messages.HealthDegraded || h.Dependencies["database"].Status != messages.HealthDown ||
		h.Dependencies["nats"].Status != messages.HealthUp || h.CircuitBreakers[BreakerDatabase].State != messages.BreakerOpen {
		t.Errorf("health = %+v", h)
	}
	e.logs.WaitFor(t, "dependency lost", "dependency", DepDatabase)

	// The database answers again while the breaker is still open: the
	// health check pings it directly and says so, and the role stays
	// degraded until the breaker lets calls through (the one rule).
	e.store.down.Store(false)
	h = messages.HealthReply{}
	if err := e.request(t, e.subj.Health(messages.RoleAuth), nil, &h); err != nil {
		t.Fatal(err)
	}
	if h.Status != messages.HealthDegraded || h.Dependencies[DepDatabase].Status != messages.HealthUp ||
		h.CircuitBreakers[BreakerDatabase].State != messages.BreakerOpen {
		t.Errorf("health with the database back and the breaker open = %+v", h)
	}
	e.logs.WaitFor(t, "dependency regained", "dependency", DepDatabase)
}

func TestHealth(t *testing.T) {
	e := newEnv(t, nil)
	var h messages.HealthReply
	if err := e.request(t, e.subj.Health(messages.RoleAuth), nil, &h); err != nil {
		t.Fatal(err)
	}
	if h.Role != messages.RoleAuth || h.Status != messages.HealthOK || h.Instance == "" {
		t.Errorf("health = %+v", h)
	}
	for _, dep := range []string{"database", "nats"} {
		if d := h.Dependencies[dep]; d.Status != messages.HealthUp || d.Since == nil {
			t.Errorf("%s = %+v", dep, d)
		}
	}
	if b, ok := h.CircuitBreakers[BreakerDatabase]; !ok || b.State != messages.BreakerClosed {
		t.Errorf("breakers = %+v", h.CircuitBreakers)
	}
}

func TestMicroServiceDiscovery(t *testing.T) {
	e := newEnv(t, nil)
	subject, err := micro.ControlSubject(micro.InfoVerb, e.subj.ServiceName(messages.RoleAuth), "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.person(t, "alice", "secret").Request(subject, nil, wait)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "sensorhub-auth" {
		t.Errorf("name = %q", info.Name)
	}
	want := map[string]string{
		"token":           e.subj.AuthToken(),
		"token-forwarded": e.subj.AuthTokenForwarded(),
		"validate":        e.subj.AuthValidate(),
		"jwks":            e.subj.AuthJWKS(),
		"health":          e.subj.Health(messages.RoleAuth),
	}
	if len(info.Endpoints) != len(want) {
		t.Errorf("endpoints = %+v", info.Endpoints)
	}
	for _, ep := range info.Endpoints {
		if want[ep.Name] != ep.Subject {
			t.Errorf("endpoint %s on %s, want %s", ep.Name, ep.Subject, want[ep.Name])
		}
	}
}

func TestOverloadedLoginsAreRefusedAtOnce(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	e := newEnv(t, func(c *Config) {
		c.LoginWorkers = 1
		c.MaxPendingLogins = 1
		c.beforeLogin = func(user string) {
			if user == "root" {
				entered <- struct{}{}
				<-release
			}
		}
	})
	slowDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, err := natsx.Request(ctx, e.edge, e.subj.AuthTokenForwarded(), messages.TokenRequest{Username: "root", Password: "wrong"}, nil, nil)
		slowDone <- err
	}()
	actortest.Receive(t, entered)
	_, err := e.login(t, "alice", "secret")
	if got := wantCode(t, err, messages.CodeOverloaded); got.RetryAfter != 1 {
		t.Errorf("retry_after = %d", got.RetryAfter)
	}
	close(release)
	if err := actortest.Receive(t, slowDone); messages.CodeOf(err) != messages.CodeInvalidCredentials {
		t.Errorf("slow login: %v", err)
	}
	// The slot is released just after the reply went out.
	testenv.Eventually(t, "the login slot to be released", func() bool { return e.svc.logins.pending.Load() == 0 })
	e.mustLogin(t, "alice")
}

func TestStopAnswersNoMore(t *testing.T) {
	e := newEnv(t, nil)
	e.mustLogin(t, "alice")
	if err := e.svc.Stop(wait); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Stop(wait); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	_, err := e.login(t, "alice", "secret")
	if !natsx.IsUnreachable(err) {
		t.Fatalf("login after Stop: %v, want no responders", err)
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	e := newEnv(t, nil)
	for name, cfg := range map[string]Config{
		"no store":    {KeyFile: e.cfg.KeyFile},
		"no key file": {Store: e.store},
	} {
		if _, err := Start(context.Background(), e.nc, e.system, cfg); err == nil {
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

func TestStartWhileNATSIsDownPublishesLater(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.svc.Stop(wait); err != nil {
		t.Fatal(err)
	}
	e.nats.Shutdown()
	testenv.Eventually(t, "the client to notice NATS is gone", func() bool { return !e.nc.IsConnected() })
	e.cfg.KeyFile = t.TempDir() + "/new.pem" // a new key, so the KV must be updated
	e.start(t)
	e.logs.WaitFor(t, "cannot publish JWKS to JetStream yet; other roles cannot verify tokens locally until it works; retrying in the background")

	e.nats.Start()
	ks := e.keySource(t)
	testenv.Eventually(t, "the new key in the KV bucket", func() bool {
		v, _ := ks.Verifier()
		return v.KeyIDs()[0] == e.svc.signer.KeyID()
	})
	e.logs.WaitFor(t, "JWKS published to JetStream", "kid", e.svc.signer.KeyID())
	e.mustLogin(t, "alice")
}
