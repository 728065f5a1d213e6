package auth

import (
	"errors"
	"log/slog"
	"runtime"
	"time"

	"github.com/nats-io/nkeys"

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
	// KeysReplicas is the replication factor of the JWKS bucket (default
	// 1; 3 on a NATS cluster, so that the other roles' fallback keys
	// survive a lost node). Every copy of auth must be given the same.
	KeysReplicas int
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

	// Limits are the login rate limits (passwords over HTTP, `nats req`
	// and NATS connects share them).
	Limits LoginLimits
	// Callout, when set, makes the role the NATS server's auth callout:
	// people connect to NATS with their sensorhub identity.
	Callout *CalloutConfig

	// beforeLogin, when set by a test, runs in the login actor before the
	// credentials are checked (to inject a panic).
	beforeLogin func(username string)
}

// DefaultDatabaseCallTimeout is the deadline of each database call.
const DefaultDatabaseCallTimeout = 2 * time.Second

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
	if c.DatabaseBreaker.CallTimeout <= 0 {
		c.DatabaseBreaker.CallTimeout = DefaultDatabaseCallTimeout
	}
	c.Limits.setDefaults()
	if c.Callout != nil && c.Callout.UserTTL <= 0 {
		c.Callout.UserTTL = c.TokenTTL
	}
}

// CalloutConfig are the keys of the auth callout (see internal/natsauth).
type CalloutConfig struct {
	// Issuer is the account key pair named as the callout's issuer in the
	// server configuration; it signs the user claims.
	Issuer nkeys.KeyPair
	// XKey is the curve key pair named as the callout's xkey: requests
	// (with passwords) arrive sealed to it, replies leave sealed.
	XKey nkeys.KeyPair
	// UserTTL is how long a connection admitted by password lasts before
	// the server drops it and the client re-authenticates (default
	// TokenTTL), so that a disabled user is off the bus within it. A
	// connection admitted by token lasts until the token expires.
	UserTTL time.Duration
}

// Validate reports a configuration Start cannot use.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("auth: no Store")
	case c.KeyFile == "":
		return errors.New("auth: no KeyFile")
	case c.Callout != nil && (c.Callout.Issuer == nil || c.Callout.XKey == nil):
		return errors.New("auth: the callout needs its issuer and xkey")
	}
	return nil
}
