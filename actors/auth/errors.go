package auth

import (
	"errors"

	"sensorhub/messages"
)

// ErrDefaultPassword means a user that can log in still has the seed's
// default password (DefaultPassword). The production roles refuse to start
// with it.
var ErrDefaultPassword = errors.New("a user still has the default password")

// Errors answered by the auth service, beyond the shared ones in messages.
var (
	errInternal      = messages.NewError(messages.CodeInternal, "internal error in auth")
	errTokenExpired  = messages.NewError(messages.CodeUnauthorized, "token expired")
	errUserDisabled  = messages.NewError(messages.CodeUnauthorized, "user disabled")
	errUserGone      = messages.NewError(messages.CodeUnauthorized, "user no longer exists")
	errLoginsPending = &messages.Error{Code: messages.CodeOverloaded, Message: "auth overloaded: too many logins in flight", RetryAfter: 1}
	errChecksPending = &messages.Error{Code: messages.CodeOverloaded, Message: "auth overloaded: too many validations in flight", RetryAfter: 1}
)
