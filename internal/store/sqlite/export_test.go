package sqlite

import (
	"context"
	"database/sql"
	"testing"
)

// HoldWriter keeps the writer connection in an open transaction from when
// it closes held until hold is closed.
func HoldWriter(t *testing.T, s *Store, held chan<- struct{}, hold <-chan struct{}) error {
	t.Helper()
	return s.inTx(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
		close(held)
		<-hold
		return nil
	})
}

// Synchronous is the writer connection's PRAGMA synchronous (2 = FULL).
func Synchronous(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.w.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
