package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"sensorhub/messages"
)

// VerifierConfig configures a Verifier. Zero fields take the defaults.
type VerifierConfig struct {
	Issuer   string        // required iss, default DefaultIssuer
	Audience string        // required in aud, default DefaultAudience
	Leeway   time.Duration // clock skew allowed on exp, nbf and iat, default DefaultLeeway
}

func (c *VerifierConfig) setDefaults() {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.Leeway <= 0 {
		c.Leeway = DefaultLeeway
	}
}

// Verifier checks tokens against a fixed key set. It is immutable and safe
// for concurrent use.
type Verifier struct {
	keys map[string]ed25519.PublicKey
	cfg  VerifierConfig
}

// NewVerifier builds a verifier from a JWKS. Keys that are not Ed25519
// signing keys (another kty or crv, use other than "sig", alg other than
// EdDSA) are skipped, as RFC 7517 allows; an Ed25519 key without a kid or
// with a malformed x is an error, and so is a set without any usable key
// (ErrNoKeys).
func NewVerifier(jwks messages.JWKS, cfg VerifierConfig) (*Verifier, error) {
	cfg.setDefaults()
	keys := make(map[string]ed25519.PublicKey, len(jwks.Keys))
	for _, k := range jwks.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != Algorithm) {
			continue
		}
		if k.Kid == "" {
			return nil, errors.New("new verifier: Ed25519 key without kid")
		}
		x, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("new verifier: key %q: malformed x", k.Kid)
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("new verifier: %w", ErrNoKeys)
	}
	return &Verifier{keys: keys, cfg: cfg}, nil
}

// KeyIDs lists the kids the verifier trusts, sorted.
func (v *Verifier) KeyIDs() []string {
	out := make([]string, 0, len(v.keys))
	for kid := range v.keys {
		out = append(out, kid)
	}
	sort.Strings(out)
	return out
}

// Verify checks tok at time now and returns its claims. A token that is
// not acceptable returns an error matching ErrInvalidToken, or
// ErrExpiredToken when its only fault is being past exp (plus the leeway).
func (v *Verifier) Verify(tok string, now time.Time) (Claims, error) {
	if tok == "" {
		return Claims{}, fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	if len(tok) > messages.MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, messages.MaxTokenLen)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithIssuedAt(),
		// Canonical base64 only: otherwise the spare bits of the last
		// character make several strings carry one signature.
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	var claims Claims
	_, err := parser.ParseWithClaims(tok, &claims, v.keyFor)
	switch {
	case err == nil:
	case onlyExpired(err):
		return Claims{}, fmt.Errorf("%w: %w", ErrExpiredToken, err)
	default:
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.Subject == "" {
		return Claims{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return claims, nil
}

func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("no kid in the header")
	}
	key, ok := v.keys[kid]
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", boundKid(kid))
	}
	return key, nil
}

func boundKid(kid string) string {
	if len(kid) > 32 {
		return kid[:32] + "..."
	}
	return kid
}

// onlyExpired reports whether err says the token is expired and nothing
// else. The parser validates claims only after the signature, so such a
// token is ours and was good once.
func onlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenSignatureInvalid, jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable,
		jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience, jwt.ErrTokenNotValidYet,
		jwt.ErrTokenUsedBeforeIssued, jwt.ErrTokenRequiredClaimMissing, jwt.ErrInvalidType,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}
