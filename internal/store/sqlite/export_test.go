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
