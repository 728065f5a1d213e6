package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"sensorhub/internal/store"
	"sensorhub/internal/store/postgres"
	"sensorhub/internal/store/sqlite"
)

// OpenStore opens the database named by url and applies the migrations:
// postgres://... or postgresql://... is PostgreSQL; sqlite:PATH (or
// sqlite://PATH) is an SQLite file.
func OpenStore(ctx context.Context, url string, logger *slog.Logger) (store.Store, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		st, err := postgres.Open(ctx, postgres.Config{URL: url, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		return st, nil
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
		if path == "" {
			return nil, errors.New("sqlite URL without a path: want sqlite:PATH")
		}
		st, err := sqlite.Open(ctx, sqlite.Config{Path: path, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		return st, nil
	case url == "":
		return nil, errors.New("no database URL: give --database-url (postgres://... or sqlite:PATH)")
	}
	return nil, fmt.Errorf("unsupported database URL %q: want postgres://... or sqlite:PATH", redact(url))
}

// storeRetryEvery is the pause between attempts to reach a database that
// is down when a role starts.
const storeRetryEvery = 2 * time.Second

// openStoreWaiting opens the store, waiting for a database that is
// unavailable at start (a role that starts before its database must not
// crash-loop): it retries until the database answers or ctx ends. Any
// other error (a bad URL, a failed migration) is returned at once.
func openStoreWaiting(ctx context.Context, url string, logger *slog.Logger) (store.Store, error) {
	warned := false
	for {
		st, err := OpenStore(ctx, url, logger)
		if err == nil {
			if warned {
				logger.Info("database reachable; starting")
			}
			return st, nil
		}
		if !errors.Is(err, store.ErrUnavailable) {
			return nil, err
		}
		if !warned {
			logger.Warn("database unavailable at start; retrying until it answers", "every", storeRetryEvery.String(), "err", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the database: %w", err)
		case <-time.After(storeRetryEvery):
		}
	}
}

// redact hides a password in a URL for messages.
func redact(url string) string {
	if at := strings.LastIndexByte(url, '@'); at > 0 {
		if scheme := strings.Index(url, "://"); scheme > 0 && scheme < at {
			return url[:scheme+3] + "***" + url[at:]
		}
	}
	return url
}

// Migrate opens the database (which applies the migrations) and closes it.
func Migrate(ctx context.Context, url string, logger *slog.Logger) error {
	st, err := OpenStore(ctx, url, logger)
	if err != nil {
		return err
	}
	logger.Info("migrations applied", "dialect", st.Dialect())
	return st.Close()
}
