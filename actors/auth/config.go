package auth

import (
	"errors"
	"log/slog"
	"runtime"
	"time"

	"sensorhub/internal/breaker"
	"sensorhub/internal/store"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

// Config configures the auth role. Zero fields take the defaults.
type Config struct {
	Subjects messages.Subjects
	Store    store.Store
	// KeyFile is the Ed25519 private key (PKCS#8 PEM), created with mode
	// 0600 if missing. Every copy of auth must use the same key: the JWKS
	// published in JetStream KV holds that one key.
	KeyFile string
	// Issuer and Audience of the tokens (default "sensorhub" both).
	Issuer, Audience string
	// TokenTTL is the lifetime of a token (default 1h).
	TokenTTL time.Duration
	// DatabaseBreaker guards auth -> database ("auth.database").
	DatabaseBreaker breaker.Config
	// LoginWorkers is the number of login actors (bcrypt is slow on
	// purpose). Default runtime.GOMAXPROCS(0).
	LoginWorkers int
	// ValidateWorkers is the number of validate actors (default
	// runtime.GOMAXPROCS(0)).
	ValidateWorkers int
	// MaxPendingLogins bounds the logins queued or running; past it a login
	// is answered "overloaded" at once (default 16 per login worker).
	MaxPendingLogins int
	// MaxPendingValidations bounds the validations queued or running
	// (default 128 per validate worker).
	MaxPendingValidations int
	Logger                *slog.Logger
	// LogStacks adds panic stacks to the supervision log lines.
	LogStacks bool
	// OnGiveUp is passed to the role supervisor: it runs when an actor of
	// the role is stopped for good.
	OnGiveUp func(error)

	// beforeLogin, when set by a test, runs in the login actor before the
	// credentials are checked (to inject a panic).
	beforeLogin func(username string)
}

func (c *Config) setDefaults() {
	if c.Issuer == "" {
		c.Issuer = token.DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = token.DefaultAudience
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = token.DefaultTTL
	}
	if c.LoginWorkers <= 0 {
		c.LoginWorkers = runtime.GOMAXPROCS(0)
	}
	if c.ValidateWorkers <= 0 {
		c.ValidateWorkers = runtime.GOMAXPROCS(0)
	}
	if c.MaxPendingLogins <= 0 {
		c.MaxPendingLogins = 16 * c.LoginWorkers
	}
	if c.MaxPendingValidations <= 0 {
		c.MaxPendingValidations = 128 * c.ValidateWorkers
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration Start cannot use.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("auth: no Store")
	case c.KeyFile == "":
		return errors.New("auth: no KeyFile")
	}
	return nil
}
