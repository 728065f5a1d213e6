package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"sensorhub/internal/store"
)

// Classify maps a pgx error to the store sentinels, keeping the cause:
//
//   - cannot connect (*pgconn.ConnectError), SQLSTATE class 08, 57P01-57P03
//     (shutdown, crash, starting up), 53300 (too many connections), the
//     deadline passing while acquiring or talking, and network errors wrap
//     store.ErrUnavailable (after a deadline mid-write the outcome is
//     unknown: InsertTests is safe to retry with the same idempotency keys,
//     CompleteTests with the same completions);
//   - class 23 (integrity constraint violation, 23505 unique_violation
//     first) wraps store.ErrConflict;
//   - 40001 (serialization failure) and 40P01 (deadlock) wrap store.ErrRetry;
//   - pgx.ErrNoRows wraps store.ErrNotFound.
//
// Everything else is returned unchanged: 57014 (query cancelled), class 22
// and 42 are bad input or our bug, not an outage, and context.Canceled means
// the caller gave up. An error that already wraps a store sentinel is
// returned unchanged. Classify(nil) is nil.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{store.ErrUnavailable, store.ErrNotFound, store.ErrConflict, store.ErrRetry} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return wrap(store.ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if sentinel := classifySQLState(pgErr.Code); sentinel != nil {
			return wrap(sentinel, err)
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		// Refused, unreachable, or the server refused us (auth, no such
		// database): either way the database does not serve us now.
		return wrap(store.ErrUnavailable, err)
	}
	if pgErr != nil {
		return err
	}
	if isNetworkError(err) {
		return wrap(store.ErrUnavailable, err)
	}
	return err
}

// classifySQLState returns the sentinel for a SQLSTATE, or nil.
func classifySQLState(code string) error {
	switch code {
	case "40001", "40P01":
		return store.ErrRetry
	case "57P01", "57P02", "57P03", "53300":
		return store.ErrUnavailable
	}
	if len(code) == 5 {
		switch code[:2] {
		case "08":
			return store.ErrUnavailable
		case "23":
			return store.ErrConflict
		}
	}
	return nil
}

// isNetworkError reports a deadline or a broken or refused connection.
func isNetworkError(err error) bool {
	var netErr net.Error
	return pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed)
}

func wrap(sentinel, err error) error {
	return fmt.Errorf("%w: %w", sentinel, err)
}
