package token_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"sensorhub/internal/token"
	"sensorhub/messages"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newSigner(t testing.TB, key ed25519.PrivateKey) *token.Signer {
	t.Helper()
	s, err := token.NewSigner(key, token.SignerConfig{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newVerifier(t testing.TB, jwks messages.JWKS) *token.Verifier {
	t.Helper()
	v, err := token.NewVerifier(jwks, token.VerifierConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// goodClaims are claims that would verify if signed by the right key.
func goodClaims() token.Claims {
	return token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    token.DefaultIssuer,
			Audience:  jwt.ClaimStrings{token.DefaultAudience},
			Subject:   "alice",
			ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
			IssuedAt:  jwt.NewNumericDate(t0),
			NotBefore: jwt.NewNumericDate(t0),
			ID:        "jti-1",
		},
		Roles: []string{"user"},
	}
}

// sign signs arbitrary claims with method and key, with kid when not empty.
func sign(t testing.TB, method jwt.SigningMethod, claims jwt.Claims, kid string, key any) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flipClaim re-encodes the payload of tok with sub changed, keeping the
// original header and signature.
func flipClaim(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(payload), `"sub":"alice"`, `"sub":"admin"`, 1)
	if changed == string(payload) {
		t.Fatalf("payload has no sub alice: %s", payload)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(changed))
	return strings.Join(parts, ".")
}

func TestVerify(t *testing.T) {
	key := newKey(t)
	signer := newSigner(t, key)
	v := newVerifier(t, signer.JWKS())
	good, issued, err := signer.Issue("alice", []string{"user", "admin"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	kid := signer.KeyID()
	other := newKey(t)

	without := func(f func(*token.Claims)) token.Claims {
		c := goodClaims()
		f(&c)
		return c
	}
	noExp := without(func(c *token.Claims) { c.ExpiresAt = nil })
	wrongIss := without(func(c *token.Claims) { c.Issuer = "evil" })
	wrongAud := without(func(c *token.Claims) { c.Audience = jwt.ClaimStrings{"other"} })
	noSub := without(func(c *token.Claims) { c.Subject = "" })
	future := without(func(c *token.Claims) {
		c.NotBefore = jwt.NewNumericDate(t0.Add(time.Minute))
		c.IssuedAt = jwt.NewNumericDate(t0.Add(time.Minute))
	})
	// The last base64 character of an Ed25519 signature has 4 spare bits.
	lastChar := good[len(good)-1]
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	idx := strings.IndexByte(alphabet, lastChar)
	nonCanonical := good[:len(good)-1] + string(alphabet[idx^1])

	tests := []struct {
		name    string
		tok     string
		now     time.Time
		wantErr error // nil: verifies
	}{
		{"good", good, t0.Add(time.Minute), nil},
		{"good within leeway after exp", good, t0.Add(time.Hour + 4*time.Second), nil},
		{"good within leeway before nbf", good, t0.Add(-4 * time.Second), nil},
		{"alg none", sign(t, jwt.SigningMethodNone, goodClaims(), kid, jwt.UnsafeAllowNoneSignatureType), t0, token.ErrInvalidToken},
		{"HS256 with the public key as secret", sign(t, jwt.SigningMethodHS256, goodClaims(), kid, []byte(pub)), t0, token.ErrInvalidToken},
		{"HS256 with the JWK x as secret", sign(t, jwt.SigningMethodHS256, goodClaims(), kid, []byte(signer.JWKS().Keys[0].X)), t0, token.ErrInvalidToken},
		{"unknown kid", sign(t, jwt.SigningMethodEdDSA, goodClaims(), "nope", key), t0, token.ErrInvalidToken},
		{"missing kid", sign(t, jwt.SigningMethodEdDSA, goodClaims(), "", key), t0, token.ErrInvalidToken},
		{"expired beyond leeway", good, t0.Add(time.Hour + 6*time.Second), token.ErrExpiredToken},
		{"not valid yet", sign(t, jwt.SigningMethodEdDSA, future, kid, key), t0, token.ErrInvalidToken},
		{"missing exp", sign(t, jwt.SigningMethodEdDSA, noExp, kid, key), t0, token.ErrInvalidToken},
		{"wrong issuer", sign(t, jwt.SigningMethodEdDSA, wrongIss, kid, key), t0, token.ErrInvalidToken},
		{"wrong audience", sign(t, jwt.SigningMethodEdDSA, wrongAud, kid, key), t0, token.ErrInvalidToken},
		{"wrong issuer and expired", sign(t, jwt.SigningMethodEdDSA, wrongIss, kid, key), t0.Add(2 * time.Hour), token.ErrInvalidToken},
		{"no subject", sign(t, jwt.SigningMethodEdDSA, noSub, kid, key), t0, token.ErrInvalidToken},
		{"tampered payload", flipClaim(t, good), t0, token.ErrInvalidToken},
		{"another key with the same kid", sign(t, jwt.SigningMethodEdDSA, goodClaims(), kid, other), t0, token.ErrInvalidToken},
		{"another key, expired", sign(t, jwt.SigningMethodEdDSA, goodClaims(), kid, other), t0.Add(2 * time.Hour), token.ErrInvalidToken},
		{"non-canonical base64 signature", nonCanonical, t0, token.ErrInvalidToken},
		{"signature stripped", good[:strings.LastIndexByte(good, '.')+1], t0, token.ErrInvalidToken},
		{"empty", "", t0, token.ErrInvalidToken},
		{"garbage", "not a token", t0, token.ErrInvalidToken},
		{"three dots of garbage", "a.b.c", t0, token.ErrInvalidToken},
		{"json instead of base64", `{"alg":"none"}.{}.`, t0, token.ErrInvalidToken},
		{"oversize", good + "." + strings.Repeat("A", messages.MaxTokenLen), t0, token.ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := v.Verify(tc.tok, tc.now)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims.Subject != "alice" || claims.ID != issued.ID || claims.ID == "" {
					t.Errorf("claims = %+v, want sub alice and jti %s", claims, issued.ID)
				}
				if len(claims.Roles) != 2 || claims.Roles[0] != "user" || claims.Roles[1] != "admin" {
					t.Errorf("roles = %v", claims.Roles)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
			}
			// The two sentinels never both match: callers switch on them.
			if errors.Is(err, token.ErrInvalidToken) && errors.Is(err, token.ErrExpiredToken) {
				t.Errorf("error %v matches both sentinels", err)
			}
		})
	}
}

func TestIssueClaims(t *testing.T) {
	signer := newSigner(t, newKey(t))
	tok, c, err := signer.Issue("bob", nil, t0.Add(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != token.DefaultIssuer || len(c.Audience) != 1 || c.Audience[0] != token.DefaultAudience {
		t.Errorf("iss/aud = %q/%v", c.Issuer, c.Audience)
	}
	if !c.IssuedAt.Equal(t0) || !c.NotBefore.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("times iat=%v nbf=%v exp=%v", c.IssuedAt, c.NotBefore, c.ExpiresAt)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &token.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["alg"] != "EdDSA" || parsed.Header["kid"] != signer.KeyID() {
		t.Errorf("header = %v", parsed.Header)
	}
	if _, _, err := signer.Issue("", nil, t0); err == nil {
		t.Error("Issue with empty subject succeeded")
	}
	_, c2, _ := signer.Issue("bob", nil, t0)
	if c2.ID == c.ID {
		t.Error("two tokens share a jti")
	}
}

func TestJWKS(t *testing.T) {
	key := newKey(t)
	signer := newSigner(t, key)
	jwks := signer.JWKS()
	if len(jwks.Keys) != 1 {
		t.Fatalf("keys = %d", len(jwks.Keys))
	}
	k := jwks.Keys[0]
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || !ed25519.PublicKey(x).Equal(key.Public()) {
		t.Errorf("x does not decode to the public key: %v", err)
	}
	want := messages.JWK{Kty: "OKP", Crv: "Ed25519", X: k.X, Kid: signer.KeyID(), Alg: "EdDSA", Use: "sig"}
	if k != want {
		t.Errorf("jwk = %+v, want %+v", k, want)
	}
	if token.KeyID(newKey(t).Public().(ed25519.PublicKey)) == signer.KeyID() {
		t.Error("two keys share a kid")
	}
}

func TestNewVerifier(t *testing.T) {
	good := newSigner(t, newKey(t)).JWKS().Keys[0]
	rsa := messages.JWK{Kty: "RSA", Kid: "r1", Alg: "RS256", Use: "sig"}
	enc := good
	enc.Use = "enc"
	short := good
	short.X = base64.RawURLEncoding.EncodeToString([]byte("short"))
	noKid := good
	noKid.Kid = ""
	tests := []struct {
		name    string
		keys    []messages.JWK
		wantErr bool
		kids    int
	}{
		{"one key", []messages.JWK{good}, false, 1},
		{"foreign keys are skipped", []messages.JWK{rsa, enc, good}, false, 1},
		{"no usable key", []messages.JWK{rsa, enc}, true, 0},
		{"empty", nil, true, 0},
		{"short x", []messages.JWK{short}, true, 0},
		{"no kid", []messages.JWK{noKid}, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := token.NewVerifier(messages.JWKS{Keys: tc.keys}, token.VerifierConfig{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && len(v.KeyIDs()) != tc.kids {
				t.Errorf("kids = %v", v.KeyIDs())
			}
			if tc.wantErr && len(tc.keys) != 1 && !errors.Is(err, token.ErrNoKeys) {
				t.Errorf("err = %v, want ErrNoKeys", err)
			}
		})
	}
}

func TestVerifierConfig(t *testing.T) {
	signer, err := token.NewSigner(newKey(t), token.SignerConfig{Issuer: "iss-a", Audience: "aud-a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := signer.Issue("alice", nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	match, _ := token.NewVerifier(signer.JWKS(), token.VerifierConfig{Issuer: "iss-a", Audience: "aud-a", Leeway: time.Second})
	if _, err := match.Verify(tok, t0.Add(time.Minute)); err != nil {
		t.Errorf("matching config: %v", err)
	}
	if _, err := match.Verify(tok, t0.Add(time.Minute+2*time.Second)); !errors.Is(err, token.ErrExpiredToken) {
		t.Errorf("past 1s leeway: %v", err)
	}
	defaults := newVerifier(t, signer.JWKS())
	if _, err := defaults.Verify(tok, t0); !errors.Is(err, token.ErrInvalidToken) {
		t.Errorf("default issuer accepted iss-a: %v", err)
	}
}
