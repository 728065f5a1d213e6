package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"sensorhub/internal/store"
)

// Store is the PostgreSQL store.Store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

var _ store.Store = (*Store)(nil)

// Open connects a pool, pings the server and applies the embedded migrations
// under a PostgreSQL advisory lock, so that several processes starting at
// once do not race. The ping is bounded by ctx, or store.DefaultTimeout when
// ctx has no deadline; a server that does not answer yields an error
// wrapping store.ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := cfg.poolConfig()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("create postgres pool: %w", err)
	}
	s := &Store{pool: pool, log: cfg.Logger}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return s, nil
}

// Dialect returns "postgres".
func (s *Store) Dialect() string { return "postgres" }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", Classify(err))
	}
	return nil
}

// Close closes the pool; it waits for acquired connections to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// inTx runs fn in one transaction bounded by ctx (or store.DefaultTimeout)
// and classifies its error. begin is the statement that begins it ("" for
// a plain BEGIN).
func (s *Store) inTx(ctx context.Context, begin string, fn func(context.Context, pgx.Tx) error) error {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	opts := pgx.TxOptions{BeginQuery: begin}
	return Classify(pgx.BeginTxFunc(ctx, s.pool, opts, func(tx pgx.Tx) error { return fn(ctx, tx) }))
}
