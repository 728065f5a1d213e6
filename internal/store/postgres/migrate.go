package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockID is the pg_advisory_lock key that serializes migrations
// across processes ("sensorhb" in ASCII).
const migrationLockID int64 = 0x73656e736f726862

// migrateTimeout bounds migrating when Open's context has no deadline; it
// includes waiting for another process that holds the lock.
const migrateTimeout = 2 * time.Minute

// Migrations returns the embedded SQL migrations (goose format).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return sub
}

// migrate applies the pending migrations under the advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, migrateTimeout)
		defer cancel()
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, Migrations(),
		goose.WithSessionLocker(advisoryLocker{id: migrationLockID}),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.log),
	)
	if err != nil {
		return fmt.Errorf("create migration provider: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", Classify(err))
	}
	if len(results) > 0 {
		version, _ := provider.GetDBVersion(ctx)
		s.log.Info("postgres migrations applied", "count", len(results), "version", version)
	}
	return nil
}

// advisoryLocker is a goose session locker that blocks in pg_advisory_lock
// (bounded by ctx) instead of goose's polling pg_try_advisory_lock every few
// seconds, so a process waiting for another one's migrations proceeds as
// soon as they are done. The unlock has its own short bound: goose calls it
// with a context without deadline, and a dead network must not hang Open.
type advisoryLocker struct{ id int64 }

var _ lock.SessionLocker = advisoryLocker{}

func (l advisoryLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", l.id); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	return nil
}

func (l advisoryLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", l.id); err != nil {
		return fmt.Errorf("release migration lock: %w", err)
	}
	return nil
}
