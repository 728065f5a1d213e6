package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"sensorhub/internal/store/postgres"
	"sensorhub/internal/testenv"
)

// The statements the sensor role runs for a batch of tests by id reach
// them through the primary key, whatever the statistics say and whenever
// their plan was made. pgx prepares a statement once per connection, and
// after a few executions PostgreSQL may keep a generic plan. Two traps were
// measured: a plan made while the table held a few rows is a sequential
// scan, kept while the table grows (about 10 ms per call with 150,000
// tests); and statistics that say hardly any test is processing make the
// partial index tests_processing_lease look like the cheapest way in,
// although it then holds every test in flight, each compared with the whole
// id array (334 ms for 1,000 ids among 20,000 tests processing, against
// 4.5 ms through the primary key). The test builds both, forces generic
// plans, and reads the plan PostgreSQL uses for each statement under the
// transaction settings it runs with: one made while the table is young, and
// one made once it has grown past its statistics.
func TestBatchStatementsProbeThePrimaryKey(t *testing.T) {
	databaseURL := testenv.Postgres(t)
	open(t, databaseURL) // migrates
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(ctx) })
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	ids := make([]string, 500) // 1% of the tests in flight, as a batch is of a grown table
	for i := range ids {
		ids[i] = fmt.Sprintf("busy-%d", 1000+i)
	}
	idArray := "'{" + strings.Join(ids, ",") + "}'"
	// The arguments of each statement: only their types matter to a
	// generic plan.
	args := map[string]string{
		"begin attempts": idArray + ", now()",
		"renew leases":   idArray + ", now()",
		"complete tests": idArray + ", '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'",
	}
	type statement struct {
		name, begin, sql, args string
	}
	var cases []statement
	for name, st := range postgres.BatchStatements {
		a, ok := args[name]
		if !ok {
			t.Fatalf("no arguments for the batch statement %q", name)
		}
		cases = append(cases, statement{name, st.Begin, st.SQL, a})
	}
	slices.SortFunc(cases, func(a, b statement) int { return strings.Compare(a.name, b.name) })
	// plan returns the plan of the prepared statement name under cases[c]'s
	// transaction settings, making the generic plan if there is none yet.
	plan := func(t *testing.T, c int, name string) string {
		t.Helper()
		exec(cases[c].begin)
		defer exec("ROLLBACK")
		exec("SET LOCAL plan_cache_mode = force_generic_plan")
		rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+name+"("+cases[c].args+")")
		if err != nil {
			t.Fatalf("explain: %v", err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("explain: %v", err)
		}
		return strings.Join(lines, "\n")
	}
	check := func(t *testing.T, p string) {
		t.Helper()
		if strings.Contains(p, "tests_processing_lease") || strings.Contains(p, "Seq Scan on tests") ||
			!strings.Contains(p, "tests_pkey") {
			t.Errorf("the generic plan does not probe tests by its primary key:\n%s", p)
		}
	}

	// A young database: twenty finished tests, analyzed. Each statement is
	// prepared and planned now.
	exec(`INSERT INTO tests (id, owner, sensor_type, sensor_id, status, lease_until, completed_at)
		SELECT 'done-' || g, 'u', 'vibration', 'default', 'completed', now(), now() FROM generate_series(1, 20) g`)
	exec(`ANALYZE tests`)
	for i, c := range cases {
		exec(fmt.Sprintf("PREPARE young%d AS %s", i, c.sql))
		t.Cleanup(func() { _, _ = conn.Exec(context.Background(), fmt.Sprintf("DEALLOCATE young%d", i)) })
		check(t, plan(t, i, fmt.Sprintf("young%d", i)))
	}
	// Then the tests in flight that the statistics do not know of.
	exec(`INSERT INTO tests (id, owner, sensor_type, sensor_id, lease_until)
		SELECT 'busy-' || g, 'u', 'vibration', 'default', now() + interval '1 minute' FROM generate_series(1, 50000) g`)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The plan made while the table was young, still kept.
			check(t, plan(t, i, fmt.Sprintf("young%d", i)))
			// A plan made now, from the statistics of then.
			exec(fmt.Sprintf("PREPARE grown%d AS %s", i, c.sql))
			defer exec(fmt.Sprintf("DEALLOCATE grown%d", i))
			check(t, plan(t, i, fmt.Sprintf("grown%d", i)))
		})
	}
}
