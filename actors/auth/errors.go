package auth

import (
	"errors"
	"math"
	"time"

	"sensorhub/messages"
)

// ErrDefaultPassword means a user that can log in still has the seed's
// default password (DefaultPassword). The production roles refuse to start
// with it.
var ErrDefaultPassword = errors.New("a user still has the default password")

// msgTooManyLogins is the message of a rate-limited login.
const msgTooManyLogins = "too many login attempts, try again later"

func errRateLimited(wait time.Duration) *messages.Error {
	e := messages.NewError(messages.CodeRateLimited, msgTooManyLogins)
	e.RetryAfter = max(1, int(math.Ceil(wait.Seconds())))
	return e
}

// Errors answered by the auth service, beyond the shared ones in messages.
var (
	errInternal      = messages.NewError(messages.CodeInternal, "internal error in auth")
	errTokenExpired  = messages.NewError(messages.CodeUnauthorized, "token expired")
	errUserDisabled  = messages.NewError(messages.CodeUnauthorized, "user disabled")
	errUserGone      = messages.NewError(messages.CodeUnauthorized, "user no longer exists")
	errLoginsPending = &messages.Error{Code: messages.CodeOverloaded, Message: "auth overloaded: too many logins in flight", RetryAfter: 1}
	errNoCredentials = messages.NewError(messages.CodeUnauthorized, "no credentials")
	errChecksPending = &messages.Error{Code: messages.CodeOverloaded, Message: "auth overloaded: too many validations in flight", RetryAfter: 1}
)
