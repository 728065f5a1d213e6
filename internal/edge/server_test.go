package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

func TestNew(t *testing.T) {
	if _, err := New(nil, Config{}); !errors.Is(err, ErrNoConn) {
		t.Fatalf("New(nil) = %v, want ErrNoConn", err)
	}
	e := newEnv(t, testConfig())
	cfg := testConfig()
	cfg.LoginPerAddr = RateLimit{Every: time.Second, Burst: -1}
	if _, err := New(e.nc, cfg); err == nil {
		t.Fatal("New accepted a negative burst")
	}
	if got, want := e.srv.Breakers().Names(), []string{"edge.auth", "edge.bridge", "edge.sensor"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("breakers = %v, want %v", got, want)
	}
	s, err := New(e.nc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Addr != ":8000" || s.cfg.AuthBreaker.CallTimeout != DefaultLoginTimeout || s.cfg.SensorBreaker.CallTimeout != DefaultRequestTimeout || s.cfg.MaxBodyBytes != messages.MaxBodyBytes {
		t.Fatalf("defaults not applied: %+v", s.cfg)
	}
}

func TestRouteErrorsAreJSON(t *testing.T) {
	e := newEnv(t, testConfig())
	tests := []struct {
		method, path string
		status       int
		code         messages.Code
		allow        string
	}{
		{http.MethodGet, "/nope", 404, messages.CodeNotFound, ""},
		{http.MethodPost, "/", 405, messages.CodeMethodNotAllowed, "GET, HEAD"}, // GET / is the dashboard's redirect
		{http.MethodGet, "/ui/nope.js", 404, messages.CodeNotFound, ""},
		{http.MethodPost, "/ui/events", 405, messages.CodeMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/test/sensor/temperature/extra", 404, messages.CodeNotFound, ""},
		{http.MethodGet, "/auth/token", 405, messages.CodeMethodNotAllowed, "POST"},
		{http.MethodDelete, "/auth/token", 405, messages.CodeMethodNotAllowed, "POST"},
		{http.MethodGet, "/test/sensor/temperature", 405, messages.CodeMethodNotAllowed, "POST"},
		{http.MethodPost, "/health", 405, messages.CodeMethodNotAllowed, "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := e.do(tc.method, tc.path, "")
			envelope(t, rec, tc.status, tc.code)
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Fatalf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

// GET / leads to the dashboard, which the edge serves from the binary.
func TestRootRedirectsToTheDashboard(t *testing.T) {
	e := newEnv(t, testConfig())
	rec := e.do(http.MethodGet, "/", "")
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/ui/" {
		t.Fatalf("GET /: %d to %q, want 302 to /ui/", rec.Code, rec.Header().Get("Location"))
	}
	rec = e.do(http.MethodGet, "/ui/", "")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestPanicIsJSON500(t *testing.T) {
	e := newEnv(t, testConfig())
	h := e.srv.instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := newRecorder()
	h.ServeHTTP(rec, newLoginRequest(""))
	envelope(t, rec, http.StatusInternalServerError, messages.CodeInternal)

	// A panic after the answer started cuts the connection instead.
	half := e.srv.instrument(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		panic("late boom")
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	half.ServeHTTP(newRecorder(), newLoginRequest(""))
	t.Fatal("no panic after a late panic in the handler")
}

// serve runs e's server on a free port until cancel; done has Serve's
// result.
func serve(t *testing.T, e *env) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()
	return ln.Addr().String(), cancel, served
}

func TestServeShutsDownWithContext(t *testing.T) {
	e := newEnv(t, testConfig())
	addr, cancel, done := serve(t, e)

	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != 200 || string(body) != `{"status":"ok"}` || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("healthz over TCP = %d %s %v", res.StatusCode, body, res.Header)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after a graceful shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

// An open dashboard stream does not hold the shutdown: it ends when the
// shutdown begins, and Serve returns nil (a stream that held on would make
// the shutdown run out of ShutdownTimeout and Serve report it).
func TestServeShutsDownWithADashboardStreamOpen(t *testing.T) {
	e := newEnv(t, testConfig())
	addr, cancel, done := serve(t, e)

	res, err := http.Get("http://" + addr + "/ui/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	if line, err := rd.ReadString('\n'); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d %q %v", res.StatusCode, line, err)
	}
	testenv.Eventually(t, "the viewer counted", func() bool { return e.srv.Dashboard().Viewers() == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil: the open stream held the shutdown", err)
		}
	case <-time.After(testenv.Wait(t)):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := io.Copy(io.Discard, rd); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
}

func TestLogging(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			var buf testenv.Buffer
			cfg := testConfig()
			cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
			e := newEnv(t, cfg)
			e.stub(messages.RoleAuth, "token-forwarded", authStub)
			e.do(http.MethodGet, "/healthz", "")
			e.do(http.MethodPost, "/auth/token", "username=admin&password=admin123")
			e.do(http.MethodGet, "/"+strings.Repeat("x", 300), "")
			lines := strings.Count(buf.String(), "\n")
			if level == slog.LevelInfo && lines != 0 {
				t.Fatalf("logged at info when all is well:\n%s", buf.String())
			}
			if level == slog.LevelDebug {
				if lines != 3 || !strings.Contains(buf.String(), "route=\"POST /auth/token\"") || strings.Contains(buf.String(), strings.Repeat("x", 200)) {
					t.Fatalf("want one bounded debug line per request, got:\n%s", buf.String())
				}
			}
		})
	}
}

func TestListenAndServe(t *testing.T) {
	var buf testenv.Buffer
	cfg := testConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	e := newEnv(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.ListenAndServe(ctx) }()
	testenv.Eventually(t, "the listen address to be logged", func() bool {
		return strings.Contains(buf.String(), "http edge listening")
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after its context ended")
	}
	cfg.Addr = "127.0.0.1:-1"
	s, err := New(e.nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ListenAndServe(context.Background()); err == nil {
		t.Fatal("ListenAndServe on a bad address returned nil")
	}
}
