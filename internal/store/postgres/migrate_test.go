package postgres_test

import (
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"

	"sensorhub/internal/store/postgres"
	"sensorhub/internal/testenv"
)

// provider returns a goose provider for the embedded migrations on the
// database at databaseURL.
func provider(t *testing.T, databaseURL string) (*goose.Provider, *sql.DB) {
	t.Helper()
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, postgres.Migrations(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p, db
}

// A user written before the default_password column comes back with the
// flag unknown, and is listed for the one-time check.
func TestUserFromBeforeTheDefaultPasswordColumn(t *testing.T) {
	databaseURL := testenv.Postgres(t)
	p, db := provider(t, databaseURL)
	if _, err := p.UpTo(t.Context(), 2); err != nil {
		t.Fatalf("migrate to version 2: %v", err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO users (username, password_hash, roles) VALUES ('old', '\x2432', '{user}')`); err != nil {
		t.Fatalf("insert a version-2 user: %v", err)
	}

	s := open(t, databaseURL) // applies the rest
	u, err := s.GetUser(t.Context(), "old")
	if err != nil {
		t.Fatal(err)
	}
	if u.DefaultPassword != nil || string(u.PasswordHash) != "$2" {
		t.Fatalf("old user: flag %v, hash %q; want unknown and kept", u.DefaultPassword, u.PasswordHash)
	}
	unchecked, err := s.ListUncheckedPasswords(t.Context())
	if err != nil || len(unchecked) != 1 || unchecked[0].Username != "old" {
		t.Fatalf("ListUncheckedPasswords = %v, %v; want old", unchecked, err)
	}
}

// An outbox row written before the sensor_id column is
// still listed, with it empty (the relay reads it from the payload).
func TestOutboxRowFromBeforeTheHeaderColumns(t *testing.T) {
	databaseURL := testenv.Postgres(t)
	p, db := provider(t, databaseURL)
	if _, err := p.UpTo(t.Context(), 3); err != nil {
		t.Fatalf("migrate to version 3: %v", err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO outbox (event_id, test_id, subject, payload, created_at)
		VALUES ('ev-old', 't-old', 'sensorhub.events.co2.completed', '{"sensor_id":"s1"}', now())`); err != nil {
		t.Fatalf("insert a version-3 outbox row: %v", err)
	}

	s := open(t, databaseURL) // applies the rest
	rows, err := s.OutboxPending(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].EventID != "ev-old" || string(rows[0].Payload) != `{"sensor_id":"s1"}` ||
		rows[0].SensorID != "" {
		t.Fatalf("OutboxPending = %+v; want the old row, sensor id empty", rows)
	}
}

// An outbox row written before the traceparent column (version 6) is
// still listed, with it empty: the relay publishes it untraced.
func TestOutboxRowFromBeforeTheTraceparentColumn(t *testing.T) {
	databaseURL := testenv.Postgres(t)
	p, db := provider(t, databaseURL)
	if _, err := p.UpTo(t.Context(), 6); err != nil {
		t.Fatalf("migrate to version 6: %v", err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO outbox (event_id, test_id, subject, payload, sensor_id, created_at)
		VALUES ('ev-old', 't-old', 'sensorhub.events.co2.completed', '{}', 's1', now())`); err != nil {
		t.Fatalf("insert a version-6 outbox row: %v", err)
	}

	s := open(t, databaseURL) // applies the rest
	rows, err := s.OutboxPending(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].EventID != "ev-old" || rows[0].SensorID != "s1" || rows[0].Traceparent != "" {
		t.Fatalf("OutboxPending = %+v; want the old row, traceparent empty", rows)
	}
}

// Every migration can be rolled back and applied again.
func TestMigrationsDownAndUp(t *testing.T) {
	p, _ := provider(t, testenv.Postgres(t))
	if _, err := p.Up(t.Context()); err != nil {
		t.Fatalf("up: %v", err)
	}
	if _, err := p.DownTo(t.Context(), 0); err != nil {
		t.Fatalf("down to 0: %v", err)
	}
	if _, err := p.Up(t.Context()); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
