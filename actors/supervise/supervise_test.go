package supervise_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/actors/actortest"
	"sensorhub/actors/supervise"
)

const wait = 5 * time.Second

// ping asks the test actor for its message count.
type ping struct{ reply chan int }

// request makes the test actor panic while answering.
type request struct {
	reason     string
	reply      chan string
	replyPanic bool // the reply itself panics
}

// testActor reports its starts on events and counts pings.
type testActor struct {
	events chan<- string
	n      int
}

func (a *testActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.events <- "started"
	case *ping:
		a.n++
		m.reply <- a.n
	case *request:
		defer supervise.ReplyOnPanic(func(reason any) {
			a.events <- "replied"
			if m.replyPanic {
				panic("reply failed")
			}
			m.reply <- fmt.Sprint("internal error: ", reason)
		})
		panic(m.reason)
	}
}

type fixture struct {
	system *actor.ActorSystem
	logs   *actortest.LogBuffer
	role   *supervise.Role
	events map[string]chan string
	gaveUp chan error
}

// spawn starts role "test" with one testActor per policy.
func spawn(t *testing.T, logStacks bool, policies map[string]supervise.Policy) *fixture {
	t.Helper()
	logger, logs := actortest.CaptureLogs(t)
	f := &fixture{
		system: actortest.NewSystemWithLogger(t, logger),
		logs:   logs,
		events: map[string]chan string{},
		gaveUp: make(chan error, 10),
	}
	var children []supervise.Child
	for name, p := range policies {
		ch := make(chan string, 100)
		f.events[name] = ch
		children = append(children, supervise.Child{
			Name:   name,
			Props:  supervise.Props(func() actor.Actor { return &testActor{events: ch} }),
			Policy: p,
		})
	}
	role, err := supervise.Spawn(f.system, supervise.RoleConfig{
		Role:      "test",
		Children:  children,
		Logger:    logger,
		LogStacks: logStacks,
		OnGiveUp:  func(err error) { f.gaveUp <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.role = role
	t.Cleanup(func() { _ = role.Stop(wait) })
	for name := range policies {
		f.expect(t, name, "started")
	}
	return f
}

func (f *fixture) expect(t *testing.T, child, event string) {
	t.Helper()
	if got := actortest.Receive(t, f.events[child]); got != event {
		t.Fatalf("%s: event %q, want %q", child, got, event)
	}
}

func (f *fixture) ping(t *testing.T, child string) int {
	t.Helper()
	reply := make(chan int, 1)
	f.role.Send(f.role.Child(child), &ping{reply: reply})
	return actortest.Receive(t, reply)
}

func TestRestartIsLoggedWithItsAttrs(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{"worker": {}})
	if f.ping(t, "worker") != 1 {
		t.Fatal("first ping")
	}
	f.role.Send(f.role.Child("worker"), &supervise.Crash{Reason: "boom"})

	rec := f.logs.WaitFor(t, "actor supervision", "directive", "restart")
	want := map[string]string{
		"actor":              "test/worker",
		"reason":             "chaos: boom",
		"directive":          "restart",
		"restarts":           "1",
		"failures_in_window": "1",
		"max_restarts":       "10",
		"window":             "10s",
	}
	for k, v := range want {
		if rec.Attr(k) != v {
			t.Errorf("attr %s = %q, want %q (record %s)", k, rec.Attr(k), v, rec)
		}
	}
	if _, ok := rec.Attrs["stack"]; ok {
		t.Error("stack logged without LogStacks")
	}
	if rec.Level != slog.LevelWarn {
		t.Errorf("level = %v, want WARN", rec.Level)
	}
	f.expect(t, "worker", "started")
	// A fresh actor: the count starts over.
	if n := f.ping(t, "worker"); n != 1 {
		t.Errorf("ping after restart = %d, want 1 (fresh state)", n)
	}
	if f.role.Restarts("worker") != 1 {
		t.Errorf("Restarts = %d", f.role.Restarts("worker"))
	}
	if n := f.logs.Count("actor supervision"); n != 1 {
		t.Errorf("%d supervision lines, want exactly 1", n)
	}
}

func TestLogStacks(t *testing.T) {
	f := spawn(t, true, map[string]supervise.Policy{"worker": {}})
	reply := make(chan string, 1)
	f.role.Send(f.role.Child("worker"), &request{reason: "deep", reply: reply})
	actortest.Receive(t, reply)
	rec := f.logs.WaitFor(t, "actor supervision", "reason", "deep")
	if !strings.Contains(rec.Attr("stack"), "supervise_test.(*testActor).Receive") {
		t.Errorf("stack does not show where it panicked:\n%s", rec.Attr("stack"))
	}
}

func TestMaxRestartsStopsAndGivesUp(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{
		"minor":    {MaxRestarts: 1, Window: time.Minute},
		"critical": {MaxRestarts: 2, Window: time.Minute, Critical: true},
	})
	// A non-critical child stopped for good does not end the role.
	for range 2 {
		f.role.Send(f.role.Child("minor"), &supervise.Crash{Reason: "minor"})
	}
	f.logs.WaitFor(t, "actor supervision: gave up on actor", "actor", "test/minor", "directive", "stop")

	for range 3 {
		f.role.Send(f.role.Child("critical"), &supervise.Crash{Reason: "again"})
	}
	f.logs.WaitForN(t, 2, "actor supervision", "actor", "test/critical", "directive", "restart")
	rec := f.logs.WaitFor(t, "actor supervision: gave up on actor", "actor", "test/critical")
	if rec.Attr("directive") != "stop" || rec.Attr("failures_in_window") != "3" {
		t.Errorf("give-up record = %s", rec)
	}
	err := actortest.Receive(t, f.gaveUp)
	if !errors.Is(err, supervise.ErrGaveUp) || !strings.Contains(err.Error(), "test/critical") {
		t.Fatalf("OnGiveUp error = %v", err)
	}
	// Only the critical child made the role give up, and only once.
	select {
	case err := <-f.gaveUp:
		t.Fatalf("OnGiveUp called twice: %v", err)
	default:
	}
	f.logs.WaitFor(t, "role supervisor gave up", "role", "test", "actor", "test/critical")
}

func TestEscalateGivesUpAtOnce(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{"edge": {Directive: actor.EscalateDirective}})
	f.role.Send(f.role.Child("edge"), &supervise.Crash{Reason: "fatal"})
	rec := f.logs.WaitFor(t, "actor supervision: gave up on actor", "directive", "escalate")
	if rec.Attr("actor") != "test/edge" {
		t.Errorf("record = %s", rec)
	}
	if err := actortest.Receive(t, f.gaveUp); !errors.Is(err, supervise.ErrGaveUp) {
		t.Fatalf("OnGiveUp error = %v", err)
	}
}

func TestBackoff(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{
		"slow": {Backoff: 20 * time.Millisecond, MaxBackoff: 30 * time.Millisecond, Window: time.Minute},
	})
	for range 3 {
		f.role.Send(f.role.Child("slow"), &supervise.Crash{Reason: "flaky"})
	}
	recs := f.logs.WaitForN(t, 3, "actor supervision", "actor", "test/slow", "directive", "restart")
	// The first restart is immediate, then Backoff per earlier failure, capped.
	for i, want := range []string{"", "20ms", "30ms"} {
		if got := recs[i].Attr("backoff"); got != want {
			t.Errorf("restart %d: backoff = %q, want %q", i+1, got, want)
		}
	}
	for range 3 {
		f.expect(t, "slow", "started")
	}
	// Messages sent while the restart waited were kept.
	if n := f.ping(t, "slow"); n != 1 {
		t.Errorf("ping = %d", n)
	}
}

func TestReplyOnPanicRepliesBeforeRestart(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{"server": {}})
	reply := make(chan string, 1)
	f.role.Send(f.role.Child("server"), &request{reason: "nil map", reply: reply})
	if got := actortest.Receive(t, reply); got != "internal error: nil map" {
		t.Errorf("reply = %q", got)
	}
	// The reply went out first, then the supervisor restarted the actor.
	f.expect(t, "server", "replied")
	f.expect(t, "server", "started")
	f.logs.WaitFor(t, "actor supervision", "actor", "test/server", "reason", "nil map", "directive", "restart")
	if n := f.ping(t, "server"); n != 1 {
		t.Errorf("ping after restart = %d", n)
	}
}

func TestReplyOnPanicKeepsTheOriginalPanic(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{"server": {}})
	f.role.Send(f.role.Child("server"), &request{reason: "original", replyPanic: true})
	f.expect(t, "server", "replied")
	f.expect(t, "server", "started")
	rec := f.logs.WaitFor(t, "actor supervision", "actor", "test/server")
	if rec.Attr("reason") != "original" {
		t.Errorf("reason = %q, want the handler's panic, not the reply's", rec.Attr("reason"))
	}
}

func TestDirectiveDefaults(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{
		"zero":    {},
		"resumed": {Resume: true},
	})
	for _, name := range []string{"zero", "resumed"} {
		f.ping(t, name)
		f.role.Send(f.role.Child(name), &supervise.Crash{Reason: name})
	}
	// The zero policy restarts: fresh state.
	f.expect(t, "zero", "started")
	if n := f.ping(t, "zero"); n != 1 {
		t.Errorf("zero policy: ping = %d, want 1 after a restart", n)
	}
	// Resume keeps the actor: its count goes on and it never restarts.
	if n := f.ping(t, "resumed"); n != 2 {
		t.Errorf("resume: ping = %d, want 2 (state kept)", n)
	}
	f.logs.WaitFor(t, "actor supervision", "actor", "test/resumed", "directive", "resume")
	select {
	case ev := <-f.events["resumed"]:
		t.Errorf("resumed actor got %q", ev)
	default:
	}
}

// pool spawns worker-0 under itself; its supervisor strategy is the one
// under test.
type pool struct{ events chan<- string }

func (p *pool) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		if _, err := c.SpawnNamed(supervise.Props(func() actor.Actor { return &testActor{events: p.events} }), "worker-0"); err != nil {
			panic(err)
		}
	case *supervise.Crash:
		for _, child := range c.Children() {
			if supervise.ChildName(child) == "worker-0" {
				c.Send(child, m)
			}
		}
	}
}

func TestStrategyMatchesPoolChildrenByPrefix(t *testing.T) {
	logger, logs := actortest.CaptureLogs(t)
	system := actortest.NewSystemWithLogger(t, logger)
	events := make(chan string, 10)
	strategy := &supervise.Strategy{
		Logger:   logger,
		Default:  supervise.Policy{MaxRestarts: 7},
		Policies: map[string]supervise.Policy{"worker": {MaxRestarts: 3, Window: time.Minute}},
	}
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &pool{events: events} }, actor.WithSupervisor(strategy)))
	t.Cleanup(func() { system.Root.Stop(pid) })
	actortest.Receive(t, events)

	system.Root.Send(pid, &supervise.Crash{Reason: "pool"})
	rec := logs.WaitFor(t, "actor supervision", "directive", "restart")
	if !strings.HasSuffix(rec.Attr("actor"), "/worker-0") || rec.Attr("max_restarts") != "3" {
		t.Errorf("worker-0 did not take the policy of worker: %s", rec)
	}
	if got := actortest.Receive(t, events); got != "started" {
		t.Errorf("event %q", got)
	}
	if strategy.Restarts(rec.Attr("actor")) != 1 {
		t.Errorf("Restarts = %d", strategy.Restarts(rec.Attr("actor")))
	}
}

func TestRoleStop(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{"a": {}})
	if err := f.role.Stop(wait); err != nil {
		t.Fatal(err)
	}
	if n := len(f.role.Names()); n != 1 {
		t.Errorf("names = %d", n)
	}
}

func TestChildrenExistWhenSpawnReturns(t *testing.T) {
	logger, _ := actortest.CaptureLogs(t)
	system := actortest.NewSystemWithLogger(t, logger)
	for i := range 20 {
		reply := make(chan int, 1)
		events := make(chan string, 10)
		role, err := supervise.Spawn(system, supervise.RoleConfig{
			Role:     fmt.Sprintf("r%d", i),
			Children: []supervise.Child{{Name: "c", Props: supervise.Props(func() actor.Actor { return &testActor{events: events} })}},
			Logger:   logger,
		})
		if err != nil {
			t.Fatal(err)
		}
		// Sent at once: it must not go to dead letters.
		role.Send(role.Child("c"), &ping{reply: reply})
		if n := actortest.Receive(t, reply); n != 1 {
			t.Fatalf("ping = %d", n)
		}
		_ = role.Stop(wait)
	}
}

func TestSpawnReportsAChildThatCannotStart(t *testing.T) {
	logger, _ := actortest.CaptureLogs(t)
	system := actortest.NewSystemWithLogger(t, logger)
	props := supervise.Props(func() actor.Actor { return &testActor{events: make(chan string, 10)} })
	_, err := supervise.Spawn(system, supervise.RoleConfig{
		Role:     "dup",
		Children: []supervise.Child{{Name: "same", Props: props}, {Name: "same", Props: props}},
		Logger:   logger,
	})
	if err == nil {
		t.Fatal("two children with one name spawned")
	}
}

func TestNamePath(t *testing.T) {
	for id, want := range map[string]string{
		"sensor/intake":                 "sensor/intake",
		"sensor/processors/processor-3": "sensor/processors/processor",
		"auth/login-0":                  "auth/login",
		"bridge/relay":                  "bridge/relay",
		"sensor/$12/x":                  "sensor/$/x",
		"a/pre-fix":                     "a/pre-fix", // not a pool index
		"a/trailing-":                   "a/trailing-",
	} {
		if got := supervise.NamePath(id); got != want {
			t.Errorf("NamePath(%q) = %q, want %q", id, got, want)
		}
	}
}

// Each decision is counted by the child's name path and the directive, in
// the Tally shared by the role's strategies.
func TestDecisionsAreCounted(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{"worker": {}, "steady": {Resume: true}})
	if got := f.role.Decisions(); len(got) != 0 {
		t.Fatalf("decisions before any failure: %v", got)
	}
	f.role.Send(f.role.Child("worker"), &supervise.Crash{Reason: "one"})
	f.expect(t, "worker", "started")
	f.role.Send(f.role.Child("worker"), &supervise.Crash{Reason: "two"})
	f.expect(t, "worker", "started")
	f.role.Send(f.role.Child("steady"), &supervise.Crash{Reason: "three"})
	f.logs.WaitFor(t, "actor supervision", "directive", "resume")
	want := map[supervise.Decision]uint64{
		{Actor: "test/worker", Directive: "restart"}: 2,
		{Actor: "test/steady", Directive: "resume"}:  1,
	}
	got := f.role.Decisions()
	if len(got) != len(want) {
		t.Fatalf("decisions %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("decisions %v, want %v", got, want)
		}
	}
}

// The latest supervision events are kept whole, newest first, and only the
// last RecentEvents of them.
func TestRecentEventsNewestFirst(t *testing.T) {
	f := spawn(t, false, map[string]supervise.Policy{"worker": {MaxRestarts: 1000, Window: time.Minute}, "steady": {Resume: true}})
	if got := f.role.Recent(); len(got) != 0 {
		t.Fatalf("events before any failure: %v", got)
	}
	f.role.Send(f.role.Child("worker"), &supervise.Crash{Reason: "one"})
	f.expect(t, "worker", "started")
	f.role.Send(f.role.Child("steady"), &supervise.Crash{Reason: "two"})
	f.logs.WaitFor(t, "actor supervision", "directive", "resume")
	got := f.role.Recent()
	if len(got) != 2 {
		t.Fatalf("events %+v, want 2", got)
	}
	if got[0].Actor != "test/steady" || got[0].Directive != "resume" || !strings.Contains(got[0].Reason, "two") {
		t.Errorf("newest %+v, want test/steady resumed for two", got[0])
	}
	if got[1].Actor != "test/worker" || got[1].Directive != "restart" || got[1].Restarts != 1 || !strings.Contains(got[1].Reason, "one") {
		t.Errorf("oldest %+v, want test/worker restarted once for one", got[1])
	}
	if got[0].At.Before(got[1].At) {
		t.Errorf("newest at %v before oldest at %v", got[0].At, got[1].At)
	}
	for i := range supervise.RecentEvents + 3 {
		f.role.Send(f.role.Child("worker"), &supervise.Crash{Reason: fmt.Sprint("crash ", i)})
		f.expect(t, "worker", "started")
	}
	got = f.role.Recent()
	if len(got) != supervise.RecentEvents {
		t.Fatalf("kept %d events, want %d", len(got), supervise.RecentEvents)
	}
	if want := fmt.Sprint("crash ", supervise.RecentEvents+2); !strings.Contains(got[0].Reason, want) {
		t.Errorf("newest reason %q, want %q", got[0].Reason, want)
	}
}
