package messages

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on credentials taken from outside. bcrypt reads at most 72 bytes.
const (
	MaxUsernameLen = 64
	MaxPasswordLen = 72
)

// TokenRequest logs a user in (sensorhub.auth.token, POST /auth/token).
type TokenRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// ClientAddr is set by the edge (never by the client) for rate limiting.
	ClientAddr string `json:"client_addr,omitempty"`
}

// Validate refuses empty or oversize credentials.
func (r TokenRequest) Validate() error {
	switch {
	case r.Username == "" || r.Password == "":
		return &Error{Code: CodeBadRequest, Message: "username and password are required"}
	case len(r.Username) > MaxUsernameLen || !utf8.ValidString(r.Username):
		return &Error{Code: CodeBadRequest, Message: "username too long or not UTF-8"}
	case len(r.Password) > MaxPasswordLen:
		return &Error{Code: CodeBadRequest, Message: "password longer than 72 bytes"}
	case !utf8.ValidString(r.Password):
		return &Error{Code: CodeBadRequest, Message: "password is not UTF-8"}
	}
	return nil
}

// reservedUsernames cannot be given to a person: the roles connect to NATS
// under these names and own the inbox prefix _INBOX_<role>, and SYS is the
// NATS system account. They are compared without regard to case.
var reservedUsernames = [...]string{RoleAuth, RoleSensor, RoleBridge, RoleEdge, "sys"}

// ValidUsername refuses a name that cannot be a new account's username: the
// NATS bus gives each person the inbox prefix _INBOX_<username>, so the name
// must be one subject token of 1..MaxUsernameLen characters of
// [A-Za-z0-9_-], and it must not be a role's name (auth, sensor, bridge,
// edge) or sys, in any case. The error is a *Error with CodeBadRequest.
//
// It is the rule for creating accounts only: TokenRequest.Validate stays
// lenient, so that an account created before the rule can still log in.
func ValidUsername(name string) error {
	if name == "" || len(name) > MaxUsernameLen {
		return &Error{Code: CodeBadRequest, Message: "username must be 1 to 64 characters"}
	}
	for i := 0; i < len(name); i++ {
		if !usernameByte(name[i]) {
			return &Error{Code: CodeBadRequest, Message: "username may contain only letters A-Z and a-z, digits, '_' and '-'"}
		}
	}
	for _, r := range reservedUsernames {
		if strings.EqualFold(name, r) {
			return &Error{Code: CodeBadRequest, Message: "username " + strconv.Quote(name) + " is reserved for a sensorhub role or NATS"}
		}
	}
	return nil
}

func usernameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// DecodeTokenRequest parses and validates a login request.
func DecodeTokenRequest(data []byte) (TokenRequest, error) {
	var r TokenRequest
	if err := decodeStrict(data, &r, false); err != nil {
		return TokenRequest{}, err
	}
	return r, r.Validate()
}

// TokenReply carries a signed access token (OAuth2 token response shape).
type TokenReply struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // always "bearer"
	ExpiresIn   int    `json:"expires_in"` // seconds
}

// ValidateRequest asks auth whether a token is good.
type ValidateRequest struct {
	Token string `json:"token"`
}

// MaxTokenLen bounds a bearer token taken from outside.
const MaxTokenLen = 4096

// Validate refuses an empty or oversize token.
func (r ValidateRequest) Validate() error {
	if r.Token == "" || len(r.Token) > MaxTokenLen {
		return ErrUnauthorized
	}
	return nil
}

// DecodeValidateRequest parses and validates a validate request.
func DecodeValidateRequest(data []byte) (ValidateRequest, error) {
	var r ValidateRequest
	if err := decodeStrict(data, &r, false); err != nil {
		return ValidateRequest{}, err
	}
	return r, r.Validate()
}

// ValidateReply is auth's verdict on a token. An invalid token comes back as
// an unauthorized error, not as Valid=false, so Valid is true in every reply;
// it is kept for clients that check it.
type ValidateReply struct {
	Valid   bool   `json:"valid"`
	Subject string `json:"subject"`
	// Roles are the user's roles as stored when auth could read the
	// database, else (and in a fallback verdict) the token's.
	Roles     []string `json:"roles"`
	ExpiresAt int64    `json:"expires_at"` // unix seconds
	TokenID   string   `json:"jti"`
	// AuthMode is "online" when auth answered, "fallback" when the token was
	// verified locally with the published keys because auth did not answer.
	AuthMode string `json:"auth_mode,omitempty"`
}

// Auth modes.
const (
	AuthModeOnline   = "online"
	AuthModeFallback = "fallback"
)

// HasRole reports whether Roles holds role.
func (r ValidateReply) HasRole(role string) bool {
	for _, x := range r.Roles {
		if x == role {
			return true
		}
	}
	return false
}

// RoleAdmin may read every user's tests.
const RoleAdmin = "admin"

// JWK is one public key in a JWKS (RFC 8037 OKP for Ed25519).
type JWK struct {
	Kty string `json:"kty"` // "OKP"
	Crv string `json:"crv"` // "Ed25519"
	X   string `json:"x"`   // base64url public key
	Kid string `json:"kid"`
	Alg string `json:"alg"` // "EdDSA"
	Use string `json:"use"` // "sig"
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// DecodeJWKS parses a key set, ignoring unknown members (as RFC 7517 asks).
func DecodeJWKS(data []byte) (JWKS, error) {
	var s JWKS
	if len(data) > MaxBodyBytes {
		return JWKS{}, &Error{Code: CodeBodyTooLarge, Message: "JWKS too large"}
	}
	if err := jsonUnmarshalObject(data, &s); err != nil {
		return JWKS{}, err
	}
	return s, nil
}

// BearerToken extracts the token from an Authorization header value
// ("Bearer <token>", scheme case-insensitive). It returns "" if there is none.
func BearerToken(header string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
