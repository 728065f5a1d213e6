package sqlite

import (
	"errors"
	"log/slog"
	"strings"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultBusyTimeout = 5 * time.Second
	DefaultMaxReaders  = 4
)

// Config configures Open.
type Config struct {
	// Path is the database file, created if missing. ":memory:" gives a
	// private in-memory database (one connection, lost on Close).
	Path string
	// BusyTimeout is how long SQLite waits for a lock held by another
	// connection (a checkpoint, a reader) before SQLITE_BUSY (default 5s).
	BusyTimeout time.Duration
	// MaxReaders caps the read-only pool (default 4).
	MaxReaders int
	// Logger gets migration and lifecycle lines (default: discarded).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.BusyTimeout == 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	if c.MaxReaders == 0 {
		c.MaxReaders = DefaultMaxReaders
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration Open cannot use.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("sqlite: Path is empty")
	case strings.ContainsAny(c.Path, "?#"):
		return errors.New("sqlite: Path must not contain '?' or '#'")
	case c.BusyTimeout < 0 || c.MaxReaders < 0:
		return errors.New("sqlite: BusyTimeout and MaxReaders must not be negative")
	}
	return nil
}

func (c Config) inMemory() bool { return c.Path == ":memory:" }
