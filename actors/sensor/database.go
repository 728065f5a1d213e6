package sensor

import (
	"context"
	"errors"
	"log/slog"

	"sensorhub/internal/breaker"
	"sensorhub/internal/health"
	"sensorhub/internal/store"
	"sensorhub/messages"
)

// database is the role's store behind its breaker ("sensor.database"),
// with the database's health entry: every store call of the role goes
// through dbCall, so the breaker and the health report see each outcome.
type database struct {
	store   store.Store
	breaker *breaker.Breaker
	state   *health.Dependency
	ctx     context.Context // ends at Stop
	log     *slog.Logger
}

// dbCall runs one store call under the database breaker and records the
// database's state.
func dbCall[T any](db *database, fn func(ctx context.Context) (T, error)) (T, error) {
	v, err := breaker.Call(db.ctx, db.breaker, fn)
	db.observe(err)
	return v, err
}

// observe records what a call says about the database: up when it
// answered, down on an outage; other errors (not found, conflicts, bad
// input) prove it up too.
func (db *database) observe(err error) {
	switch {
	case err == nil:
		db.state.Set(nil)
	case isDatabaseOutage(err):
		db.state.Set(err)
	}
}

// errorOf turns a store error into the error envelope a caller gets.
func (db *database) errorOf(err error, what string) *messages.Error {
	switch {
	case isDatabaseOutage(err), errors.Is(err, breaker.ErrOpen), errors.Is(err, store.ErrRetry):
		return messages.ErrDatabaseUnavailable
	case errors.Is(err, context.Canceled):
		return errStopping
	}
	db.log.Error("store call failed", "call", what, "err", err)
	return errInternal
}
