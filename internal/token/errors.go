package token

import "errors"

// ErrInvalidToken means the token is not one we issued or not one we accept:
// malformed, oversize, signed with another algorithm or key, an unknown or
// missing kid, a wrong issuer or audience, no exp, not valid yet. The
// wrapped error says which (for logs, never for the caller).
var ErrInvalidToken = errors.New("invalid token")

// ErrExpiredToken means the token was ours and well formed but its exp is
// past (beyond the leeway). It does not match ErrInvalidToken, so a caller
// can tell the user "token expired".
var ErrExpiredToken = errors.New("token expired")

// ErrNoKeys means a key set holds no usable Ed25519 signing key.
var ErrNoKeys = errors.New("no usable Ed25519 key in the key set")

// ErrInsecureKeyFile means the private key file can be read or written by
// its group or by others. LoadOrCreateKey refuses such a file rather than
// sign with a key that may have leaked; `chmod 600` fixes it.
var ErrInsecureKeyFile = errors.New("private key file is accessible by group or others")
