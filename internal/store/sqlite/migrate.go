package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateTimeout bounds migrating when Open's context has no deadline.
const migrateTimeout = time.Minute

// Migrations returns the embedded SQL migrations (goose format).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return sub
}

// migrate applies the pending migrations on the writer connection. No lock
// is needed beyond SQLite's own: one process owns the file, and its single
// writer connection serializes everything.
func (s *Store) migrate(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, migrateTimeout)
		defer cancel()
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, s.w, Migrations(),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.log),
	)
	if err != nil {
		return fmt.Errorf("create migration provider: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", classify(ctx, err))
	}
	if len(results) > 0 {
		version, _ := provider.GetDBVersion(ctx)
		s.log.Info("sqlite migrations applied", "count", len(results), "version", version)
	}
	return nil
}
