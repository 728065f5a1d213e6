package drills

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// dbTests returns every test row as id -> status (a repeated id would be a
// second row for one test: it is reported, not folded).
func dbTests(ctx context.Context, conn *pgx.Conn) (map[string]string, []string, error) {
	rows, err := conn.Query(ctx, "SELECT id, status FROM tests")
	if err != nil {
		return nil, nil, fmt.Errorf("query tests: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	var repeated []string
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			return nil, nil, fmt.Errorf("scan tests: %w", err)
		}
		if _, dup := out[id]; dup {
			repeated = append(repeated, id)
		}
		out[id] = status
	}
	return out, repeated, rows.Err()
}

func countByStatus(tests map[string]string) map[string]int {
	out := map[string]int{}
	for _, s := range tests {
		out[s]++
	}
	return out
}

// kafkaEvents is what Kafka holds, deduplicated by event id.
type kafkaEvents struct {
	records    int
	byEvent    map[string]string   // event id -> test id
	byTest     map[string][]string // test id -> distinct event ids
	duplicates int                 // records whose event id came earlier
}

// readEvents reads the whole topic (at least want records) and dedupes by
// the event-id header, checking it against the body.
func (c *cluster) readEvents(t testing.TB, want int) kafkaEvents {
	t.Helper()
	msgs, err := testenv.ReadAllWithin(c.kafka.Addr(), messages.DefaultKafkaTopic, want, testenv.Wait(t))
	if err != nil {
		t.Fatalf("read Kafka: %v", err)
	}
	return dedupe(t, msgs)
}

func dedupe(t testing.TB, msgs []kafka.Message) kafkaEvents {
	t.Helper()
	ev := kafkaEvents{records: len(msgs), byEvent: map[string]string{}, byTest: map[string][]string{}}
	for _, m := range msgs {
		id := testenv.KafkaHeader(m, messages.KafkaHeaderEventID)
		e, err := messages.DecodeEvent(m.Value)
		switch {
		case err != nil:
			t.Errorf("Kafka record %d/%d is not an event: %v", m.Partition, m.Offset, err)
			continue
		case id == "":
			t.Errorf("Kafka record %d/%d has no %s header", m.Partition, m.Offset, messages.KafkaHeaderEventID)
			continue
		case id != e.EventID:
			t.Errorf("Kafka record %d/%d: header event id %s, body %s", m.Partition, m.Offset, id, e.EventID)
		}
		if prev, seen := ev.byEvent[id]; seen {
			ev.duplicates++
			if prev != e.TestID {
				t.Errorf("event id %s carries tests %s and %s", id, prev, e.TestID)
			}
			continue
		}
		ev.byEvent[id] = e.TestID
		ev.byTest[e.TestID] = append(ev.byTest[e.TestID], id)
	}
	return ev
}

// verifyNoLoss is the end of every drill run: once the system has settled,
// every test that got 202 is completed in the database (one row each), its
// one event is in Kafka (deduplicated by event id), and Kafka holds exactly
// the finished tests. It logs the summary line.
func (c *cluster) verifyNoLoss(t *testing.T, l *ledger) {
	t.Helper()
	conn := c.db(t)
	accepted := l.acceptedIDs()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()

	start := time.Now()
	// 1. Nothing left processing: the pipeline (and the sweeper, for tests
	// a cut left behind) has finished every test in the database.
	var tests map[string]string
	var repeated []string
	err := poll(testenv.Wait(t), 250*time.Millisecond, func() error {
		var err error
		tests, repeated, err = dbTests(ctx, conn)
		if err != nil {
			return err
		}
		if n := countByStatus(tests)["processing"]; n > 0 {
			return fmt.Errorf("%d tests still processing", n)
		}
		return nil
	})
	if err != nil {
		t.Errorf("database did not settle: %v (by status: %v)", err, countByStatus(tests))
	}
	if len(repeated) > 0 {
		t.Errorf("%d test ids have more than one row, e.g. %s", len(repeated), repeated[0])
	}
	var lost, notCompleted []string
	for _, id := range accepted {
		switch tests[id] {
		case "":
			lost = append(lost, id)
		case "completed":
		default:
			notCompleted = append(notCompleted, id)
		}
	}
	for _, id := range lost {
		t.Errorf("LOST: test %s got 202 (during %q) but is not in the database", id, l.phaseOf(id))
	}
	for _, id := range notCompleted {
		t.Errorf("test %s got 202 (during %q) but ended %q, not completed", id, l.phaseOf(id), tests[id])
	}

	settled := time.Since(start)
	// 2. Every event left the outbox and the bridge holds nothing back.
	err = poll(testenv.Wait(t), 250*time.Millisecond, func() error {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil {
			return fmt.Errorf("count outbox: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%d events still in the outbox", n)
		}
		s, err := c.kafkaStats()
		if err != nil {
			return err
		}
		if s.Queued > 0 {
			return fmt.Errorf("bridge: %d events queued (breaker %s, last error %q)", s.Queued, s.Breaker, s.LastError)
		}
		return nil
	})
	if err != nil {
		t.Errorf("events did not drain: %v", err)
	}

	drained := time.Since(start)
	// 3. Kafka holds exactly one event id per finished test.
	finished := 0
	for _, s := range tests {
		if s != "processing" {
			finished++
		}
	}
	ev := c.readEvents(t, finished)
	var missing, multiple, unknown []string
	for id, s := range tests {
		if s == "processing" {
			continue
		}
		switch n := len(ev.byTest[id]); {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			multiple = append(multiple, id)
		}
	}
	for id := range ev.byTest {
		if _, ok := tests[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	sort.Strings(missing)
	for _, id := range missing {
		if phase := l.phaseOf(id); phase != "" {
			t.Errorf("LOST EVENT: test %s got 202 (during %q), ended %s, but its event is not in Kafka", id, phase, tests[id])
		} else {
			t.Errorf("test %s (no 202 seen by a client) ended %s but its event is not in Kafka", id, tests[id])
		}
	}
	for _, id := range multiple {
		t.Errorf("test %s has %d distinct event ids in Kafka %v, want one", id, len(ev.byTest[id]), ev.byTest[id])
	}
	for _, id := range unknown {
		t.Errorf("Kafka holds an event of test %s, which is not in the database", id)
	}

	nAcc, refused, connErrs, bad, other := l.counts()
	if bad > 0 {
		t.Errorf("%d replies were 202 without a test id", bad)
	}
	byStatus := countByStatus(tests)
	unseen := 0
	for id := range tests {
		if l.phaseOf(id) == "" {
			unseen++
		}
	}
	t.Logf("no-loss summary: accepted %d, refused with 503 %d, connection errors %d, other replies %v, "+
		"completed %d (database rows %d: %v; %d without a 202 seen by the client), events %d, duplicates %d (Kafka records %d)%s",
		nAcc, refused, connErrs, other, byStatus["completed"], len(tests), byStatus, unseen,
		len(ev.byEvent), ev.duplicates, ev.records, l.phaseSummary())
	t.Logf("settled: database after %s, outbox and bridge drained after %s, Kafka read after %s",
		settled.Round(time.Millisecond), drained.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if len(lost) > 0 || len(missing) > 0 {
		t.Error(errors.New("an accepted test or its event was lost"))
	}
}
