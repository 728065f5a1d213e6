package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"sensorhub/internal/store"
)

// Store is the SQLite store.Store. It is safe for concurrent use within one
// process.
type Store struct {
	w   *sql.DB // the single writer connection, IMMEDIATE transactions
	r   *sql.DB // read-only pool; the writer itself for ":memory:"
	log *slog.Logger
}

var _ store.Store = (*Store)(nil)

// Open opens (or creates) the database file, applies the embedded
// migrations and returns the store. ctx bounds the migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(cfg, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// One writer: SQLite allows one write transaction at a time anyway, and
	// queueing in database/sql honours each caller's context, where
	// competing connections would fail with SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, r: w, log: cfg.Logger}
	if !cfg.inMemory() {
		r, err := sql.Open("sqlite", dsn(cfg, true))
		if err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		r.SetMaxOpenConns(cfg.MaxReaders)
		r.SetMaxIdleConns(cfg.MaxReaders)
		s.r = r
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	return s, nil
}

// dsn builds the modernc DSN: the pragmas run on every new connection.
func dsn(cfg Config, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(cfg.BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	if !cfg.inMemory() {
		q.Add("_pragma", "journal_mode(WAL)")
		// Every commit is on disk before it returns: a 202 means the test
		// is stored, and NORMAL would let a power loss roll the last
		// commits back. The group commit pays one fsync per batch.
		q.Add("_pragma", "synchronous(FULL)")
	}
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return cfg.Path + "?" + q.Encode()
}

// Dialect returns "sqlite".
func (s *Store) Dialect() string { return "sqlite" }

// Ping checks that the writer and the readers answer.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", classify(ctx, err))
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", classify(ctx, err))
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	var err error
	if s.r != s.w {
		err = s.r.Close()
	}
	return errors.Join(err, s.w.Close())
}

// inTx runs fn in one IMMEDIATE transaction on the writer, bounded by ctx
// (or store.DefaultTimeout), and classifies its error.
func (s *Store) inTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(ctx, err)
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return classify(ctx, err)
	}
	return classify(ctx, tx.Commit())
}
