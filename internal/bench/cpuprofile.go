package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// profileWarmUp is how long the load runs before the server's profile
// starts: its first seconds (connections opening, pools and caches
// filling) are not the steady state the budget is meant to describe.
const profileWarmUp = 2 * time.Second

// profileSlack is added to the profile's length for the deadline of its
// request: the server writes the profile once the seconds are over, and a
// loaded server takes its time to.
const profileSlack = 15 * time.Second

// maxProfileBytes bounds what is read of the answer: a CPU profile of a
// minute is a few hundred KiB compressed.
const maxProfileBytes = 64 << 20

// CPUProfile is the server's CPU profile taken during the load
// (Config.CPUProfileURL), summed up by component in RunStats.CPUBudget.
type CPUProfile struct {
	// URL is the base URL of the server's net/http/pprof.
	URL string `json:"url"`
	// WarmUpS is how long after the load's start the profile began;
	// RequestedS the seconds asked for.
	WarmUpS    float64 `json:"warm_up_s,omitempty"`
	RequestedS int     `json:"requested_s,omitempty"`
	// DurationS is the profile's own duration, SampleS the CPU time its
	// samples add up to: of the profiled process alone (PostgreSQL and
	// the bench are in CPU, beside it).
	DurationS float64 `json:"duration_s"`
	SampleS   float64 `json:"sample_s"`
	// ServerPerTestUS is the server's CPU per completed test (CPU) that
	// the budget's per_test_us divide; 0 when they could not be derived.
	ServerPerTestUS float64 `json:"server_per_test_us,omitempty"`
	// Note says why there is no budget, or no µs per test.
	Note string `json:"note,omitempty"`
}

// profileWindow says when the profile of a load lasting d starts and how
// many seconds it lasts (net/http/pprof takes whole seconds): after the
// warm-up, or half of a short load, to about the load's end. 0 seconds:
// the load is too short to profile.
func profileWindow(d time.Duration) (warm time.Duration, seconds int) {
	warm = min(profileWarmUp, d/2)
	return warm, int((d - warm) / time.Second)
}

// serverProfile is the server's CPU profile being taken while the load
// runs.
type serverProfile struct {
	info   CPUProfile
	prof   *profile.Profile
	err    error
	cancel context.CancelFunc
	done   chan struct{} // closed when prof or err is set
}

// startServerProfile starts taking the CPU profile of the server behind
// cfg.CPUProfileURL, for the load that starts now; nil without a URL. A
// failure is no failure of the run: finish reports it in a note.
func startServerProfile(ctx context.Context, cfg Config) *serverProfile {
	if cfg.CPUProfileURL == "" {
		return nil
	}
	sp := &serverProfile{info: CPUProfile{URL: cfg.CPUProfileURL}, cancel: func() {}, done: make(chan struct{})}
	warm, seconds := profileWindow(cfg.Duration)
	switch {
	case cfg.Burst > 0:
		sp.info.Note = "no CPU profile for a burst: it is over before a profile's shortest second"
	case seconds < 1:
		sp.info.Note = fmt.Sprintf("no CPU profile: a load of %s leaves less than a second after the warm-up", cfg.Duration)
	}
	if sp.info.Note != "" {
		close(sp.done)
		return sp
	}
	sp.info.WarmUpS, sp.info.RequestedS = warm.Seconds(), seconds
	ctx, sp.cancel = context.WithCancel(ctx)
	go func() {
		defer close(sp.done)
		t := time.NewTimer(warm)
		defer t.Stop()
		select {
		case <-ctx.Done():
			sp.err = ctx.Err()
			return
		case <-t.C:
		}
		sp.prof, sp.err = fetchProfile(ctx, cfg.CPUProfileURL, seconds)
	}()
	return sp
}

// stop abandons the profile if it is still being taken.
func (sp *serverProfile) stop() {
	if sp == nil {
		return
	}
	sp.cancel()
	<-sp.done
}

// finish waits for the profile (it ends with the load, or at its
// deadline) and attributes it to the components; serverPerTestUS is the
// CPU per completed test of the servers measured (servers of them), which
// the shares divide when it is of one process.
func (sp *serverProfile) finish(serverPerTestUS float64, servers int) (*CPUProfile, []BudgetItem) {
	if sp == nil {
		return nil, nil
	}
	<-sp.done
	info := sp.info
	if info.Note != "" {
		return &info, nil
	}
	if sp.err != nil {
		info.Note = "no CPU profile: " + sp.err.Error()
		return &info, nil
	}
	b, err := budgetOf(sp.prof, newClassifier().classify)
	if err != nil {
		info.Note = "no CPU budget: " + err.Error()
		return &info, nil
	}
	info.DurationS, info.SampleS = round3(float64(b.durationNS)/1e9), round3(float64(b.sampleNS)/1e9)
	switch {
	case len(b.items) == 0:
		info.Note = "the CPU profile holds no samples"
		return &info, nil
	case servers > 1:
		info.Note = fmt.Sprintf("no µs per test: the CPU per test is of %d server processes and the profile of one (give --pid of the profiled process)", servers)
	case serverPerTestUS <= 0:
		info.Note = "no µs per test: the server's CPU per completed test was not measured (see cpu)"
	default:
		info.ServerPerTestUS = serverPerTestUS
		perTest(b.items, serverPerTestUS)
	}
	return &info, b.items
}

// fetchProfile takes a CPU profile of seconds from the net/http/pprof at
// base, within a deadline of the seconds plus profileSlack.
func fetchProfile(ctx context.Context, base string, seconds int) (*profile.Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+profileSlack)
	defer cancel()
	u := base + "/debug/pprof/profile?seconds=" + strconv.Itoa(seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	// A connection of its own, closed after: the load's client must not
	// wait behind it, and nothing is left open once the bench is done.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxProfileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, firstLine(data))
	}
	if len(data) > maxProfileBytes {
		return nil, fmt.Errorf("GET %s: a profile over %d MiB", u, maxProfileBytes>>20)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return p, nil
}

// firstLine is the start of an error answer, for a note.
func firstLine(data []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
