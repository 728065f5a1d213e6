package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"sensorhub/internal/store"
)

// Classify maps a database/sql or SQLite error to the store sentinels,
// keeping the cause:
//
//   - SQLITE_CONSTRAINT wraps store.ErrConflict;
//   - SQLITE_BUSY (a lock held past busy_timeout), I/O, full disk, cannot
//     open, out of memory, a closed connection and a passed deadline
//     (waiting for the writer) wrap store.ErrUnavailable;
//   - SQLITE_LOCKED wraps store.ErrRetry;
//   - sql.ErrNoRows wraps store.ErrNotFound.
//
// Everything else (syntax, types, context.Canceled) is returned unchanged.
// An error that already wraps a store sentinel is returned unchanged.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{store.ErrUnavailable, store.ErrNotFound, store.ErrConflict, store.ErrRetry} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return wrap(store.ErrNotFound, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary result code of an extended one
		case sqlite3.SQLITE_CONSTRAINT:
			return wrap(store.ErrConflict, err)
		case sqlite3.SQLITE_LOCKED:
			return wrap(store.ErrRetry, err)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_READONLY:
			return wrap(store.ErrUnavailable, err)
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sql.ErrConnDone) ||
		err.Error() == "sql: database is closed" { // database/sql keeps that sentinel unexported
		return wrap(store.ErrUnavailable, err)
	}
	return err
}

// classify is Classify for an error of a call made with ctx: SQLite reports
// an interrupted statement without saying why, so the context's own error is
// added to the chain first.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	return Classify(err)
}

func wrap(sentinel, err error) error {
	return fmt.Errorf("%w: %w", sentinel, err)
}
