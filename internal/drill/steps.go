package drill

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// run is one drill: its connection, what it stopped, what it saw.
type run struct {
	cfg     Config
	nc      *nats.Conn
	subject string          // sensorhub.chaos.control
	stopped map[string]bool // targets the drill stopped and has not started
	token   string
	rep     Report
	// successful0 is the bridge's successful count before the drill.
	successful0 uint64
}

func (d *run) printf(format string, args ...any) { fmt.Fprintf(d.cfg.Out, format, args...) }

// surprise records that a user saw something else than the drill expects.
func (d *run) surprise(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	d.rep.Surprises = append(d.rep.Surprises, s)
	d.printf("   ! unexpected: %s\n", s)
}

func (d *run) run(ctx context.Context) error {
	d.printf("sensorhub drill against %s (NATS %s, as %s)\n", d.cfg.URL, d.cfg.NATSURL, d.cfg.Username)
	r, err := d.control(ctx, messages.ChaosTargetKafka, messages.ChaosActionStatus)
	if err != nil {
		return fmt.Errorf("ask dev's chaos control (is dev running with --chaos, and is %s an admin?): %w", d.cfg.Username, err)
	}
	d.printf("   chaos targets: %s\n", states(r.States))
	var missing, down []string
	for _, t := range append(slices.Clone(targets), messages.RoleSensor, messages.RoleBridge) {
		switch s, ok := r.States[t]; {
		case !ok:
			missing = append(missing, t)
		case s != messages.ChaosStateRunning:
			down = append(down, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("dev's chaos control has no %s (dev with --kafka-brokers has no kafka switch)", strings.Join(missing, ", "))
	}
	if len(down) > 0 {
		return fmt.Errorf("%s stopped before the drill: start it first (nats req %s '{\"target\":\"...\",\"action\":\"start\"}')", strings.Join(down, ", "), d.subject)
	}

	login, err := d.login(ctx)
	if err != nil {
		return err
	}
	if login.status != http.StatusOK {
		return fmt.Errorf("log in as %s over HTTP: %s", d.cfg.Username, login)
	}
	d.printf("   logged in over HTTP: %d in %s\n", login.status, ms(login.elapsed))
	s, err := d.kafkaStats(ctx)
	if err != nil {
		return err
	}
	d.successful0 = s.Successful
	first, err := d.submit(ctx)
	if err != nil {
		return err
	}
	if !d.record(first) {
		return fmt.Errorf("a first submission before anything is stopped: %s", first)
	}
	d.printf("   a first test accepted: %d (%s) in %s; Kafka holds %d records\n", first.status, first.header.Get(messages.HeaderAuthMode), ms(first.elapsed), s.Successful)

	for _, step := range []func(context.Context) error{d.authStopped, d.kafkaStopped, d.databaseCut, d.everythingBack} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return d.verdict()
}

// Step 1: auth stopped. Login answers 503 at once; a token already held
// still submits (verified locally by the sensor role); auth comes back.
func (d *run) authStopped(ctx context.Context) error {
	d.printf("\n1. auth stopped\n")
	if err := d.stop(ctx, messages.RoleAuth); err != nil {
		return err
	}
	var last reply
	for range 3 {
		r, err := d.login(ctx)
		if err != nil {
			return err
		}
		last = r
		if r.status != http.StatusServiceUnavailable || r.code() != messages.CodeAuthUnavailable {
			d.surprise("login with auth stopped: %s, want 503 %s", r, messages.CodeAuthUnavailable)
		}
	}
	d.printf("   POST /auth/token: %s\n", last)
	accepted, modes, err := d.submitN(ctx, d.cfg.Submissions)
	if err != nil {
		return err
	}
	d.printf("   POST /test/sensor/%s with the token already held: %d of %d accepted (202), X-Auth-Mode %s\n",
		d.cfg.Sensor, accepted, d.cfg.Submissions, counts(modes))
	if accepted != d.cfg.Submissions {
		d.surprise("with auth stopped %d of %d submissions with a held token were accepted", accepted, d.cfg.Submissions)
	}
	d.hold(ctx)
	if err := d.start(ctx, messages.RoleAuth); err != nil {
		return err
	}
	start := time.Now()
	err = d.until(ctx, "login works again", func() (bool, string, error) {
		r, err := d.login(ctx)
		return r.status == http.StatusOK, r.String(), err
	})
	if err != nil {
		return err
	}
	d.printf("   auth started again: login 200 after %s\n", ms(time.Since(start)))
	return nil
}

// Step 2: Kafka stopped. Submissions are still accepted; their events
// queue in JetStream, the bridge's breaker opens.
func (d *run) kafkaStopped(ctx context.Context) error {
	d.printf("\n2. Kafka stopped\n")
	if err := d.stop(ctx, messages.ChaosTargetKafka); err != nil {
		return err
	}
	before, err := d.kafkaStats(ctx)
	if err != nil {
		return err
	}
	accepted, _, err := d.submitN(ctx, d.cfg.Submissions)
	if err != nil {
		return err
	}
	d.printf("   POST /test/sensor/%s: %d of %d accepted (202)\n", d.cfg.Sensor, accepted, d.cfg.Submissions)
	if accepted != d.cfg.Submissions {
		d.surprise("with Kafka stopped %d of %d submissions were accepted", accepted, d.cfg.Submissions)
	}
	start := time.Now()
	seen := []uint64{before.Queued}
	var s messages.BridgeStats
	err = d.until(ctx, "the events queued and the bridge's breaker open", func() (bool, string, error) {
		var err error
		s, err = d.kafkaStats(ctx)
		if err != nil {
			return false, "", err
		}
		if s.Queued != seen[len(seen)-1] {
			seen = append(seen, s.Queued)
		}
		return s.Breaker == messages.BreakerOpen && s.Queued >= before.Queued+uint64(accepted),
			fmt.Sprintf("breaker %s, queued %d", s.Breaker, s.Queued), nil
	})
	if err != nil {
		d.surprise("%v", err)
	} else {
		d.printf("   GET /kafka/stats after %s: breaker %s, queued %d (rising: %s), last error %q\n",
			ms(time.Since(start)), s.Breaker, s.Queued, rising(seen), s.LastError)
	}
	d.hold(ctx)
	return nil
}

// Step 3: the database cut (Kafka still stopped). Submissions answer 503
// database_unavailable; /health shows the database down.
func (d *run) databaseCut(ctx context.Context) error {
	d.printf("\n3. database cut (Kafka still stopped)\n")
	if err := d.stop(ctx, messages.ChaosTargetDatabase); err != nil {
		return err
	}
	// A submission that was already in the pipeline may still be
	// accepted; from the first 503 on, every one must be refused.
	var r reply
	err := d.until(ctx, "submissions refused with 503 database_unavailable", func() (bool, string, error) {
		var err error
		r, err = d.submit(ctx)
		if err != nil {
			return false, "", err
		}
		d.record(r)
		return r.status == http.StatusServiceUnavailable && r.code() == messages.CodeDatabaseUnavailable, r.String(), nil
	})
	if err != nil {
		d.surprise("%v", err)
	}
	var slowest time.Duration
	for range d.cfg.Submissions {
		r, err := d.submit(ctx)
		if err != nil {
			return err
		}
		d.record(r)
		if r.status != http.StatusServiceUnavailable || r.code() != messages.CodeDatabaseUnavailable {
			d.surprise("submission with the database cut: %s, want 503 %s", r, messages.CodeDatabaseUnavailable)
		}
		slowest = max(slowest, r.elapsed)
	}
	d.printf("   POST /test/sensor/%s: %s; %d more alike, the slowest in %s\n", d.cfg.Sensor, r, d.cfg.Submissions, ms(slowest))

	var h messages.EdgeHealth
	err = d.until(ctx, "/health showing the database down", func() (bool, string, error) {
		var err error
		if h, err = d.health(ctx); err != nil {
			return false, "", err
		}
		db := h.Services[messages.RoleSensor].Dependencies["database"]
		return h.Status == messages.HealthDegraded && db.Status == messages.HealthDown,
			fmt.Sprintf("status %s, sensor database %s", h.Status, db.Status), nil
	})
	if err != nil {
		d.surprise("%v", err)
	} else {
		db := h.Services[messages.RoleSensor].Dependencies["database"]
		d.printf("   GET /health: %s; sensor's database %s (%s); breaker sensor.database %s\n",
			h.Status, db.Status, db.LastError, h.CircuitBreakers["sensor.database"].State)
	}
	d.hold(ctx)
	return nil
}

// Step 4: everything back. Submissions succeed again; then every test
// accepted during the drill completes and every queued event reaches
// Kafka, within Wait.
func (d *run) everythingBack(ctx context.Context) error {
	d.printf("\n4. everything back (database, Kafka)\n")
	start := time.Now()
	for _, t := range targets {
		if d.stopped[t] {
			if err := d.start(ctx, t); err != nil {
				return err
			}
		}
	}
	err := d.until(ctx, "submissions accepted again", func() (bool, string, error) {
		r, err := d.submit(ctx)
		if err != nil {
			return false, "", err
		}
		d.record(r)
		return r.status == http.StatusAccepted, r.String(), nil
	})
	if err != nil {
		d.surprise("%v", err)
	} else {
		d.printf("   POST /test/sensor/%s: 202 again after %s\n", d.cfg.Sensor, ms(time.Since(start)))
	}
	accepted, _, err := d.submitN(ctx, d.cfg.Submissions)
	if err != nil {
		return err
	}
	d.printf("   %d of %d more accepted\n", accepted, d.cfg.Submissions)

	d.printf("   waiting (at most %s) for the %d tests accepted during the drill and their events...\n", ms(d.cfg.Wait), len(d.rep.Accepted))
	wctx, cancel := context.WithTimeout(ctx, d.cfg.Wait)
	defer cancel()
	start = time.Now()
	pending := slices.Clone(d.rep.Accepted)
	err = d.poll(wctx, func() (bool, error) {
		var left []string
		for _, id := range pending {
			rec, err := d.result(wctx, id)
			if err != nil {
				return false, err
			}
			if rec.Status == messages.StatusProcessing {
				left = append(left, id)
			}
		}
		pending = left
		return len(pending) == 0, nil
	})
	d.rep.Completed = len(d.rep.Accepted) - len(pending)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	d.printf("   tests: %d of %d completed after %s\n", d.rep.Completed, len(d.rep.Accepted), ms(time.Since(start)))
	if len(pending) > 0 {
		d.printf("   still processing: %s\n", strings.Join(pending, ", "))
	}

	var s messages.BridgeStats
	err = d.poll(wctx, func() (bool, error) {
		var err error
		if s, err = d.kafkaStats(wctx); err != nil {
			return false, err
		}
		return s.Queued == 0 && s.OutboxBacklog == 0 && s.Breaker == messages.BreakerClosed &&
			s.Successful >= d.successful0+uint64(d.rep.Completed), nil
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	d.rep.Queued, d.rep.OutboxBacklog = s.Queued, s.OutboxBacklog
	if s.Successful > d.successful0 {
		d.rep.EventsWritten = s.Successful - d.successful0
	}
	d.printf("   events: queued %d, outbox %d, breaker %s; Kafka holds %d new records (%d tests completed) after %s\n",
		s.Queued, s.OutboxBacklog, s.Breaker, d.rep.EventsWritten, d.rep.Completed, ms(time.Since(start)))
	return nil
}

// verdict decides and prints the drill's outcome.
func (d *run) verdict() error {
	rep := &d.rep
	var fails []string
	if n := len(rep.Accepted) - rep.Completed; n > 0 {
		fails = append(fails, fmt.Sprintf("%d accepted tests not completed", n))
	}
	if rep.Queued > 0 || rep.OutboxBacklog > 0 {
		fails = append(fails, fmt.Sprintf("%d events still queued, %d still in the outbox", rep.Queued, rep.OutboxBacklog))
	}
	if rep.EventsWritten < uint64(rep.Completed) {
		fails = append(fails, fmt.Sprintf("Kafka gained %d records for %d completed tests", rep.EventsWritten, rep.Completed))
	}
	if len(rep.Surprises) > 0 {
		fails = append(fails, fmt.Sprintf("%d unexpected answers", len(rep.Surprises)))
	}
	rep.Pass = len(fails) == 0
	if rep.Pass {
		d.printf("\nverdict: PASS: every accepted test completed (%d of %d), every queued event delivered (queued 0, outbox 0)\n", rep.Completed, len(rep.Accepted))
		return nil
	}
	d.printf("\nverdict: FAIL: %s\n", strings.Join(fails, "; "))
	return fmt.Errorf("%w: %s", ErrFailed, strings.Join(fails, "; "))
}

// control calls the chaos control.
func (d *run) control(ctx context.Context, target, action string) (messages.ChaosControlReply, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var r messages.ChaosControlReply
	_, err := natsx.Request(ctx, d.nc, d.subject, messages.ChaosControl{Target: target, Action: action}, nil, &r)
	return r, err
}

func (d *run) stop(ctx context.Context, target string) error {
	start := time.Now()
	// Marked first: a stop whose answer is lost may still have happened.
	d.stopped[target] = true
	if _, err := d.control(ctx, target, messages.ChaosActionStop); err != nil {
		return fmt.Errorf("stop %s: %w", target, err)
	}
	d.printf("   (%s stopped in %s)\n", target, ms(time.Since(start)))
	return nil
}

func (d *run) start(ctx context.Context, target string) error {
	start := time.Now()
	if _, err := d.control(ctx, target, messages.ChaosActionStart); err != nil {
		return fmt.Errorf("start %s: %w", target, err)
	}
	delete(d.stopped, target)
	d.printf("   (%s started in %s)\n", target, ms(time.Since(start)))
	return nil
}

// hold keeps a step's state for the dashboard to show.
func (d *run) hold(ctx context.Context) {
	if d.cfg.Hold <= 0 {
		return
	}
	t := time.NewTimer(d.cfg.Hold)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// until polls cond until it holds, within StepTimeout; the error says
// what it last saw.
func (d *run) until(ctx context.Context, what string, cond func() (bool, string, error)) error {
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StepTimeout)
	defer cancel()
	var last string
	err := d.poll(sctx, func() (bool, error) {
		ok, state, err := cond()
		last = state
		return ok, err
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("no %s within %s; last seen: %s", what, d.cfg.StepTimeout, last)
	}
	return nil
}

// poll calls cond every 100 ms until it holds or ctx ends. A request that
// failed (dev busy) is tried again.
func (d *run) poll(ctx context.Context, cond func() (bool, error)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if ok && err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// submitN submits n tests and counts the accepted ones by auth mode.
func (d *run) submitN(ctx context.Context, n int) (int, map[string]int, error) {
	accepted, modes := 0, map[string]int{}
	for range n {
		r, err := d.submit(ctx)
		if err != nil {
			return accepted, modes, err
		}
		if d.record(r) {
			accepted++
			modes[r.header.Get(messages.HeaderAuthMode)]++
		}
	}
	return accepted, modes, nil
}

// record keeps the id of an accepted test, and says whether it was one.
func (d *run) record(r reply) bool {
	if r.status != http.StatusAccepted || r.testID == "" {
		return false
	}
	d.rep.Accepted = append(d.rep.Accepted, r.testID)
	return true
}

func states(m map[string]string) string {
	return joinSorted(m, func(n, v string) string { return n + " " + v }, "")
}

func counts(m map[string]int) string {
	return joinSorted(m, func(n string, v int) string { return fmt.Sprintf("%s x%d", n, v) }, "none")
}

// joinSorted writes each entry of m by its key's order, comma separated;
// empty when m is.
func joinSorted[V any](m map[string]V, entry func(string, V) string, empty string) string {
	if len(m) == 0 {
		return empty
	}
	parts := make([]string, 0, len(m))
	for _, n := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, entry(n, m[n]))
	}
	return strings.Join(parts, ", ")
}

func rising(seen []uint64) string {
	parts := make([]string, len(seen))
	for i, v := range seen {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, " -> ")
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
