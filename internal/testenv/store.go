package testenv

import (
	"path/filepath"
	"testing"

	"sensorhub/internal/store"
	"sensorhub/internal/store/postgres"
	"sensorhub/internal/store/sqlite"
)

// SQLite opens a fresh SQLite store in a temporary directory, closed by
// t.Cleanup.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(Deadline(t), sqlite.Config{Path: filepath.Join(t.TempDir(), "sensorhub.db")})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// PostgresStore opens a store on a fresh PostgreSQL database (see
// Postgres: it skips, or fails under SENSORHUB_REQUIRE_POSTGRES, when none
// answers), closed by t.Cleanup.
func PostgresStore(t testing.TB) store.Store {
	t.Helper()
	st, err := postgres.Open(Deadline(t), postgres.Config{URL: Postgres(t), MaxConns: 4})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Stores are the two store kinds, for tests that run against both.
var Stores = []struct {
	Name string
	Open func(testing.TB) store.Store
}{
	{"sqlite", SQLite},
	{"postgres", PostgresStore},
}
