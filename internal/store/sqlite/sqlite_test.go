package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"sensorhub/internal/store"
	"sensorhub/internal/store/sqlite"
	"sensorhub/internal/store/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "sensorhub.db"))
	})
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, ":memory:") })
}

// Reopening a file keeps its rows and does not re-run the migrations.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sensorhub.db")
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.UpsertUser(t.Context(), store.User{Username: "alice", PasswordHash: []byte("h")}); err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := open(t, path)
	if _, err := s2.GetUser(t.Context(), "alice"); err != nil {
		t.Fatalf("GetUser after reopen: %v", err)
	}
}

// Many concurrent writers queue for the single writer connection instead of
// failing with SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "sensorhub.db"))
	// Generous: the point is that no call fails with SQLITE_BUSY, not speed
	// (modernc under -race on a loaded machine is slow).
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const writers, each = 8, 20
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := fmt.Sprintf("user-%d-%d", w, i)
				if _, err := s.UpsertUser(ctx, store.User{Username: name, PasswordHash: []byte("h")}); err != nil {
					errs <- err
					return
				}
				if _, err := s.GetUser(ctx, name); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != writers*each {
		t.Fatalf("ListUsers = %d, %v; want %d", len(users), err, writers*each)
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	for _, path := range []string{"", "a?b.db", "a#b.db"} {
		if _, err := sqlite.Open(t.Context(), sqlite.Config{Path: path}); err == nil {
			t.Errorf("Open(%q): no error", path)
		}
	}
	// A directory that does not exist cannot hold the file: unavailable.
	_, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "missing", "x.db")})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open in a missing directory: got %v, want ErrUnavailable", err)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want error // nil: no sentinel
	}{
		{"nil", nil, nil},
		{"deadline", context.DeadlineExceeded, store.ErrUnavailable},
		{"canceled", context.Canceled, nil},
		{"already classified", fmt.Errorf("x: %w", store.ErrConflict), store.ErrConflict},
		{"other", errors.New("syntax error"), nil},
	}
	sentinels := []error{store.ErrUnavailable, store.ErrNotFound, store.ErrConflict, store.ErrRetry}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := sqlite.Classify(tc.err)
			if tc.err == nil {
				if got != nil {
					t.Fatalf("Classify(nil) = %v", got)
				}
				return
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("Classify lost the cause: %v", got)
			}
			for _, s := range sentinels {
				if errors.Is(got, s) != (s == tc.want) {
					t.Errorf("Classify(%v) = %v: errors.Is(%v) = %v", tc.err, got, s, !(s == tc.want))
				}
			}
		})
	}
}

// A write waiting for the writer connection gives up at its deadline with
// ErrUnavailable instead of hanging.
func TestWriterQueueHonoursDeadline(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "sensorhub.db"))
	hold := make(chan struct{})
	held := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- sqlite.HoldWriter(t, s, held, hold)
	}()
	<-held
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.UpsertUser(ctx, store.User{Username: "late", PasswordHash: []byte("h")})
	elapsed := time.Since(start)
	close(hold)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("write behind a held writer: got %v, want ErrUnavailable", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("write returned after %v, far past its 200ms deadline", elapsed)
	}
	if err := <-done; err != nil {
		t.Fatalf("holder: %v", err)
	}
}

// A closed store is a store that cannot serve: callers must see
// ErrUnavailable (503 and a breaker failure), not an internal error.
func TestClosedStoreIsUnavailable(t *testing.T) {
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "closed.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetUser(context.Background(), "x"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("GetUser on a closed store: %v, want ErrUnavailable", err)
	}
	if err := st.Ping(context.Background()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping on a closed store: %v, want ErrUnavailable", err)
	}
}

// A commit is on disk when it returns (synchronous=FULL): a 202 is never
// rolled back by a power loss.
func TestCommitsAreSynchronous(t *testing.T) {
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := sqlite.Synchronous(t, st); n != 2 {
		t.Fatalf("PRAGMA synchronous = %d, want 2 (FULL)", n)
	}
}
