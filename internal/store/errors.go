package store

import "errors"

// ErrUnavailable means the database could not be reached or refused service
// (connection refused or lost, shutting down, too many connections, acquire
// deadline passed). The request may succeed later; breakers count it.
var ErrUnavailable = errors.New("database unavailable")

// ErrNotFound means the row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict means a uniqueness or integrity constraint refused the write.
var ErrConflict = errors.New("conflict")

// ErrRetry means a serialization failure or deadlock: retry the transaction.
var ErrRetry = errors.New("transaction must be retried")
