package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// fixture is a dashboard on a real embedded NATS server, as the edge
// (its identity), with a counting stand-in for the edge's health: the
// roles' health over NATS is the system tests' to prove.
type fixture struct {
	t      *testing.T
	nats   *testenv.NATSServer
	dash   *Dashboard
	srv    *httptest.Server
	health atomic.Int64 // samples taken
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{t: t, nats: testenv.NATS(t)}
	nc := f.nats.Conn(t, messages.RoleEdge)
	cfg.Conn, cfg.Subjects = nc, messages.DefaultSubjects()
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Health = func(context.Context) messages.EdgeHealth {
		f.health.Add(1)
		return messages.EdgeHealth{Status: messages.HealthOK, Services: map[string]messages.HealthReply{
			messages.RoleEdge: {Role: messages.RoleEdge, Status: messages.HealthOK,
				CircuitBreakers: map[string]messages.BreakerHealth{"edge.sensor": {State: messages.BreakerClosed}}},
		}, CircuitBreakers: map[string]messages.BreakerHealth{"edge.sensor": {State: messages.BreakerClosed}}}
	}
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	f.dash = New(cfg)
	mux := http.NewServeMux()
	for _, rt := range f.dash.Routes() {
		mux.HandleFunc(rt.Pattern, rt.Handler)
	}
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() { f.dash.Close(); f.srv.Close() })
	return f
}

// stream is one open GET /ui/events, read event by event.
type stream struct {
	resp   *http.Response
	events chan sse
	cancel context.CancelFunc
}

type sse struct{ name, data string }

func (f *fixture) open() *stream {
	f.t.Helper()
	ctx, cancel := context.WithCancel(f.t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+PathEvents, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	s := &stream{resp: resp, events: make(chan sse, 1024), cancel: cancel}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			case line == "" && ev.name != "":
				s.events <- ev
				ev = sse{}
			}
		}
	}()
	f.t.Cleanup(func() { cancel(); _ = resp.Body.Close() })
	return s
}

func (s *stream) next(t *testing.T) (sse, bool) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(testenv.Wait(t)):
		t.Fatal("no event")
	}
	return sse{}, false
}

func (s *stream) nextState(t *testing.T) State {
	t.Helper()
	for {
		ev, ok := s.next(t)
		if !ok {
			t.Fatal("stream ended")
		}
		if ev.name != "state" {
			continue
		}
		var st State
		if err := json.Unmarshal([]byte(ev.data), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
}

// Nobody watching: nothing is sampled. A viewer starts the sampling, the
// first sample at once; when the last viewer goes it stops.
func TestSamplesOnlyWhileWatched(t *testing.T) {
	f := newFixture(t, Config{})
	if f.dash.Watching() || f.health.Load() != 0 {
		t.Fatalf("watching %v, %d samples before any viewer", f.dash.Watching(), f.health.Load())
	}
	s := f.open()
	if ev, _ := s.next(t); ev.name != "snapshot" || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("first event %q (%s), want snapshot on an event stream", ev.name, s.resp.Header.Get("Content-Type"))
	}
	st := s.nextState(t)
	if !st.Edge.NATSConnected || len(st.Roles) != 4 || st.Roles[3].Name != messages.RoleEdge || st.Roles[3].Status != StatusUp {
		t.Fatalf("state %+v", st)
	}
	if !f.dash.Watching() {
		t.Fatal("not watching with a viewer")
	}
	s.cancel()
	testenv.Eventually(t, "the sampling to stop once the viewer left", func() bool { return !f.dash.Watching() && f.dash.Viewers() == 0 })
	f.dash.mu.Lock()
	running := f.dash.stop != nil
	f.dash.mu.Unlock()
	if running {
		t.Fatal("sampling loop still set after the last viewer left")
	}
}

// One sample goes to every viewer: three viewers cost the samples one
// viewer would, not three times as many.
func TestOneSampleFansOutToEveryViewer(t *testing.T) {
	f := newFixture(t, Config{})
	streams := []*stream{f.open(), f.open(), f.open()}
	testenv.Eventually(t, "three viewers", func() bool { return f.dash.Viewers() == 3 })
	const n = 10
	seen := make([]map[time.Time]bool, len(streams))
	for i, s := range streams {
		seen[i] = map[time.Time]bool{}
		for range n {
			seen[i][s.nextState(t).At] = true
		}
	}
	// Every viewer saw samples the others saw too (the same instants).
	common := 0
	for at := range seen[0] {
		if seen[1][at] && seen[2][at] {
			common++
		}
	}
	if common < n-2 {
		t.Fatalf("only %d of %d samples were shared by all three viewers", common, n)
	}
	if taken := f.health.Load(); taken > 2*n {
		t.Fatalf("%d samples taken for 3 viewers receiving %d each: one per viewer?", taken, n)
	}
}

// A viewer that does not read is dropped, not waited for: the others keep
// getting samples.
func TestSlowViewerIsDropped(t *testing.T) {
	f := newFixture(t, Config{})
	fast := f.open()
	fast.nextState(t)
	stuck, err := f.dash.join() // a viewer that never reads its channel
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stuck.gone:
	case <-time.After(testenv.Wait(t)):
		t.Fatal("the stuck viewer was never dropped")
	}
	for range viewerBuffer + 2 {
		fast.nextState(t)
	}
	if n := f.dash.Viewers(); n != 1 {
		t.Fatalf("%d viewers, want the reading one only", n)
	}
}

// Close ends the open streams (the edge's shutdown must not wait for
// them) and refuses new ones with a clear 503.
func TestCloseEndsTheStreams(t *testing.T) {
	f := newFixture(t, Config{})
	s := f.open()
	s.nextState(t)
	f.dash.Close()
	for {
		_, ok := s.next(t)
		if !ok {
			break
		}
	}
	resp, err := http.Get(f.srv.URL + PathEvents)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if e, _ := messages.DecodeError(body); resp.StatusCode != http.StatusServiceUnavailable || e == nil || e.Code != messages.CodeUnavailable {
		t.Fatalf("after close: %d %s, want 503 %s", resp.StatusCode, body, messages.CodeUnavailable)
	}
}

// Past MaxViewers a stream is refused 503 overloaded, and the open ones
// are unaffected.
func TestTooManyViewers(t *testing.T) {
	f := newFixture(t, Config{MaxViewers: 1})
	s := f.open()
	s.nextState(t)
	resp, err := http.Get(f.srv.URL + PathEvents)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if e, _ := messages.DecodeError(body); resp.StatusCode != http.StatusServiceUnavailable || e == nil || e.Code != messages.CodeOverloaded || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second viewer: %d %s, want 503 %s with Retry-After", resp.StatusCode, body, messages.CodeOverloaded)
	}
	s.nextState(t)
}

// The edge losing NATS is in every sample (the banner), with the last
// known picture marked stale; it clears when NATS is back.
func TestEdgeWithoutNATSIsShown(t *testing.T) {
	f := newFixture(t, Config{})
	s := f.open()
	if st := s.nextState(t); !st.Edge.NATSConnected || st.Edge.Stale {
		t.Fatalf("connected edge shown as %+v", st.Edge)
	}
	f.nats.Shutdown()
	for {
		st := s.nextState(t)
		if !st.Edge.NATSConnected {
			if !st.Edge.Stale || len(st.Roles) != 4 || st.Edge.NATSStatus == "CONNECTED" {
				t.Fatalf("edge without NATS shown as %+v with %d roles", st.Edge, len(st.Roles))
			}
			break
		}
	}
	f.nats.Start()
	for !s.nextState(t).Edge.NATSConnected {
	}
}

// The page and its files are served from the binary with a policy that
// keeps the browser to this origin; GET / leads to it; anything else under
// /ui/ is a JSON 404.
func TestPageIsServed(t *testing.T) {
	f := newFixture(t, Config{})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		resp, err := client.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp, string(b)
	}
	if resp, _ := get("/"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != PathPage {
		t.Fatalf("GET /: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := get(PathPage)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `src="app.js"`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /ui/: %d %q, CSP %q", resp.StatusCode, body[:min(len(body), 80)], resp.Header.Get("Content-Security-Policy"))
	}
	for _, name := range []string{"app.js", "app.css"} {
		if resp, body := get(PathPage + name); resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("GET /ui/%s: %d", name, resp.StatusCode)
		}
	}
	for _, path := range []string{"/ui/nope.js", "/ui/static/app.js", "/ui/app.js/x"} {
		resp, body := get(path)
		if e, _ := messages.DecodeError([]byte(body)); resp.StatusCode != http.StatusNotFound || e == nil || e.Code != messages.CodeNotFound {
			t.Errorf("GET %s: %d %s, want 404 %s", path, resp.StatusCode, body, messages.CodeNotFound)
		}
	}
	// Nothing on the page comes from another origin.
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"http://", "https://", "//cdn"} {
			if i := strings.Index(string(b), s); i >= 0 && !strings.Contains(string(b[i:min(len(b), i+40)]), "www.w3.org/2000/svg") {
				t.Errorf("%s refers to another origin: %q", name, b[i:min(len(b), i+60)])
			}
		}
	}
}

// GET /ui/state answers a snapshot even with nobody watching (one sample
// of its own), and leaves the sampling off.
func TestStateWithoutViewers(t *testing.T) {
	f := newFixture(t, Config{})
	resp, err := http.Get(f.srv.URL + PathState)
	if err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	err = json.NewDecoder(resp.Body).Decode(&snap)
	_ = resp.Body.Close()
	if err != nil || snap.State == nil || len(snap.State.Roles) != 4 || len(snap.History) != 1 {
		t.Fatalf("snapshot %+v (%v)", snap, err)
	}
	if f.dash.Watching() || f.health.Load() != 1 {
		t.Fatalf("watching %v after %d samples", f.dash.Watching(), f.health.Load())
	}
}
