package edge

import (
	"bytes"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/natsx"
	"sensorhub/messages"

	"sensorhub/internal/testenv"
)

var goodToken = messages.TokenReply{AccessToken: "jwt.jwt.jwt", TokenType: "bearer", ExpiresIn: 900}

// authStub answers admin/admin123 with a token and anything else with
// invalid_credentials, as the auth role does.
func authStub(req micro.Request) {
	r, err := messages.DecodeTokenRequest(req.Data())
	if err != nil {
		_ = natsx.ReplyError(req, err)
		return
	}
	if r.Username != "admin" || r.Password != "admin123" {
		_ = natsx.ReplyError(req, messages.ErrInvalidCredentials)
		return
	}
	_ = natsx.ReplyJSON(req, goodToken)
}

func TestLogin(t *testing.T) {
	e := newEnv(t, testConfig())
	st := e.stub(messages.RoleAuth, "token-forwarded", authStub)
	tests := []struct {
		name, contentType, body string
	}{
		{"form", "application/x-www-form-urlencoded", "username=admin&password=admin123"},
		{"form without content type", "", "username=admin&password=admin123"},
		{"oauth2 password grant", "application/x-www-form-urlencoded", "grant_type=password&username=admin&password=admin123&scope="},
		{"json", "application/json", `{"username":"admin","password":"admin123"}`},
		{"json with charset", "application/json; charset=utf-8", `{"username":"admin","password":"admin123"}`},
		{"json without content type", "", ` {"username":"admin","password":"admin123"}`},
		{"client_addr from the client is ignored", "application/json", `{"username":"admin","password":"admin123","client_addr":"10.9.9.9"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.contentType != "" {
				hdr = []string{"Content-Type", tc.contentType}
			}
			rec := e.do(http.MethodPost, "/auth/token", tc.body, hdr...)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
			}
			if got := decodeBody[messages.TokenReply](t, rec); got != goodToken {
				t.Fatalf("reply = %+v, want %+v", got, goodToken)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control = %q, want no-store", cc)
			}
			data, _ := st.last()
			sent, err := messages.DecodeTokenRequest(data)
			if err != nil {
				t.Fatalf("auth got %q: %v", data, err)
			}
			// httptest requests come from 192.0.2.1.
			if sent.ClientAddr != "192.0.2.1" {
				t.Fatalf("client_addr = %q, want 192.0.2.1", sent.ClientAddr)
			}
		})
	}
}

func TestLoginRejectedAtEdge(t *testing.T) {
	e := newEnv(t, testConfig())
	st := e.stub(messages.RoleAuth, "token-forwarded", authStub)
	form := "application/x-www-form-urlencoded"
	js := "application/json"
	tests := []struct {
		name, contentType, body string
		status                  int
		code                    messages.Code
	}{
		{"empty body", "", "", 400, messages.CodeBadRequest},
		{"no password", form, "username=admin", 400, messages.CodeBadRequest},
		{"empty password", form, "username=admin&password=", 400, messages.CodeBadRequest},
		{"bad escape", form, "username=%zz&password=x", 400, messages.CodeBadRequest},
		{"semicolon", form, "username=a;b&password=x", 400, messages.CodeBadRequest},
		{"username twice", form, "username=a&username=admin&password=admin123", 400, messages.CodeBadRequest},
		{"other grant type", form, "grant_type=client_credentials&username=admin&password=admin123", 400, messages.CodeBadRequest},
		{"username too long", form, "username=" + strings.Repeat("u", 65) + "&password=x", 400, messages.CodeBadRequest},
		{"password too long", form, "username=admin&password=" + strings.Repeat("p", 73), 400, messages.CodeBadRequest},
		{"username not utf-8", form, "username=%ff&password=x", 400, messages.CodeBadRequest},
		{"password not utf-8", form, "username=admin&password=%ff%fe", 400, messages.CodeBadRequest},
		{"unsupported content type", "text/plain", "username=admin&password=admin123", 400, messages.CodeBadRequest},
		{"malformed content type", "application/", "username=admin&password=admin123", 400, messages.CodeBadRequest},
		{"truncated json", js, `{"username":"admin"`, 400, messages.CodeInvalidJSON},
		{"json wrong type", js, `{"username":1,"password":"x"}`, 400, messages.CodeInvalidJSON},
		{"json unknown field", js, `{"username":"a","password":"b","admin":true}`, 400, messages.CodeInvalidJSON},
		{"json array", js, `["admin","admin123"]`, 400, messages.CodeInvalidJSON},
		{"json trailing data", js, `{"username":"admin","password":"admin123"}{}`, 400, messages.CodeInvalidJSON},
		{"json empty password", js, `{"username":"admin","password":""}`, 400, messages.CodeBadRequest},
		{"oversize body", form, "username=admin&password=x&pad=" + strings.Repeat("a", 20<<10), 413, messages.CodeBodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.contentType != "" {
				hdr = []string{"Content-Type", tc.contentType}
			}
			envelope(t, e.do(http.MethodPost, "/auth/token", tc.body, hdr...), tc.status, tc.code)
		})
	}
	if n := st.count(); n != 0 {
		t.Fatalf("auth was called %d times for bad input, want 0", n)
	}
}

func TestLoginInvalidCredentialsPassthrough(t *testing.T) {
	e := newEnv(t, testConfig())
	e.stub(messages.RoleAuth, "token-forwarded", authStub)
	for range 6 { // more than Failures: a 401 must not count against auth
		rec := e.do(http.MethodPost, "/auth/token", "username=admin&password=wrong")
		envelope(t, rec, http.StatusUnauthorized, messages.CodeInvalidCredentials)
		if want := messages.ErrInvalidCredentials.JSON(); !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("body = %s, want %s", rec.Body, want)
		}
	}
	h := e.srv.Breakers().Health()["edge.auth"]
	if h.State != messages.BreakerClosed || h.TotalFailures != 0 {
		t.Fatalf("edge.auth = %+v, want closed without failures", h)
	}
}

func TestLoginAuthDown(t *testing.T) {
	e := newEnv(t, testConfig()) // breakers open after 3 failures, for an hour
	want := `{"error":"auth service unavailable","code":"auth_unavailable"}`
	for i := range 3 {
		rec := e.do(http.MethodPost, "/auth/token", "username=admin&password=admin123")
		envelope(t, rec, http.StatusServiceUnavailable, messages.CodeAuthUnavailable)
		if rec.Body.String() != want {
			t.Fatalf("call %d: body = %s, want %s", i, rec.Body, want)
		}
	}
	if got := e.srv.Breakers().Health()["edge.auth"].State; got != messages.BreakerOpen {
		t.Fatalf("edge.auth = %s after 3 unanswered calls, want open", got)
	}
	// Auth is back, but the open breaker answers without asking it.
	st := e.stub(messages.RoleAuth, "token-forwarded", authStub)
	for range 5 {
		envelope(t, e.do(http.MethodPost, "/auth/token", "username=admin&password=admin123"),
			http.StatusServiceUnavailable, messages.CodeAuthUnavailable)
	}
	if n := st.count(); n != 0 {
		t.Fatalf("auth reached %d times through an open breaker", n)
	}
	// The other breakers are untouched.
	if got := e.srv.Breakers().Health()["edge.sensor"].State; got != messages.BreakerClosed {
		t.Fatalf("edge.sensor = %s, want closed", got)
	}
}

func TestAuthBreakerRecovers(t *testing.T) {
	cfg := testConfig()
	cfg.AuthBreaker.OpenFor = 20 * time.Millisecond
	e := newEnv(t, cfg)
	for range 3 {
		e.do(http.MethodPost, "/auth/token", "username=admin&password=admin123")
	}
	e.stub(messages.RoleAuth, "token-forwarded", authStub)
	testenv.Eventually(t, "login to succeed after auth returns", func() bool {
		return e.do(http.MethodPost, "/auth/token", "username=admin&password=admin123").Code == http.StatusOK
	})
	if got := e.srv.Breakers().Health()["edge.auth"].State; got != messages.BreakerClosed {
		t.Fatalf("edge.auth = %s, want closed", got)
	}
}

func retryAfter(t *testing.T, rec interface{ Header() http.Header }) int {
	t.Helper()
	n, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds >= 1", rec.Header().Get("Retry-After"))
	}
	return n
}

// The limits that protect passwords live in the auth role: its
// rate_limited answer reaches the client as 429 with Retry-After.
func TestLoginRateLimitedByAuth(t *testing.T) {
	e := newEnv(t, testConfig())
	e.stub(messages.RoleAuth, "token-forwarded", func(req micro.Request) {
		_ = natsx.ReplyError(req, &messages.Error{Code: messages.CodeRateLimited, Message: "too many login attempts, try again later", RetryAfter: 7})
	})
	rec := e.do(http.MethodPost, "/auth/token", "username=admin&password=nope")
	env := envelope(t, rec, http.StatusTooManyRequests, messages.CodeRateLimited)
	if n := retryAfter(t, rec); n != 7 || env.RetryAfter != 7 {
		t.Fatalf("Retry-After %d, retry_after %d, want auth's 7", n, env.RetryAfter)
	}
	if got := e.srv.Breakers().Health()["edge.auth"].State; got != messages.BreakerClosed {
		t.Fatalf("a rate-limited login counted against the auth breaker: %s", got)
	}
}

func TestLoginRateLimitPerAddress(t *testing.T) {
	cfg := testConfig()
	cfg.LoginPerAddr = RateLimit{Every: time.Hour, Burst: 3}
	e := newEnv(t, cfg)
	e.stub(messages.RoleAuth, "token-forwarded", authStub)
	login := func(user, addr string) *http.Response {
		t.Helper()
		req := newLoginRequest("username=" + user + "&password=x")
		req.RemoteAddr = addr
		return e.serve(req)
	}
	for _, u := range []string{"u1", "u2", "u3"} {
		if res := login(u, "198.51.100.7:1000"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401 from auth", u, res.StatusCode)
		}
	}
	res := login("u4", "198.51.100.7:2000")
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("4th from one address: status %d, Retry-After %q; want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	// Another address has its own bucket.
	if res := login("u4", "198.51.100.8:1000"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("u4 from another address: status %d, want 401 from auth", res.StatusCode)
	}
	// IPv6 clients are limited per /64.
	for i, addr := range []string{"[2001:db8:1:1::1]:1", "[2001:db8:1:1::2]:1", "[2001:db8:1:1::3]:1"} {
		if res := login("v"+strconv.Itoa(i), addr); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: status %d", addr, res.StatusCode)
		}
	}
	if res := login("v9", "[2001:db8:1:1:ffff::9]:1"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th from one /64: status %d, want 429", res.StatusCode)
	}
}

func TestLoginForwardedFor(t *testing.T) {
	proxy := netip.MustParsePrefix("10.0.0.0/24")
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		xff     string
		want    string
	}{
		{"untrusted peer: the peer", nil, "6.6.6.6, 203.0.113.9", "10.0.0.1"},
		{"trusted proxy: its entry", []netip.Prefix{proxy}, "6.6.6.6, 203.0.113.9", "203.0.113.9"},
		{"chain of trusted proxies: the first untrusted from the right", []netip.Prefix{proxy}, "6.6.6.6, 203.0.113.9, 10.0.0.7", "203.0.113.9"},
		{"trusted proxy, garbage entry: the last trusted hop", []netip.Prefix{proxy}, "203.0.113.9, not-an-ip", "10.0.0.1"},
		{"trusted proxy, no header: the proxy", []netip.Prefix{proxy}, "", "10.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.TrustedProxies = tc.trusted
			e := newEnv(t, cfg)
			st := e.stub(messages.RoleAuth, "token-forwarded", authStub)
			req := newLoginRequest("username=a&password=x")
			req.RemoteAddr = "10.0.0.1:4000" // the proxy
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := e.serve(req).StatusCode; got != http.StatusUnauthorized {
				t.Fatalf("status %d", got)
			}
			data, _ := st.last()
			sent, _ := messages.DecodeTokenRequest(data)
			if sent.ClientAddr != tc.want {
				t.Fatalf("client_addr = %q, want %q", sent.ClientAddr, tc.want)
			}
		})
	}
}

func TestLoginLimiterBounded(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := newLoginLimiter(RateLimit{Every: time.Second, Burst: 2}, 3)
	for i := range 10 {
		if _, ok := l.allow("addr"+strconv.Itoa(i), t0); !ok {
			t.Fatalf("fresh address %d refused", i)
		}
	}
	if n := l.byAddr.Len(); n != 3 {
		t.Fatalf("kept %d buckets, want the cap 3", n)
	}
	// Refill: two attempts empty the bucket, a third waits about a second.
	l.allow("x", t0)
	l.allow("x", t0)
	wait, ok := l.allow("x", t0)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("third attempt: ok=%v wait=%v, want refused with 0 < wait <= 1s", ok, wait)
	}
	if _, ok := l.allow("x", t0.Add(wait)); !ok {
		t.Fatal("refused after waiting as told")
	}
	// Buckets untouched long enough to be full again are dropped.
	if _, ok := l.allow("y", t0.Add(time.Hour)); !ok {
		t.Fatal("refused after an hour")
	}
	if n := l.byAddr.Len(); n != 1 {
		t.Fatalf("after idling kept %d buckets, want 1", n)
	}
}
