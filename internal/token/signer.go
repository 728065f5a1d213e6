package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"sensorhub/messages"
)

// Defaults of SignerConfig and VerifierConfig.
const (
	DefaultIssuer   = "sensorhub"
	DefaultAudience = "sensorhub"
	DefaultTTL      = time.Hour
	DefaultLeeway   = 5 * time.Second
)

// Algorithm is the only JWS algorithm sensorhub signs and accepts.
const Algorithm = "EdDSA"

// Claims are the claims of a sensorhub access token: the registered ones
// (iss, aud, sub, exp, iat, nbf, jti) and the user's roles.
type Claims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles,omitempty"`
}

// SignerConfig configures a Signer. Zero fields take the defaults.
type SignerConfig struct {
	Issuer   string        // iss, default DefaultIssuer
	Audience string        // aud, default DefaultAudience
	TTL      time.Duration // exp - iat, default DefaultTTL
}

func (c *SignerConfig) setDefaults() {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
}

// Signer issues access tokens with one Ed25519 key. It is safe for
// concurrent use.
type Signer struct {
	key ed25519.PrivateKey
	pub ed25519.PublicKey
	kid string
	cfg SignerConfig
}

// NewSigner returns a signer for key.
func NewSigner(key ed25519.PrivateKey, cfg SignerConfig) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("new signer: ed25519 private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	cfg.setDefaults()
	pub, _ := key.Public().(ed25519.PublicKey)
	return &Signer{key: key, pub: pub, kid: KeyID(pub), cfg: cfg}, nil
}

// KeyID is the kid in the header of every token this signer issues.
func (s *Signer) KeyID() string { return s.kid }

// TTL is the lifetime of the tokens it issues.
func (s *Signer) TTL() time.Duration { return s.cfg.TTL }

// Config returns the configuration with defaults applied.
func (s *Signer) Config() SignerConfig { return s.cfg }

// Issue signs a token for subject with roles, valid from now for the TTL.
// The claims are returned as signed (times at second precision).
func (s *Signer) Issue(subject string, roles []string, now time.Time) (string, Claims, error) {
	if subject == "" {
		return "", Claims{}, errors.New("issue token: empty subject")
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue token: jti: %w", err)
	}
	now = now.Truncate(time.Second)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.TTL)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        id.String(),
		},
		Roles: append([]string(nil), roles...),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue token: sign: %w", err)
	}
	return signed, claims, nil
}

// JWKS is the key set that verifies this signer's tokens.
func (s *Signer) JWKS() messages.JWKS {
	return messages.JWKS{Keys: []messages.JWK{PublicJWK(s.pub)}}
}

// PublicJWK describes an Ed25519 public key as a JWK (RFC 8037).
func PublicJWK(pub ed25519.PublicKey) messages.JWK {
	return messages.JWK{
		Kty: "OKP",
		Crv: "Ed25519",
		X:   base64.RawURLEncoding.EncodeToString(pub),
		Kid: KeyID(pub),
		Alg: Algorithm,
		Use: "sig",
	}
}
