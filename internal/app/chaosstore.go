package app

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"sensorhub/internal/store"
)

// cutStore is dev's database switch for SQLite, which has no socket to put
// a fault proxy on: while cut, every call fails at once as a database that
// refuses connections does (store.ErrUnavailable, what the PostgreSQL
// store returns for a connection refused or reset), so the roles answer
// 503 database_unavailable, their health shows the database down and their
// breakers open, exactly as with PostgreSQL behind a cut proxy. A call
// already running when the cut comes finishes, as a statement the server
// had already received would. Close is never cut.
type cutStore struct {
	st  store.Store
	cut atomic.Bool
}

// errCut is what a call on a cut store returns.
var errCut = fmt.Errorf("sqlite cut by dev --chaos (database stopped): %w", store.ErrUnavailable)

func (s *cutStore) check() error {
	if s.cut.Load() {
		return errCut
	}
	return nil
}

func (s *cutStore) Dialect() string { return s.st.Dialect() }
func (s *cutStore) Close() error    { return s.st.Close() }

func (s *cutStore) Ping(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.st.Ping(ctx)
}

func (s *cutStore) UpsertUser(ctx context.Context, u store.User) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	return s.st.UpsertUser(ctx, u)
}

func (s *cutStore) GetUser(ctx context.Context, username string) (store.User, error) {
	if err := s.check(); err != nil {
		return store.User{}, err
	}
	return s.st.GetUser(ctx, username)
}

func (s *cutStore) ListUsers(ctx context.Context) ([]store.User, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.st.ListUsers(ctx)
}

func (s *cutStore) SetUserDisabled(ctx context.Context, username string, disabled bool) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.st.SetUserDisabled(ctx, username, disabled)
}

func (s *cutStore) DeleteUser(ctx context.Context, username string) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.st.DeleteUser(ctx, username)
}

func (s *cutStore) ListDefaultPasswordUsers(ctx context.Context) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.st.ListDefaultPasswordUsers(ctx)
}

func (s *cutStore) ListUncheckedPasswords(ctx context.Context) ([]store.User, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.st.ListUncheckedPasswords(ctx)
}

func (s *cutStore) RecordDefaultPassword(ctx context.Context, username string, hash []byte, isDefault bool) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	return s.st.RecordDefaultPassword(ctx, username, hash, isDefault)
}

func (s *cutStore) InsertTests(ctx context.Context, tests []store.NewTest) ([]store.InsertResult, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.st.InsertTests(ctx, tests)
}

func (s *cutStore) GetTest(ctx context.Context, id string) (store.Test, error) {
	if err := s.check(); err != nil {
		return store.Test{}, err
	}
	return s.st.GetTest(ctx, id)
}

func (s *cutStore) CompleteTests(ctx context.Context, cs []store.Completion) ([]bool, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.st.CompleteTests(ctx, cs)
}

func (s *cutStore) ClaimExpired(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Test, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.st.ClaimExpired(ctx, now, lease, limit)
}

func (s *cutStore) BeginAttempts(ctx context.Context, ids []string, until time.Time) ([]int, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.st.BeginAttempts(ctx, ids, until)
}

func (s *cutStore) RenewLeases(ctx context.Context, ids []string, until time.Time) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	return s.st.RenewLeases(ctx, ids, until)
}

func (s *cutStore) CountTests(ctx context.Context) (map[string]int64, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.st.CountTests(ctx)
}

func (s *cutStore) OutboxPending(ctx context.Context, limit int) ([]store.OutboxRow, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.st.OutboxPending(ctx, limit)
}

func (s *cutStore) DeleteOutbox(ctx context.Context, seqs []int64) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.st.DeleteOutbox(ctx, seqs)
}

func (s *cutStore) OutboxBacklog(ctx context.Context) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	return s.st.OutboxBacklog(ctx)
}
