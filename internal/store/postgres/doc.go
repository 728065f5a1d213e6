// Package postgres is the PostgreSQL implementation of store.Store, built on
// pgx v5 (pgxpool). It owns the PostgreSQL schema (embedded goose migrations
// applied at Open under an advisory lock), the SQL of every Store method and
// the classification of pgx errors into the store sentinels (Classify).
//
// It must not retry on its own or hide an outage: a call that cannot reach
// the database returns an error wrapping store.ErrUnavailable within the
// caller's deadline (store.DefaultTimeout when the context has none), and the
// caller decides what to do.
package postgres
