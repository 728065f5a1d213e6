package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"sensorhub/internal/store"
	"sensorhub/internal/store/postgres"
	"sensorhub/internal/store/storetest"
	"sensorhub/internal/testenv"
)

func open(t testing.TB, databaseURL string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, postgres.Config{URL: databaseURL, MaxConns: 4, MinConns: 1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, testenv.Postgres(t)) })
}

// Several processes starting at once migrate one database without racing:
// the advisory lock makes all but one wait, then find nothing to do.
func TestConcurrentOpen(t *testing.T) {
	databaseURL := testenv.Postgres(t)
	const n = 4
	stores := make(chan *postgres.Store, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s, err := postgres.Open(ctx, postgres.Config{URL: databaseURL, MaxConns: 2, MinConns: 1})
			if err != nil {
				errs <- err
				return
			}
			stores <- s
		}()
	}
	wg.Wait()
	close(errs)
	close(stores)
	for err := range errs {
		t.Errorf("concurrent Open: %v", err)
	}
	for s := range stores {
		if _, err := s.UpsertUser(t.Context(), store.User{Username: "u", PasswordHash: []byte("h")}); err != nil {
			t.Errorf("UpsertUser after concurrent Open: %v", err)
		}
		_ = s.Close()
	}
}

// A server that is not there fails Open at once with ErrUnavailable.
func TestOpenUnreachable(t *testing.T) {
	addr := closedPort(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, postgres.Config{URL: "postgres://postgres@" + addr + "/postgres?sslmode=disable"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open on a closed port: got %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Open returned only after its deadline")
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	cases := []postgres.Config{
		{},
		{URL: "postgres://x/y", MaxConns: 2, MinConns: 3},
		{URL: "postgres://x/y", ConnectTimeout: -time.Second},
		{URL: "::not a url::"},
	}
	for _, cfg := range cases {
		if _, err := postgres.Open(t.Context(), cfg); err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Open(%+v) = %v, want a configuration error", cfg, err)
		}
	}
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestClassify(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("exec: %w", &pgconn.PgError{Severity: "ERROR", Code: code, Message: "m"})
	}
	cases := []struct {
		name string
		err  error
		want error // nil: no sentinel
	}{
		{"unique violation", pg("23505"), store.ErrConflict},
		{"foreign key violation", pg("23503"), store.ErrConflict},
		{"check violation", pg("23514"), store.ErrConflict},
		{"serialization failure", pg("40001"), store.ErrRetry},
		{"deadlock", pg("40P01"), store.ErrRetry},
		{"connection exception", pg("08000"), store.ErrUnavailable},
		{"connection failure", pg("08006"), store.ErrUnavailable},
		{"cannot establish", pg("08001"), store.ErrUnavailable},
		{"admin shutdown", pg("57P01"), store.ErrUnavailable},
		{"crash shutdown", pg("57P02"), store.ErrUnavailable},
		{"cannot connect now", pg("57P03"), store.ErrUnavailable},
		{"too many connections", pg("53300"), store.ErrUnavailable},
		{"query canceled", pg("57014"), nil},
		{"invalid text representation", pg("22P02"), nil},
		{"division by zero", pg("22012"), nil},
		{"undefined table", pg("42P01"), nil},
		{"syntax error", pg("42601"), nil},
		{"no rows", fmt.Errorf("get: %w", pgx.ErrNoRows), store.ErrNotFound},
		{"deadline", context.DeadlineExceeded, store.ErrUnavailable},
		{"canceled", context.Canceled, nil},
		{"unexpected eof", fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), store.ErrUnavailable},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, store.ErrUnavailable},
		{"closed conn", pgconn.ErrConnClosed, store.ErrUnavailable},
		{"already classified", fmt.Errorf("x: %w", store.ErrRetry), store.ErrRetry},
		{"other", errors.New("boom"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertClass(t, postgres.Classify(tc.err), tc.err, tc.want)
		})
	}
	if postgres.Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
}

// A real connect error (nothing listens) is unavailable.
func TestClassifyConnectError(t *testing.T) {
	cfg, err := pgx.ParseConfig("postgres://postgres@" + closedPort(t) + "/postgres?sslmode=disable&connect_timeout=3")
	if err != nil {
		t.Fatal(err)
	}
	_, err = pgx.ConnectConfig(t.Context(), cfg)
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("connect to a closed port: %T %v, want *pgconn.ConnectError", err, err)
	}
	assertClass(t, postgres.Classify(err), err, store.ErrUnavailable)
}

func assertClass(t *testing.T, got, cause, want error) {
	t.Helper()
	if !errors.Is(got, cause) {
		t.Errorf("Classify lost the cause %v: %v", cause, got)
	}
	for _, s := range []error{store.ErrUnavailable, store.ErrNotFound, store.ErrConflict, store.ErrRetry} {
		if errors.Is(got, s) != (s == want) {
			t.Errorf("Classify(%v) = %v: errors.Is(err, %q) = %v, want %v", cause, got, s, !(s == want), s == want)
		}
	}
}

// throughProxy returns a fresh test database reached through a fault proxy.
func throughProxy(t *testing.T) (*postgres.Store, *testenv.Proxy) {
	t.Helper()
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.FaultProxy(t, u.Host)
	u.Host = proxy.Addr()
	s := open(t, u.String())
	if _, err := s.UpsertUser(t.Context(), store.User{Username: "alice", PasswordHash: []byte("h")}); err != nil {
		t.Fatalf("UpsertUser before the fault: %v", err)
	}
	return s, proxy
}

// calls are store calls that must each fail fast when the database is gone
// and work again when it is back.
func calls(s store.Store) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"GetUser": func(ctx context.Context) error { _, err := s.GetUser(ctx, "alice"); return err },
		"InsertTests": func(ctx context.Context) error {
			_, err := s.InsertTests(ctx, []store.NewTest{{
				ID: fmt.Sprintf("t-%d", time.Now().UnixNano()), Owner: "alice", SensorType: "temperature",
				SensorID: "s1", Request: []byte(`{}`), AuthMode: "online", LeaseUntil: time.Now().Add(time.Minute),
			}})
			return err
		},
		"OutboxBacklog": func(ctx context.Context) error { _, err := s.OutboxBacklog(ctx); return err },
	}
}

// The database is cut off: every call returns ErrUnavailable within the
// caller's deadline; once it is back the same Store serves again.
func TestFaultCut(t *testing.T) {
	s, proxy := throughProxy(t)

	proxy.Cut()
	for name, call := range calls(s) {
		t.Run("cut/"+name, func(t *testing.T) { assertUnavailableWithin(t, call, 3*time.Second) })
	}

	proxy.Restore()
	for name, call := range calls(s) {
		t.Run("restored/"+name, func(t *testing.T) { eventually(t, call) })
	}
	if _, err := s.GetUser(t.Context(), "alice"); err != nil {
		t.Errorf("GetUser after restore: %v", err)
	}
}

// The database stops answering (a black hole, simulated by a latency far
// past the deadline): calls give up at their deadline with ErrUnavailable
// instead of hanging.
func TestFaultBlackHole(t *testing.T) {
	testenv.SkipIfShort(t) // a failure drill: the full suite runs it
	s, proxy := throughProxy(t)
	proxy.Latency(5 * time.Minute)
	for name, call := range calls(s) {
		t.Run("slow/"+name, func(t *testing.T) { assertUnavailableWithin(t, call, time.Second) })
	}
	proxy.Latency(0)
	for name, call := range calls(s) {
		t.Run("restored/"+name, func(t *testing.T) { eventually(t, call) })
	}
}

// assertUnavailableWithin runs call with deadline d and checks that it
// failed with ErrUnavailable and came back around the deadline, not later.
func assertUnavailableWithin(t *testing.T, call func(context.Context) error, d time.Duration) {
	t.Helper()
	// Generous: a loaded 2-core machine running -race can starve a timer
	// for seconds; a hang would still overshoot by minutes.
	const slack = 20 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	start := time.Now()
	err := call(ctx)
	elapsed := time.Since(start)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
	t.Logf("returned after %v: %v", elapsed, err)
	if elapsed > d+slack {
		t.Errorf("returned after %v, past the %v deadline (+%v slack)", elapsed, d, slack)
	}
}

// eventually retries call until it succeeds: the first calls after an
// outage may still meet a pooled connection that died with it.
func eventually(t *testing.T, call func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err = call(ctx)
		cancel()
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("after restore: %v (not ErrUnavailable)", err)
		}
		select {
		case <-t.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("still failing 30s after restore: %v", err)
}
