package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by Postgres (test code may read them; nothing
// below cmd/ does otherwise).
const (
	// EnvPostgresURL is the admin URL of the server that hosts the test
	// databases.
	EnvPostgresURL = "SENSORHUB_TEST_DATABASE_URL"
	// EnvRequirePostgres=1 turns a missing server from a skip into a
	// failure (CI sets it).
	EnvRequirePostgres = "SENSORHUB_REQUIRE_POSTGRES"
)

// DefaultPostgresAdminURL is used when EnvPostgresURL is not set: the
// machine's own PostgreSQL with trust auth.
const DefaultPostgresAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// postgresConnectTimeout bounds each connection to the admin database, so
// an absent server costs a test at most this long.
const postgresConnectTimeout = 3 * time.Second

// TestDatabasePrefix starts the name of every database Postgres creates.
const TestDatabasePrefix = "sensorhub_test_"

var (
	probeMu sync.Mutex
	// unreachable remembers that the server did not answer, so the next
	// tests of this process skip at once instead of waiting again.
	unreachable error
)

// PostgresAdminURL returns the admin URL of the test server: the
// environment's EnvPostgresURL or DefaultPostgresAdminURL.
func PostgresAdminURL() string {
	if u := os.Getenv(EnvPostgresURL); u != "" {
		return u
	}
	return DefaultPostgresAdminURL
}

// Postgres creates a fresh, empty database on the test server and returns a
// URL to it; t.Cleanup drops it (with its connections). When no server
// answers within a few seconds, the test is skipped with the reason, or
// fails if EnvRequirePostgres=1.
func Postgres(t testing.TB) (databaseURL string) {
	t.Helper()
	admin := PostgresAdminURL()
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testenv: %s must be a postgres:// URL, got %q", EnvPostgresURL, redact(admin))
	}

	name := TestDatabasePrefix + randomHex(8)
	conn, err := adminConn(admin)
	if err != nil {
		unavailable(t, admin, err)
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer conn.Close(ctx)
	if err := createDatabase(ctx, conn, name); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(admin, name); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// adminConn connects to the admin database, remembering a failure.
func adminConn(admin string) (*pgx.Conn, error) {
	probeMu.Lock()
	err := unreachable
	probeMu.Unlock()
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		return nil, fmt.Errorf("parse admin url: %w", err)
	}
	cfg.ConnectTimeout = postgresConnectTimeout
	ctx, cancel := context.WithTimeout(context.Background(), postgresConnectTimeout+time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		probeMu.Lock()
		unreachable = err
		probeMu.Unlock()
		return nil, err
	}
	return conn, nil
}

// unavailable skips (or fails, when required) a test that has no server.
func unavailable(t testing.TB, admin string, err error) {
	t.Helper()
	msg := fmt.Sprintf("testenv: no PostgreSQL at %s (%v); set %s to a server's admin URL",
		redact(admin), err, EnvPostgresURL)
	if os.Getenv(EnvRequirePostgres) == "1" {
		t.Fatalf("%s (%s=1 requires it)", msg, EnvRequirePostgres)
	}
	t.Skipf("%s, or %s=1 to fail instead of skipping", msg, EnvRequirePostgres)
}

func createDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	var err error
	// Concurrent CREATE DATABASE from template1 can fail with 55006 while
	// another session is connected to the template; it passes on a retry.
	for attempt := 0; attempt < 5; attempt++ {
		if _, err = conn.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "55006") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return err
}

// dropDatabase drops name, terminating whatever is still connected to it.
func dropDatabase(admin, name string) error {
	conn, err := adminConn(admin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// redact hides a password in a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
