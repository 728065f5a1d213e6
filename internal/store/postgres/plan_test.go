package postgres_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"sensorhub/internal/store/postgres"
	"sensorhub/internal/testenv"
)

// The statements the sensor role runs for a batch of tests by id reach
// them through the primary key, whatever the statistics say. pgx prepares
// a statement once per connection, and after a few executions PostgreSQL
// may keep a generic plan made from the statistics of that moment: on a
// young database they say that hardly any test is processing, and the
// partial index tests_processing_lease looks like the cheapest way to the
// batch, although it then holds every test in flight, each compared with
// the whole id array (measured: 334 ms for 1,000 ids among 20,000 tests
// processing, against 4.5 ms through the primary key). The test builds
// that database, forces the generic plan, and reads the plan PostgreSQL
// chose for each statement, under the transaction settings it runs with.
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
	// The statistics of a young database: twenty finished tests. Then the
	// tests in flight that the statistics do not know of yet.
	exec(`INSERT INTO tests (id, owner, sensor_type, sensor_id, status, lease_until, completed_at)
		SELECT 'done-' || g, 'u', 'vibration', 'default', 'completed', now(), now() FROM generate_series(1, 20) g`)
	exec(`ANALYZE tests`)
	exec(`INSERT INTO tests (id, owner, sensor_type, sensor_id, lease_until)
		SELECT 'busy-' || g, 'u', 'vibration', 'default', now() + interval '1 minute' FROM generate_series(1, 5000) g`)

	ids := make([]string, 500)
	for i := range ids {
		ids[i] = fmt.Sprintf("busy-%d", 1000+i)
	}
	idArray := "'{" + strings.Join(ids, ",") + "}'"
	cases := []struct {
		name, begin, sql, args string
	}{
		{"begin attempts", "BEGIN", postgres.BeginAttemptsSQL, idArray + ", now()"},
		{"renew leases", "BEGIN", postgres.RenewLeasesSQL, idArray + ", now()"},
		{"complete tests", postgres.BeginPinnedPlans, postgres.CompleteTestsSQL,
			idArray + ", '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exec(c.begin)
			defer exec("ROLLBACK")
			exec("SET LOCAL plan_cache_mode = force_generic_plan")
			exec("PREPARE batch AS " + c.sql)
			defer exec("DEALLOCATE batch")
			rows, err := conn.Query(ctx, "EXPLAIN EXECUTE batch("+c.args+")")
			if err != nil {
				t.Fatalf("explain: %v", err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatalf("explain: %v", err)
			}
			plan := strings.Join(lines, "\n")
			if strings.Contains(plan, "tests_processing_lease") || strings.Contains(plan, "Seq Scan on tests") ||
				!strings.Contains(plan, "tests_pkey") {
				t.Errorf("the generic plan does not probe tests by its primary key:\n%s", plan)
			}
		})
	}
}
