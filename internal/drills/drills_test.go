package drills

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// The seed's failure drills over separate OS processes. Each part is taken
// away in turn and stays away until drill 4 brings everything back, as in
// the seed: auth killed, then Kafka down too, then the database cut too.
// Then the NATS server restarts. Both tests end with the no-loss check.
//
// TestDrillFailureSequence runs them alone (exact expectations, little
// traffic) with Kafka stopped outright (connections refused);
// TestDrillNoLossUnderLoad runs them while a client keeps submitting, with
// Kafka refusing every produce request instead (reachable but failing).

func TestDrillFailureSequence(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	d := newDrill(t, c, kafkaStopped)
	if d.run(t) {
		d.verify(t)
	}
}

func TestDrillNoLossUnderLoad(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	d := newDrill(t, c, kafkaRefusing)
	d.minReplies = loadPerPhase
	load := startLoad(t, c, d.token, d.l)
	ok := d.run(t)
	// The client stops before the check, so that the check sees a system
	// with nothing more coming in.
	if err := load.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("load client: %d requests sent, %d ticks skipped (too many in flight)", load.sent.Load(), load.skipped.Load())
	if ok {
		d.verify(t)
	}
}

// kafkaOutage is how drill 2 makes Kafka unavailable, and drill 4 undoes it.
type kafkaOutage struct {
	name       string
	down, back func(t testing.TB, c *cluster)
}

var (
	kafkaStopped = kafkaOutage{
		name: "stopped (connections refused)",
		down: func(_ testing.TB, c *cluster) { c.kafka.Stop() },
		back: func(t testing.TB, c *cluster) {
			if err := c.kafka.Start(); err != nil {
				t.Fatalf("start kafka again: %v", err)
			}
		},
	}
	kafkaRefusing = kafkaOutage{
		name: "refusing produce requests",
		down: func(_ testing.TB, c *cluster) { c.kafka.RefuseProduce(true) },
		back: func(_ testing.TB, c *cluster) { c.kafka.RefuseProduce(false) },
	}
)

// drill is one run of the drills against one cluster.
type drill struct {
	c      *cluster
	l      *ledger
	outage kafkaOutage
	token  string
	pids   map[string]int // the first process of each role
	drill2 []string       // tests accepted while Kafka was down
	// minReplies keeps each drill's state (a part down, or back) until the
	// load client has had that many replies in it, so that the load meets
	// every state, however fast the drill's own checks pass.
	minReplies int
}

// loadPerPhase is minReplies under load: about two seconds of load.
const loadPerPhase = 500

func newDrill(t *testing.T, c *cluster, outage kafkaOutage) *drill {
	t.Helper()
	d := &drill{c: c, l: newLedger(), outage: outage, token: c.token(t), pids: map[string]int{}}
	for _, role := range []string{roleEdge, roleAuth, roleSensor, roleBridge} {
		d.pids[role] = c.proc(role).cmd.Process.Pid
	}
	return d
}

// submit submits one test and records the reply in the ledger.
func (d *drill) submit() (httpReply, string) {
	r, id := d.c.submit(d.token)
	d.l.record(r, id)
	return r, id
}

// mustAccept submits one test and fails unless it gets 202 with authMode.
func (d *drill) mustAccept(t testing.TB, authMode string) string {
	t.Helper()
	r, id := d.submit()
	if r.status != http.StatusAccepted || id == "" {
		t.Fatalf("submit: %s, want 202", r)
	}
	if got := r.header.Get("X-Auth-Mode"); authMode != "" && got != authMode {
		t.Errorf("submit: X-Auth-Mode %q, want %q", got, authMode)
	}
	return id
}

// run runs the drills in order, each as a subtest; a failed drill stops
// the run (the next one builds on its state). It reports whether all passed.
func (d *drill) run(t *testing.T) bool {
	steps := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"0_warm_up", d.warmUp},
		{"1_auth_killed", d.authKilled},
		{"2_kafka_unavailable", d.kafkaUnavailable},
		{"3_database_cut", d.databaseCut},
		{"4_everything_back", d.everythingBack},
		{"5_nats_restarted", d.natsRestarted},
	}
	for _, s := range steps {
		d.l.setPhase(s.name)
		start := time.Now()
		ok := t.Run(s.name, s.fn)
		if ok && d.minReplies > 0 {
			err := poll(30*time.Second, pollInterval, func() error {
				if n := d.l.phaseReplies(s.name); n < d.minReplies {
					return fmt.Errorf("%d replies to the load client during %s, want %d", n, s.name, d.minReplies)
				}
				return nil
			})
			if err != nil {
				t.Errorf("load: %v", err)
				return false
			}
		}
		t.Logf("%s: %s", s.name, time.Since(start).Round(time.Millisecond))
		if !ok {
			return false
		}
	}
	return true
}

// verify is the no-loss check, once every client has stopped.
func (d *drill) verify(t *testing.T) {
	d.l.setPhase("after")
	t.Run("6_no_loss", func(t *testing.T) { d.c.verifyNoLoss(t, d.l) })
}

// warmUp proves the whole path works before anything is taken away: a
// test submitted with online validation reaches Kafka.
func (d *drill) warmUp(t *testing.T) {
	id := d.mustAccept(t, messages.AuthModeOnline)
	err := poll(30*time.Second, 100*time.Millisecond, func() error {
		s, err := d.c.kafkaStats()
		if err != nil {
			return err
		}
		if s.Successful == 0 || s.Queued > 0 {
			return fmt.Errorf("bridge: %d written, %d queued", s.Successful, s.Queued)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("first event (test %s) did not reach Kafka: %v", id, err)
	}
}

// Drill 1: the auth process is killed (SIGKILL). Login answers 503 "auth
// service unavailable" without waiting out a deadline; a token already
// held still submits (verified locally, X-Auth-Mode: fallback); a forged
// token is still refused; the other processes keep running.
func (d *drill) authKilled(t *testing.T) {
	c := d.c
	// A second token, issued before auth dies and never shown to the
	// sensor role: its verdict cannot come from the validator's cache of
	// auth's answers, so it must be verified locally (fallback).
	unseen := c.token(t)
	c.proc(roleAuth).kill(t)

	// The edge's auth call deadline is 3s: answering sooner means "no
	// responders" (or the open breaker) answered, not a timeout.
	const callDeadline = 3 * time.Second
	var slowest time.Duration
	for i := range 6 { // the edge's auth breaker opens after 5 failures
		r := c.login()
		if r.status != http.StatusServiceUnavailable || r.errorBody().Message != messages.MsgAuthUnavailable {
			t.Fatalf("login %d with auth down: %s, want 503 %q", i+1, r, messages.MsgAuthUnavailable)
		}
		if r.errorBody().Code != messages.CodeAuthUnavailable {
			t.Errorf("login %d: code %q, want %q", i+1, r.errorBody().Code, messages.CodeAuthUnavailable)
		}
		if r.elapsed >= callDeadline {
			t.Errorf("login %d took %s: it waited out the deadline instead of failing fast", i+1, r.elapsed)
		}
		slowest = max(slowest, r.elapsed)
	}
	t.Logf("login with auth down: 503 %q, slowest of 6 in %s", messages.MsgAuthUnavailable, slowest.Round(time.Microsecond))

	for range 5 {
		r, id := c.submit(unseen)
		d.l.record(r, id)
		if r.status != http.StatusAccepted || r.header.Get("X-Auth-Mode") != messages.AuthModeFallback {
			t.Errorf("submit with a token issued before auth died: %s, X-Auth-Mode %q; want 202, fallback", r, r.header.Get("X-Auth-Mode"))
		}
	}
	// The token in use all along also still works. The sensor role may
	// answer from its cache of auth's recent "yes" (marked online) until
	// the cache entry lapses, or verify it locally (fallback).
	modes := map[string]int{}
	for range 5 {
		r, id := d.submit()
		if r.status != http.StatusAccepted || id == "" {
			t.Fatalf("submit with the token in use: %s, want 202", r)
		}
		modes[r.header.Get("X-Auth-Mode")]++
	}
	t.Logf("submit with auth down: a token the sensor never saw: 202 fallback; the token in use: 202 %v", modes)

	for name, forged := range forgeries(t, d.token) {
		r, _ := c.submit(forged)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s token with auth down: %s, want 401", name, r)
		}
	}

	c.running(t, roleEdge, roleSensor, roleBridge)
	if err := c.ready(10*time.Second, roleEdge, roleSensor, roleBridge); err != nil {
		t.Errorf("the other roles stopped answering: %v", err)
	}
	h, _, err := c.edgeHealth()
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Services[roleAuth].Status; got != messages.HealthDown || h.Status != messages.HealthDegraded {
		t.Errorf("/health with auth killed: status %q, auth %q; want degraded, auth down", h.Status, got)
	}
}

// forgeries returns tokens derived from a real one that must be refused:
// the claims changed under the original signature, and the signature
// itself altered.
func forgeries(t testing.TB, token string) map[string]string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode token payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("token claims: %v", err)
	}
	claims["sub"] = "admin"
	claims["roles"] = []string{messages.RoleAdmin}
	forged, _ := json.Marshal(claims)
	sig := []byte(parts[2])
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	return map[string]string{
		"claims changed":    parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2],
		"signature altered": parts[0] + "." + parts[1] + "." + string(sig),
	}
}

// Drill 2: Kafka is unavailable (auth still down). Submissions still get
// 202; once their tests are completed and out of the outbox, /kafka/stats
// shows at least that many events queued and the breaker open.
func (d *drill) kafkaUnavailable(t *testing.T) {
	c := d.c
	d.outage.down(t, c)
	t.Logf("kafka %s", d.outage.name)
	const n = 20
	for range n {
		d.drill2 = append(d.drill2, d.mustAccept(t, ""))
	}

	conn := c.db(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := poll(30*time.Second, 100*time.Millisecond, func() error {
		var done, inOutbox int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM tests WHERE id = ANY($1) AND status = 'completed'", d.drill2).Scan(&done); err != nil {
			return err
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE test_id = ANY($1)", d.drill2).Scan(&inOutbox); err != nil {
			return err
		}
		if done < n || inOutbox > 0 {
			return fmt.Errorf("%d of %d completed, %d events still in the outbox", done, n, inOutbox)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("drill 2's tests did not reach JetStream: %v", err)
	}

	var s messages.BridgeStats
	err = poll(30*time.Second, 100*time.Millisecond, func() error {
		s, err = c.kafkaStats()
		if err != nil {
			return err
		}
		if s.Queued < n || s.Breaker != messages.BreakerOpen {
			return fmt.Errorf("queued %d (want >= %d), breaker %q (want open), last error %q", s.Queued, n, s.Breaker, s.LastError)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("/kafka/stats with Kafka down: %v", err)
	}
	t.Logf("/kafka/stats: queued %d, breaker %s, failed writes %d, last error %q", s.Queued, s.Breaker, s.Failed, s.LastError)
	c.running(t, roleEdge, roleSensor, roleBridge)
}

// Drill 3: the database is cut (auth and Kafka still down). Submissions get
// 503 "Database unavailable" within the deadline; /health answers 200,
// degraded, with the database down for the sensor role; every process is
// still up.
func (d *drill) databaseCut(t *testing.T) {
	c := d.c
	c.proxy.Cut()

	err := poll(15*time.Second, 100*time.Millisecond, func() error {
		r, id := d.submit()
		if r.status == http.StatusAccepted {
			t.Errorf("test %s accepted with the database cut", id)
		}
		if r.status != http.StatusServiceUnavailable || r.errorBody().Message != messages.MsgDatabaseUnavailable {
			return fmt.Errorf("submit: %s", r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("no 503 %q with the database cut: %v", messages.MsgDatabaseUnavailable, err)
	}
	var slowest time.Duration
	for i := range 5 {
		r, _ := d.submit()
		if r.status != http.StatusServiceUnavailable || r.errorBody().Message != messages.MsgDatabaseUnavailable ||
			r.errorBody().Code != messages.CodeDatabaseUnavailable {
			t.Errorf("submit %d with the database cut: %s, want 503 %q", i+1, r, messages.MsgDatabaseUnavailable)
		}
		slowest = max(slowest, r.elapsed)
	}
	t.Logf("submit with the database cut: 503 %q, slowest of 5 in %s", messages.MsgDatabaseUnavailable, slowest.Round(time.Microsecond))

	var h messages.EdgeHealth
	err = poll(10*time.Second, 100*time.Millisecond, func() error {
		var err error
		h, _, err = c.edgeHealth()
		if err != nil {
			return err
		}
		sensor := h.Services[roleSensor]
		if h.Status != messages.HealthDegraded || sensor.Dependencies["database"].Status != messages.HealthDown {
			return fmt.Errorf("/health status %q, sensor %q with database %+v", h.Status, sensor.Status, sensor.Dependencies["database"])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("/health does not show the database down: %v", err)
	}
	// Every role that answers and uses the database says it is down (auth
	// was killed in drill 1 and is shown down as a whole).
	for role, s := range h.Services {
		if dep, ok := s.Dependencies["database"]; ok && dep.Status != messages.HealthDown {
			t.Errorf("/health: %s says the database is %q", role, dep.Status)
		}
	}
	if got := h.Services[roleAuth].Status; got != messages.HealthDown {
		t.Errorf("/health: auth %q, want down (its process was killed)", got)
	}
	t.Logf("/health: %s; sensor database: %s (%s)", h.Status, h.Services[roleSensor].Dependencies["database"].Status, h.Services[roleSensor].Dependencies["database"].LastError)

	c.running(t, roleEdge, roleSensor, roleBridge)
	if err := c.ready(10*time.Second, roleEdge, roleSensor, roleBridge); err != nil {
		t.Errorf("a role stopped answering with the database cut: %v", err)
	}
}

// Drill 4: everything comes back (auth as a new process, the database,
// Kafka). Within 10 s, polling, submissions and logins succeed again with
// no restart of any other process; the events queued in drill 2 drain from
// JetStream and reach Kafka.
func (d *drill) everythingBack(t *testing.T) {
	c := d.c
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	c.proxy.Restore()
	d.outage.back(t, c)
	c.start(roleAuth, false)

	var submitted, loggedIn time.Duration
	err := poll(time.Until(deadline), 100*time.Millisecond, func() error {
		if submitted == 0 {
			if r, _ := d.submit(); r.status != http.StatusAccepted {
				return fmt.Errorf("submit: %s", r)
			}
			submitted = time.Since(start)
		}
		if loggedIn == 0 {
			// The per-user login limit refills at 1/s: a 429 is "not yet".
			if r := c.login(); r.status != http.StatusOK {
				return fmt.Errorf("login: %s", r)
			}
			loggedIn = time.Since(start)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("not back within 10s: %v", err)
	}
	t.Logf("back: submissions accepted after %s, login after %s", submitted.Round(time.Millisecond), loggedIn.Round(time.Millisecond))
	for range 5 {
		d.mustAccept(t, "")
	}

	for _, role := range []string{roleEdge, roleSensor, roleBridge} {
		if p := c.proc(role); p.exited() || p.cmd.Process.Pid != d.pids[role] {
			t.Errorf("%s was restarted or exited (pid %d, first pid %d)", role, p.cmd.Process.Pid, d.pids[role])
		}
	}

	var s messages.BridgeStats
	err = poll(30*time.Second, 100*time.Millisecond, func() error {
		var err error
		s, err = c.kafkaStats()
		if err != nil {
			return err
		}
		if s.Queued > 0 || s.Breaker != messages.BreakerClosed {
			return fmt.Errorf("queued %d, breaker %q, last error %q", s.Queued, s.Breaker, s.LastError)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the queued events did not drain: %v", err)
	}
	t.Logf("/kafka/stats drained after %s: queued %d, breaker %s, written %d", time.Since(start).Round(time.Millisecond), s.Queued, s.Breaker, s.Successful)

	ev := c.readEvents(t, len(d.drill2))
	for _, id := range d.drill2 {
		if len(ev.byTest[id]) == 0 {
			t.Errorf("test %s, accepted while Kafka was down, has no event in Kafka", id)
		}
	}
}

// Drill 5: the NATS server restarts on the same store directory while tests
// are in flight. Every process reconnects by itself (readiness again, a
// "nats reconnected" log line), and submissions work again.
func (d *drill) natsRestarted(t *testing.T) {
	c := d.c
	for range 10 {
		d.mustAccept(t, "")
	}
	start := time.Now()
	c.nats.Restart()
	t.Logf("nats restarted on %s in %s", c.nats.URL(), time.Since(start).Round(time.Millisecond))

	roles := []string{roleEdge, roleAuth, roleSensor, roleBridge}
	if err := c.ready(testenv.Wait(c.t), roles...); err != nil {
		t.Fatalf("not every role came back after the NATS restart: %v", err)
	}
	for _, role := range roles {
		p := c.proc(role)
		err := poll(testenv.Wait(c.t), pollInterval, func() error {
			if _, ok := p.findLog(func(r map[string]any) bool { return r["msg"] == "nats reconnected" }); !ok {
				return errors.New(`no "nats reconnected" log line`)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", role, err)
		}
	}
	var accepted time.Duration
	err := poll(15*time.Second, 100*time.Millisecond, func() error {
		if r, _ := d.submit(); r.status != http.StatusAccepted {
			return fmt.Errorf("submit: %s", r)
		}
		accepted = time.Since(start)
		return nil
	})
	if err != nil {
		t.Fatalf("submissions did not come back after the NATS restart: %v", err)
	}
	t.Logf("after the NATS restart: every role ready and submissions accepted after %s", accepted.Round(time.Millisecond))
	for range 10 {
		d.mustAccept(t, "")
	}
	c.running(t, roles...)
}
