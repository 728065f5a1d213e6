package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// chromiumPath is the headless browser of the dashboard test: Debian's
// chromium (.ci/run installs it). Without it the test skips, unless
// SENSORHUB_REQUIRE_TOOLS=1 makes that a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SENSORHUB_REQUIRE_TOOLS") == "1" {
		t.Fatal("chromium is not installed (SENSORHUB_REQUIRE_TOOLS=1): install the Debian package chromium")
	}
	t.Skip("chromium not found (Debian package chromium); set SENSORHUB_REQUIRE_TOOLS=1 to make this a failure")
	return ""
}

// browser is one headless Chromium tab whose console is watched: every
// console error, uncaught exception and browser log error is kept.
type browser struct {
	t      *testing.T
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errors = append(b.errors, m.String()+" at "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// consoleErrors fails the test if the page logged any error.
func (b *browser) noConsoleErrors(when string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		b.t.Fatalf("console errors %s:\n%s", when, strings.Join(b.errors, "\n"))
	}
}

// poll waits, in the page, until expr is truthy and returns its value;
// the deadline is the test's.
func poll[T any](b *browser, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0)))
	if err != nil {
		state, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify({roles: [...document.querySelectorAll('#roles [data-role]')].map(e => e.dataset.role + '=' + e.dataset.status),
			breakers: [...document.querySelectorAll('#breakers tr[data-breaker]')].map(e => e.dataset.breaker + '=' + e.dataset.state),
			pending: document.querySelector('[data-series="events_pending"]')?.dataset.value})`))
		b.t.Fatalf("waiting for %s: %v; page: %s", what, err, state)
	}
	return v
}

// screenshot saves the whole page under the test's artifact directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// Page predicates, in the page's own terms (data attributes the page
// sets from each sample).
const (
	jsRoles        = `[...document.querySelectorAll('#roles [data-role]')].map(e => e.dataset.role + '=' + e.dataset.status).join(',')`
	jsBreakerState = `(document.querySelector('#breakers tr[data-breaker="bridge.kafka"]') || {dataset: {}}).dataset.state`
	jsPending      = `Number(document.querySelector('[data-series="events_pending"]').dataset.value || -1)`
	jsAllClosed    = `(() => { const rows = [...document.querySelectorAll('#breakers tr[data-breaker]')];
		return rows.length > 0 && rows.every(r => r.dataset.state === 'closed') ? rows.map(r => r.dataset.breaker).join(',') : ''; })()`
)

// The dashboard against dev, in a real headless Chromium: it loads with
// no console error and shows the four roles up and every breaker closed;
// with Kafka stopped (as `sensorhub drill` does, through
// sensorhub.chaos.control as admin) it shows bridge.kafka open and the
// pending events rising, then, with Kafka back, the breaker closed and the
// pending events drained, all without a reload. A screenshot of each state
// is saved as an artifact (go test -artifacts keeps them).
func TestDashboardShowsAKafkaOutage(t *testing.T) {
	chromiumPath(t)
	d := startDevForMetrics(t, func(c *DevConfig) { c.KafkaBrokers, c.KafkaListen = "", "127.0.0.1:0" })
	b := newBrowser(t, 1280, 1600)
	tok := d.login()
	if err := chromedp.Do(b.ctx, chromedp.Navigate("http://"+d.addrs.HTTP+"/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	// A mark in the page's memory: it is still there at the end only if
	// the page was never reloaded.
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.__sensorhubNoReload = true`)); err != nil {
		t.Fatal(err)
	}

	if got := poll[string](b, "four roles up", `(`+jsRoles+` === 'auth=up,sensor=up,bridge=up,edge=up') && `+jsRoles); got != "auth=up,sensor=up,bridge=up,edge=up" {
		t.Fatalf("roles %q", got)
	}
	for _, role := range []string{messages.RoleAuth, messages.RoleSensor, messages.RoleBridge} {
		poll[bool](b, role+"'s instance found by discovery",
			`document.querySelectorAll('#roles [data-role="`+role+`"] li[data-instance][data-status="up"]').length === 1`)
	}
	closed := poll[string](b, "every breaker closed", jsAllClosed)
	for _, name := range []string{"edge.auth", "edge.sensor", "edge.bridge", "auth.database", "sensor.database", "sensor.jetstream", "sensor.auth", "bridge.kafka"} {
		if !strings.Contains(","+closed+",", ","+name+",") {
			t.Errorf("breaker %s not on the page (closed: %s)", name, closed)
		}
	}
	b.noConsoleErrors("after loading")
	b.screenshot("1-healthy.png")

	// Kafka down: submissions still accepted, their events wait in
	// SENSOR_EVENTS.
	admin := person(t, target{natsURL: d.addrs.NATS}, "admin", DefaultPassword)
	chaos := func(action string) {
		t.Helper()
		var r messages.ChaosControlReply
		if _, err := natsx.Request(waitCtx(t), admin, messages.DefaultSubjects().ChaosControl(),
			messages.ChaosControl{Target: messages.ChaosTargetKafka, Action: action}, nil, &r); err != nil {
			t.Fatalf("chaos %s kafka: %v", action, err)
		}
	}
	chaos(messages.ChaosActionStop)
	d.submit(tok, 10)
	first := poll[float64](b, "bridge.kafka open with events pending",
		jsBreakerState+` === 'open' && `+jsPending+` > 0 && `+jsPending)
	d.submit(tok, 15)
	rising := poll[float64](b, "the pending events rising", fmt.Sprintf(`%s > %v && %s`, jsPending, first, jsPending))
	poll[bool](b, "the transition to open listed", `!!document.querySelector('#transitions li[data-breaker="bridge.kafka"][data-to="open"]')`)
	poll[bool](b, "the bridge shown degraded", `!!document.querySelector('#roles [data-role="bridge"][data-status="degraded"]')`)
	t.Logf("pending while Kafka is down: %v, then %v", first, rising)
	b.noConsoleErrors("while Kafka is down")
	b.screenshot("2-kafka-down.png")

	// Kafka back: the breaker closes and the events drain.
	chaos(messages.ChaosActionStart)
	poll[bool](b, "bridge.kafka closed and the pending events drained", jsBreakerState+` === 'closed' && `+jsPending+` === 0`)
	poll[string](b, "every breaker closed again", jsAllClosed)
	poll[bool](b, "the transition back to closed listed", `!!document.querySelector('#transitions li[data-breaker="bridge.kafka"][data-to="closed"]')`)
	if kept, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.__sensorhubNoReload === true`)); err != nil || !kept {
		t.Fatalf("the page was reloaded (its mark: %v, %v)", kept, err)
	}
	b.noConsoleErrors("after Kafka came back")
	b.screenshot("3-kafka-back.png")

	// The same page on a phone's screen.
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	poll[bool](b, "the page laid out for a phone", `document.documentElement.scrollWidth <= 390`)
	b.screenshot("4-phone.png")
	b.noConsoleErrors("on a phone's screen")
}
