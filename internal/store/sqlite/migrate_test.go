package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"sensorhub/internal/store/sqlite"
)

// provider returns a goose provider for the embedded migrations on the
// file at path.
func provider(t *testing.T, path string) *goose.Provider {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sqlite.Migrations(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A user written before the default_password column comes back with the
// flag unknown, and is listed for the one-time check.
func TestUserFromBeforeTheDefaultPasswordColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	p := provider(t, path)
	if _, err := p.UpTo(t.Context(), 1); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(t.Context(), `INSERT INTO users (username, password_hash, roles, disabled, created_at, updated_at)
		VALUES ('old', x'2432', '["user"]', 0, 1, 1)`)
	_ = db.Close()
	if err != nil {
		t.Fatalf("insert a version-1 user: %v", err)
	}

	s := open(t, path) // applies the rest
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
	path := filepath.Join(t.TempDir(), "old.db")
	p := provider(t, path)
	if _, err := p.UpTo(t.Context(), 2); err != nil {
		t.Fatalf("migrate to version 2: %v", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(t.Context(), `INSERT INTO outbox (event_id, test_id, subject, payload, created_at)
		VALUES ('ev-old', 't-old', 'sensorhub.events.co2.completed', CAST('{"sensor_id":"s1"}' AS BLOB), 1)`)
	_ = db.Close()
	if err != nil {
		t.Fatalf("insert a version-2 outbox row: %v", err)
	}

	s := open(t, path) // applies the rest
	rows, err := s.OutboxPending(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].EventID != "ev-old" || string(rows[0].Payload) != `{"sensor_id":"s1"}` ||
		rows[0].SensorID != "" {
		t.Fatalf("OutboxPending = %+v; want the old row, sensor id empty", rows)
	}
}

// An outbox row written before the traceparent column (version 5) is
// still listed, with it empty: the relay publishes it untraced.
func TestOutboxRowFromBeforeTheTraceparentColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	p := provider(t, path)
	if _, err := p.UpTo(t.Context(), 5); err != nil {
		t.Fatalf("migrate to version 5: %v", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(t.Context(), `INSERT INTO outbox (event_id, test_id, subject, payload, sensor_id, created_at)
		VALUES ('ev-old', 't-old', 'sensorhub.events.co2.completed', CAST('{}' AS BLOB), 's1', 1)`)
	_ = db.Close()
	if err != nil {
		t.Fatalf("insert a version-5 outbox row: %v", err)
	}

	s := open(t, path) // applies the rest
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
	path := filepath.Join(t.TempDir(), "updown.db")
	p := provider(t, path)
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
