package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxConns       int32 = 10
	DefaultMinConns       int32 = 2
	DefaultConnectTimeout       = 5 * time.Second
)

// Config configures Open.
type Config struct {
	// URL is a PostgreSQL connection URL or keyword/value string.
	URL string
	// MaxConns caps the pool (default 10).
	MaxConns int32
	// MinConns is kept open when the database is up (default 2).
	MinConns int32
	// ConnectTimeout bounds one connection attempt, so that a black-holed
	// network fails fast instead of hanging until the caller's deadline
	// (default 5s). A connect_timeout in URL takes precedence.
	ConnectTimeout time.Duration
	// Logger gets migration and lifecycle lines (default: discarded).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MinConns == 0 {
		c.MinConns = min(DefaultMinConns, c.MaxConns)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration Open cannot use.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("postgres: URL is empty")
	case c.MaxConns < 0 || c.MinConns < 0:
		return errors.New("postgres: MaxConns and MinConns must not be negative")
	case c.MaxConns > 0 && c.MinConns > c.MaxConns:
		return fmt.Errorf("postgres: MinConns %d exceeds MaxConns %d", c.MinConns, c.MaxConns)
	case c.ConnectTimeout < 0:
		return errors.New("postgres: ConnectTimeout must not be negative")
	}
	return nil
}

// poolConfig turns c (defaults applied) into a pgxpool configuration.
func (c Config) poolConfig() (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	pc.MaxConns = c.MaxConns
	pc.MinConns = c.MinConns
	// Without it a SYN into the void waits for the caller's whole deadline
	// (or forever, for the pool's background MinConns connections).
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	// Drop dead idle connections sooner than the 1 min default after an
	// outage, so the first calls after a recovery do not trip over them.
	pc.HealthCheckPeriod = 15 * time.Second
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "sensorhub"
	}
	return pc, nil
}
