package edge

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// env is an edge in front of a real embedded NATS, with stub services
// standing in for the other roles.
type env struct {
	t    testing.TB
	nats *testenv.NATSServer
	nc   *nats.Conn // the edge's connection
	// stubNC are the stubs' connections, one per role and with its
	// identity (a stub answers only what that role may answer).
	stubNC map[string]*nats.Conn
	subj   messages.Subjects
	srv    *Server
}

// testConfig opens breakers after 3 failures and keeps them open for an
// hour, so a test decides when a probe may pass.
func testConfig() Config {
	br := breaker.Config{Failures: 3, OpenFor: time.Hour}
	return Config{
		AuthBreaker: br, SensorBreaker: br, BridgeBreaker: br,
		LoginPerAddr: RateLimit{Every: time.Hour, Burst: 1000},
	}
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	n := testenv.NATS(t)
	discard := slog.New(slog.DiscardHandler)
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: n.URL(), Name: "edge-test", Credentials: n.Creds(messages.RoleEdge), Logger: discard, ReconnectWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	if err := natsx.WaitConnected(ctx, nc); err != nil {
		t.Fatalf("wait connected: %v", err)
	}
	cfg.Subjects = messages.DefaultSubjects()
	if cfg.Logger == nil {
		cfg.Logger = discard
	}
	s, err := New(nc, cfg)
	if err != nil {
		t.Fatalf("new edge: %v", err)
	}
	return &env{t: t, nats: n, nc: nc, stubNC: map[string]*nats.Conn{}, subj: cfg.Subjects, srv: s}
}

// stubConn is the connection of role's stubs.
func (e *env) stubConn(role string) *nats.Conn {
	if nc, ok := e.stubNC[role]; ok {
		return nc
	}
	nc := e.nats.Conn(e.t, role)
	e.stubNC[role] = nc
	return nc
}

// stub is one endpoint of a stand-in service; it records what it received.
type stub struct {
	svc     micro.Service
	nc      *nats.Conn
	mu      sync.Mutex
	calls   int
	bodies  [][]byte
	headers []nats.Header
}

// stub registers role's endpoint name answering with fn.
func (e *env) stub(role, name string, fn func(micro.Request)) *stub {
	e.t.Helper()
	nc := e.stubConn(role)
	st := &stub{nc: nc}
	subject := ""
	if role == messages.RoleAuth && name == "token-forwarded" {
		subject = e.subj.AuthTokenForwarded()
	}
	svc, err := natsx.AddService(nc, e.subj, role, "test stub", natsx.Endpoint{
		Name:    name,
		Subject: subject,
		Handler: func(req micro.Request) {
			st.mu.Lock()
			st.calls++
			st.bodies = append(st.bodies, append([]byte(nil), req.Data()...))
			st.headers = append(st.headers, maps.Clone(nats.Header(req.Headers())))
			st.mu.Unlock()
			fn(req)
		},
	})
	if err != nil {
		e.t.Fatalf("add stub %s.%s: %v", role, name, err)
	}
	st.svc = svc
	e.t.Cleanup(func() { _ = svc.Stop() })
	// The subscription must reach the server before the edge asks.
	if err := nc.Flush(); err != nil {
		e.t.Fatalf("flush: %v", err)
	}
	return st
}

// stop takes the endpoint away, as if its role had died.
func (st *stub) stop(t testing.TB) {
	t.Helper()
	if err := st.svc.Stop(); err != nil {
		t.Fatalf("stop stub: %v", err)
	}
	// The unsubscribe must reach the server before the edge asks again.
	if err := st.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func (st *stub) count() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.calls
}

func (st *stub) last() ([]byte, nats.Header) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.bodies) == 0 {
		return nil, nil
	}
	return st.bodies[len(st.bodies)-1], st.headers[len(st.headers)-1]
}

func replyJSON(v any) func(micro.Request) {
	return func(req micro.Request) { _ = natsx.ReplyJSON(req, v) }
}

// do sends a request to the edge's handler; hdr is key, value pairs.
func (e *env) do(method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// envelope checks that rec is a JSON error envelope with status and code.
func envelope(t testing.TB, rec *httptest.ResponseRecorder, status int, code messages.Code) *messages.Error {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	e, err := messages.DecodeError(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("body %q is not an envelope: %v", rec.Body, err)
	}
	if e.Code != code || e.Message == "" {
		t.Fatalf("envelope = %+v, want code %s and a message", e, code)
	}
	return e
}

func decodeBody[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
	return v
}

const bearerHdr = "Bearer tok-123"

func newLoginRequest(body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func (e *env) record(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func (e *env) serve(req *http.Request) *http.Response { return e.record(req).Result() }

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
