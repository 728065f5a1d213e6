// Package sqlite is the embedded SQLite implementation of store.Store
// (modernc.org/sqlite, pure Go), used by `sensorhub dev` and in tests. It
// owns the SQLite schema (embedded goose migrations applied at Open), the
// SQL of every Store method and the classification of SQLite errors into
// the store sentinels (Classify).
//
// SQLite is single-process: the database file must not be shared by two
// sensorhub processes. Inside the process, every write goes through one
// connection in IMMEDIATE transactions, so concurrent callers queue in Go
// (bounded by their context) instead of failing with SQLITE_BUSY; reads use
// a separate read-only pool, which WAL lets run beside the writer.
package sqlite
