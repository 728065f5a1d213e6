package app

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/jackc/pgx/v5"

	"sensorhub/internal/breaker"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// startEdgeWith starts the edge with cfg (its Common and HTTP are set here).
func (s *system) startEdgeWith(cfg EdgeConfig) {
	s.role("edge", func(ctx context.Context, l *lifecycle, _ *actor.ActorSystem) error {
		nc, err := connect(l, s.as("edge"), "edge", s.logger)
		if err != nil {
			return err
		}
		cfg.Common, cfg.HTTP = s.as("edge"), "127.0.0.1:0"
		addr, err := startEdge(l, nc, cfg, nil, s.logger)
		s.mu.Lock()
		s.http = "http://" + addr
		s.mu.Unlock()
		return err
	})
}

// submission is what one client saw of one submission.
type submission struct {
	first reply // the edge's first answer
	key   string
	final reply // after the client's retries with the key (outcome unknown only)
}

// ok: the submission was accepted, now (202) or before and since
// finished (200, a duplicate the edge's own retry found completed).
func (r reply) ok() bool { return r.status == http.StatusAccepted || r.status == http.StatusOK }

// The sensor role's NATS connection is killed while submissions are in
// flight through the edge, and a new sensor process comes up. Every client
// that got 202 (or 200), or an outcome_unknown 503 and retried with the key it was
// given, ends with exactly one test; every sensor_unavailable 503 left
// nothing stored; and nothing else is stored. The new process comes up at
// once (the edge's own retries reach it), or only after every client got
// its answer (the lost answers end as outcome_unknown, and the clients
// retry).
func TestSensorConnectionKilledMidFlight(t *testing.T) {
	t.Run("restart at once", func(t *testing.T) { killSensorMidFlight(t, false) })
	t.Run("restart after the answers", func(t *testing.T) { killSensorMidFlight(t, true) })
}

func killSensorMidFlight(t *testing.T, late bool) {
	s := newSystem(t)
	s.startAuth()
	killed := s.startSensorAs("sensor")
	// A send waits 1 s for its answer, so that the answers lost with the
	// connection show as timeouts; the breaker opens after 5 lost answers
	// and probes every 200 ms.
	s.startEdgeWith(EdgeConfig{
		SensorBreaker:  breaker.Config{CallTimeout: time.Second, OpenFor: 200 * time.Millisecond, Failures: 5},
		AuthBreaker:    breaker.Config{CallTimeout: testenv.Wait(t)},
		SubmitAttempts: 3, SubmitTimeout: 3 * time.Second,
	})
	tok := s.login("alice", "alice-secret")

	const workers, perWorker = 48, 40
	subs := make([][]submission, workers)
	var answered, accepted, parked, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	// Half the workers stop at a quarter of their submissions until the
	// connection is killed, so that submissions are sure to follow the
	// kill however the machine schedules the workers (on a busy machine
	// all of them could otherwise finish before the test gets to kill);
	// the other half keep sending, so submissions are in flight at the
	// kill.
	resume := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			defer done.Add(1)
			for i := range perWorker {
				if w%2 == 0 && i == perWorker/4 {
					parked.Add(1)
					select {
					case <-resume:
					case <-t.Context().Done():
						return
					}
				}
				body := fmt.Appendf(nil, `{"sensor_id":"w%d-%d","readings":[21.5,21.6,21.5]}`, w, i)
				r, err := s.do(http.MethodPost, "/test/sensor/temperature", tok, body)
				if err != nil {
					errs <- err
					return
				}
				subs[w] = append(subs[w], submission{first: r, key: r.header.Get(messages.HeaderIdempotencyKey)})
				answered.Add(1)
				if r.ok() {
					accepted.Add(1)
				}
			}
		})
	}
	// Kill the connection while the submissions flow: the sensor role
	// keeps storing what it took, and cannot answer.
	testenv.Eventually(t, "half the workers at a quarter of their submissions", func() bool { return parked.Load() == workers/2 })
	if accepted.Load() == 0 {
		t.Fatal("nothing accepted before the kill")
	}
	killed.Close()
	killedAt := answered.Load()
	close(resume)
	testenv.Eventually(t, "refusals while no sensor listens", func() bool {
		return answered.Load() >= killedAt+workers*2 || done.Load() == workers
	})
	if answered.Load() < killedAt+workers*2 {
		t.Fatalf("the workers ended with %d answers after the kill, want at least %d", answered.Load()-killedAt, workers*2)
	}
	if late {
		wg.Wait()
	}
	s.startSensorAs("sensor-2")
	t.Cleanup(func() { s.stop("sensor-2") })
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("submission: %v", err)
	}

	// The clients told "outcome unknown" retry with their key (and the
	// same body) until they get a definite answer.
	counts := map[string]int{}
	for w := range subs {
		for i := range subs[w] {
			sub := &subs[w][i]
			code := sub.first.code()
			if sub.first.ok() {
				code = fmt.Sprint(sub.first.status)
			}
			counts[code]++
			if sub.key == "" {
				t.Fatalf("answer %d %s without an Idempotency-Key", sub.first.status, sub.first.body)
			}
			if code != string(messages.CodeOutcomeUnknown) {
				continue
			}
			body := fmt.Appendf(nil, `{"sensor_id":"w%d-%d","readings":[21.5,21.6,21.5]}`, w, i)
			testenv.Eventually(t, "a retry with the key to be answered", func() bool {
				r, err := s.do(http.MethodPost, "/test/sensor/temperature", tok, body, messages.HeaderIdempotencyKey, sub.key)
				sub.final = r
				return err == nil && r.ok()
			})
		}
	}
	t.Logf("first answers: %v", counts)
	if counts[string(messages.CodeOutcomeUnknown)]+counts[string(messages.CodeSensorUnavailable)] == 0 {
		t.Fatal("the kill made no 503 at all: the test proved nothing")
	}

	stored := storedByKey(t, s.realDB, "alice")
	var want int
	for w := range subs {
		for _, sub := range subs[w] {
			n := stored[sub.key]
			delete(stored, sub.key)
			switch {
			case sub.first.ok(), sub.first.code() == string(messages.CodeOutcomeUnknown):
				want++
				if n != 1 {
					t.Errorf("key %s (first answer %d %s): %d tests stored, want 1", sub.key, sub.first.status, sub.first.code(), n)
				}
				r := sub.first
				if !r.ok() {
					r = sub.final
				}
				var acc messages.TestAccepted
				r.decode(t, &acc)
				if !messages.ValidTestID(acc.TestID) {
					t.Errorf("key %s answered %s", sub.key, r.body)
				}
			case sub.first.code() == string(messages.CodeSensorUnavailable):
				if n != 0 {
					t.Errorf("key %s answered sensor_unavailable (nothing stored), yet %d tests are stored", sub.key, n)
				}
			default:
				t.Errorf("key %s: unexpected first answer %d %s", sub.key, sub.first.status, sub.first.body)
			}
		}
	}
	for key, n := range stored {
		t.Errorf("%d tests stored under key %q that no client holds", n, key)
	}
	if late && counts[string(messages.CodeOutcomeUnknown)] == 0 {
		t.Fatal("no answer was lost with the connection: the test proved nothing")
	}
	// Everything stored ends completed, by one sensor process or the other.
	st := s.openStore(s.realDB)
	testenv.EventuallyState(t, "every stored test completed", func() (bool, string) {
		c := s.counts(st)
		return c[messages.StatusCompleted] == int64(want) && c[messages.StatusProcessing] == 0, fmt.Sprint(c)
	})
	var h messages.EdgeHealth
	s.mustDo(http.MethodGet, "/health", "", nil).decode(t, &h)
	t.Logf("edge requests: %+v", *h.Services[messages.RoleEdge].Requests)
}

// storedByKey counts owner's tests per idempotency key ("" for none),
// straight from PostgreSQL.
func storedByKey(t *testing.T, dbURL, owner string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT coalesce(idempotency_key, ''), count(*) FROM tests WHERE owner = $1 GROUP BY 1`, owner)
	if err != nil {
		t.Fatalf("count tests by key: %v", err)
	}
	out := map[string]int{}
	var (
		key string
		n   int
	)
	if _, err := pgx.ForEachRow(rows, []any{&key, &n}, func() error { out[key] = n; return nil }); err != nil {
		t.Fatalf("count tests by key: %v", err)
	}
	return out
}
