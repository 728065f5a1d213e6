package bench

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sensorhub/internal/testenv"
)

// burnCPU spins until stop is closed: the work a profile must find.
//
//go:noinline
func burnCPU(stop <-chan struct{}) uint64 {
	x := uint64(1)
	for {
		for range 100_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		select {
		case <-stop:
			return x
		default:
		}
	}
}

// startBurning runs burnCPU until the test ends.
func startBurning(t *testing.T) {
	stop := make(chan struct{})
	var burner sync.WaitGroup
	burner.Go(func() { burnCPU(stop) })
	t.Cleanup(func() { close(stop); burner.Wait() })
}

// pprofServer serves this process's net/http/pprof profile, as
// `sensorhub dev --pprof` does its own.
func pprofServer(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func burnsCPU(frames []string) bool {
	return slices.ContainsFunc(frames, func(f string) bool { return strings.HasSuffix(f, "internal/bench.burnCPU") })
}

// A profile of a second from a live net/http/pprof, fetched as the bench
// fetches it, finds the goroutine that burns CPU meanwhile: its stacks get
// most of the samples, and the rules put them in "sensorhub other" (the
// bench is sensorhub code no rule names).
func TestFetchProfileFindsTheBusyFunction(t *testing.T) {
	url := pprofServer(t)
	startBurning(t)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait(t))
	defer cancel()
	p, err := fetchProfile(ctx, url, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := budgetOf(p, func(frames []string) string {
		if burnsCPU(frames) {
			return "burn"
		}
		return "rest"
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.items) == 0 || b.items[0].Component != "burn" || b.items[0].Share < 0.5 || b.sampleNS <= 0 || b.durationNS <= 0 {
		t.Fatalf("budget %+v (%d ns of samples in %d ns): want most in the burning function", b.items, b.sampleNS, b.durationNS)
	}
	rules, err := budgetOf(p, newClassifier().classify)
	if err != nil || rules.items[0].Component != "sensorhub other" || rules.items[0].Share < b.items[0].Share {
		t.Fatalf("by the rules: %+v, %v; want sensorhub other first, with at least the burner's %v", rules.items, err, b.items[0].Share)
	}
}

// A server that cannot profile answers with an error; its text is what the
// note says.
func TestFetchProfileError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Could not enable CPU profiling: cpu profiling already in use", http.StatusInternalServerError)
	}))
	defer srv.Close()
	_, err := fetchProfile(context.Background(), srv.URL, 1)
	if err == nil || !strings.Contains(err.Error(), "500 Internal Server Error: Could not enable CPU profiling") {
		t.Fatalf("err = %v", err)
	}
	notPprof := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html>hello</html>") }))
	defer notPprof.Close()
	if _, err := fetchProfile(context.Background(), notPprof.URL, 1); err == nil {
		t.Fatal("a page that is no profile was parsed")
	}
}

func TestProfileWindow(t *testing.T) {
	for _, tc := range []struct {
		d       time.Duration
		warm    time.Duration
		seconds int
	}{
		{30 * time.Second, 2 * time.Second, 28},
		{10 * time.Second, 2 * time.Second, 8},
		{4500 * time.Millisecond, 2 * time.Second, 2},
		{3 * time.Second, 1500 * time.Millisecond, 1},
		{2 * time.Second, time.Second, 1},
		{1900 * time.Millisecond, 950 * time.Millisecond, 0},
	} {
		if warm, s := profileWindow(tc.d); warm != tc.warm || s != tc.seconds {
			t.Errorf("profileWindow(%s) = %s, %d; want %s, %d", tc.d, warm, s, tc.warm, tc.seconds)
		}
	}
}

// A run whose server cannot be profiled (it answers an error, or nothing
// listens) still completes: the profile's failure is a note. The profile
// is asked for the load's duration less the warm-up.
func TestRunCPUProfileFailureIsANote(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		http.Error(w, "profiling is off", http.StatusNotFound)
	}))
	defer failing.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	for _, tc := range []struct{ name, url, note string }{
		{"error", failing.URL + "/debug/pprof/", "404 Not Found: profiling is off"},
		{"unreachable", goneURL, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEdge{}
			rep, err := runBench(t, Config{URL: f.start(t), Rate: 20, Duration: 2 * time.Second, CPUProfileURL: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Run.Accepted == 0 || rep.Run.Completion.Completed != rep.Run.Accepted {
				t.Fatalf("run: %+v", rep.Run.LoadStats)
			}
			p := rep.Run.CPUProfile
			if p == nil || !strings.Contains(p.Note, "no CPU profile") || !strings.Contains(p.Note, tc.note) || rep.Run.CPUBudget != nil {
				t.Fatalf("cpu profile %+v, budget %+v; want a note naming %q", p, rep.Run.CPUBudget, tc.note)
			}
			if p.WarmUpS != 1 || p.RequestedS != 1 {
				t.Errorf("profile window: %+v", p)
			}
		})
	}
	if want := []string{"/debug/pprof/profile?seconds=1"}; !slices.Equal(asked, want) {
		t.Errorf("the failing server was asked %q, want %q", asked, want)
	}
}

// A burst asks for no profile, and says so.
func TestRunBurstTakesNoProfile(t *testing.T) {
	var asked atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Add(1) }))
	defer srv.Close()
	f := &fakeEdge{}
	rep, err := runBench(t, Config{URL: f.start(t), Burst: 3, CPUProfileURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Run.CPUProfile; p == nil || !strings.Contains(p.Note, "burst") || rep.Run.CPUBudget != nil {
		t.Fatalf("cpu profile %+v, budget %+v", p, rep.Run.CPUBudget)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the server was asked %d times for a burst", n)
	}
}

// A run against the fake edge with this process's own pprof as the
// server's: the budget is in the report, its shares add up to 1, and with
// this process as the one server measured its µs per test add up to the
// server's.
func TestRunCPUBudgetOfTheServer(t *testing.T) {
	url := pprofServer(t)
	startBurning(t)
	f := &fakeEdge{}
	rep, err := runBench(t, Config{URL: f.start(t), Rate: 20, Duration: 2 * time.Second, CPUProfileURL: url, PIDs: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	p, items := rep.Run.CPUProfile, rep.Run.CPUBudget
	if p == nil || len(items) == 0 || p.SampleS <= 0 || p.DurationS <= 0 || p.RequestedS != 1 {
		t.Fatalf("cpu profile %+v, budget %+v", p, items)
	}
	share, us := 0.0, 0.0
	for _, it := range items {
		share += it.Share
		us += it.PerTestUS
	}
	if math.Abs(share-1) > 0.001 {
		t.Errorf("shares add up to %v: %+v", share, items)
	}
	if items[0].Component != "sensorhub other" {
		t.Errorf("the burner's component is not first: %+v", items)
	}
	if server := rep.Run.CPU.ServerPerTestUS; server > 0 {
		if p.ServerPerTestUS != server || math.Abs(us-server) > 0.05*float64(len(items))+0.001*server {
			t.Errorf("µs per test add up to %v of the server's %v: %+v %+v", us, server, p, items)
		}
	} else if !strings.Contains(p.Note, "not measured") {
		t.Errorf("no server CPU per test, and no note: %+v", p)
	}
}
