package messages

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
)

// Code is a stable, machine-readable error code. Codes never change meaning;
// clients may switch on them.
type Code string

// The stable error codes. Each maps to one HTTP status (see HTTPStatus).
const (
	CodeBadRequest          Code = "bad_request"            // malformed or invalid body
	CodeInvalidJSON         Code = "invalid_json"           // body is not the JSON expected
	CodeBodyTooLarge        Code = "body_too_large"         // body over the limit
	CodeUnknownSensorType   Code = "unknown_sensor_type"    // sensor type not in the catalogue
	CodeInvalidReadings     Code = "invalid_readings"       // NaN, infinities, too many readings, bad interval
	CodeInvalidSensorID     Code = "invalid_sensor_id"      // sensor id not 1..128 of [A-Za-z0-9._:-]
	CodeInvalidTestID       Code = "invalid_test_id"        // test id is not a UUID
	CodeInvalidCredentials  Code = "invalid_credentials"    // unknown user or wrong password
	CodeUnauthorized        Code = "unauthorized"           // missing, malformed, forged or expired token
	CodeForbidden           Code = "forbidden"              // authenticated, but not allowed
	CodeNotFound            Code = "not_found"              // no such resource
	CodeMethodNotAllowed    Code = "method_not_allowed"     // wrong HTTP method
	CodeRateLimited         Code = "rate_limited"           // too many attempts; see Retry-After
	CodeOverloaded          Code = "overloaded"             // queue full; see Retry-After
	CodeBacklogFull         Code = "backlog_full"           // events wait to be relayed past the outbox bound; see Retry-After
	CodeDatabaseUnavailable Code = "database_unavailable"   // database down or its breaker open
	CodeAuthUnavailable     Code = "auth_unavailable"       // auth service does not answer
	CodeSensorUnavailable   Code = "sensor_unavailable"     // sensor service does not answer
	CodeBridgeUnavailable   Code = "bridge_unavailable"     // bridge service does not answer
	CodeUnavailable         Code = "unavailable"            // a dependency is down
	CodeTimeout             Code = "timeout"                // a deadline passed; outcome unknown
	CodeOutcomeUnknown      Code = "outcome_unknown"        // a submission was sent and no answer came: retry with its Idempotency-Key
	CodeIdempotencyReused   Code = "idempotency_key_reused" // the key names an earlier submission with another body
	CodeInternal            Code = "internal"               // a bug or a crashed actor
	CodeChaosDisabled       Code = "chaos_disabled"         // chaos endpoint called without --chaos
	CodeUnknownActor        Code = "unknown_actor"          // chaos target does not exist
)

var statusByCode = map[Code]int{
	CodeBadRequest:          http.StatusBadRequest,
	CodeInvalidJSON:         http.StatusBadRequest,
	CodeBodyTooLarge:        http.StatusRequestEntityTooLarge,
	CodeUnknownSensorType:   http.StatusBadRequest,
	CodeInvalidReadings:     http.StatusBadRequest,
	CodeInvalidSensorID:     http.StatusBadRequest,
	CodeInvalidTestID:       http.StatusBadRequest,
	CodeInvalidCredentials:  http.StatusUnauthorized,
	CodeUnauthorized:        http.StatusUnauthorized,
	CodeForbidden:           http.StatusForbidden,
	CodeNotFound:            http.StatusNotFound,
	CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	CodeRateLimited:         http.StatusTooManyRequests,
	CodeOverloaded:          http.StatusServiceUnavailable,
	CodeBacklogFull:         http.StatusServiceUnavailable,
	CodeDatabaseUnavailable: http.StatusServiceUnavailable,
	CodeAuthUnavailable:     http.StatusServiceUnavailable,
	CodeSensorUnavailable:   http.StatusServiceUnavailable,
	CodeBridgeUnavailable:   http.StatusServiceUnavailable,
	CodeUnavailable:         http.StatusServiceUnavailable,
	CodeTimeout:             http.StatusGatewayTimeout,
	CodeOutcomeUnknown:      http.StatusServiceUnavailable,
	CodeIdempotencyReused:   http.StatusUnprocessableEntity,
	CodeInternal:            http.StatusInternalServerError,
	CodeChaosDisabled:       http.StatusForbidden,
	CodeUnknownActor:        http.StatusNotFound,
}

// HTTPStatus is the HTTP status the edge answers for the code
// (500 for a code it does not know).
func (c Code) HTTPStatus() int {
	if s, ok := statusByCode[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Known reports whether c is one of the stable codes.
func (c Code) Known() bool { _, ok := statusByCode[c]; return ok }

// Retryable reports whether the same request may succeed later unchanged.
func (c Code) Retryable() bool {
	switch c {
	case CodeRateLimited, CodeOverloaded, CodeDatabaseUnavailable, CodeAuthUnavailable,
		CodeSensorUnavailable, CodeBridgeUnavailable, CodeUnavailable, CodeTimeout, CodeOutcomeUnknown:
		return true
	}
	return false
}

// Seed-compatible messages for the failures users see most.
const (
	MsgDatabaseUnavailable = "Database unavailable"
	MsgAuthUnavailable     = "auth service unavailable"
	MsgSensorUnavailable   = "sensor service unavailable"
	MsgBridgeUnavailable   = "bridge service unavailable"
)

// Error is the error envelope every failure travels in, over NATS (as the
// body of a micro service error, with Code in the error-code header) and
// over HTTP: {"error": "...", "code": "..."}. It implements error.
type Error struct {
	Message string `json:"error"`
	Code    Code   `json:"code"`
	// RetryAfter, in whole seconds, is set with rate_limited, overloaded
	// and outcome_unknown.
	RetryAfter int `json:"retry_after,omitempty"`
}

// NewError returns an *Error with the code and message.
func NewError(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Errorf-style helpers for the common cases.
var (
	// ErrDatabaseUnavailable is the seed's 503 body for a database outage.
	ErrDatabaseUnavailable = &Error{Code: CodeDatabaseUnavailable, Message: MsgDatabaseUnavailable}
	// ErrAuthUnavailable is the seed's 503 body while auth does not answer.
	ErrAuthUnavailable = &Error{Code: CodeAuthUnavailable, Message: MsgAuthUnavailable}
	// ErrSensorUnavailable is the 503 body while the sensor service does not answer.
	ErrSensorUnavailable = &Error{Code: CodeSensorUnavailable, Message: MsgSensorUnavailable}
	// ErrBridgeUnavailable is the 503 body while the bridge does not answer.
	ErrBridgeUnavailable = &Error{Code: CodeBridgeUnavailable, Message: MsgBridgeUnavailable}
	// ErrInvalidCredentials is the one answer for an unknown user and a wrong password.
	ErrInvalidCredentials = &Error{Code: CodeInvalidCredentials, Message: "invalid username or password"}
	// ErrUnauthorized is the answer for a missing or unusable token.
	ErrUnauthorized = &Error{Code: CodeUnauthorized, Message: "missing or invalid token"}
	// ErrOutcomeUnknown is the edge's 503 when a submission went out and
	// no answer came back: it may or may not be stored, and a retry with
	// the Idempotency-Key of the answer is safe either way.
	ErrOutcomeUnknown = &Error{Code: CodeOutcomeUnknown, Message: "sensor service did not answer; the submission may be stored: retry with the same Idempotency-Key", RetryAfter: 1}
	// ErrIdempotencyReused refuses a key that names an earlier submission
	// of the same user with another body.
	ErrIdempotencyReused = &Error{Code: CodeIdempotencyReused, Message: "idempotency key already used for a different submission"}
)

func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	return string(e.Code) + ": " + e.Message
}

// Is matches another *Error with the same code, so errors.Is(err,
// messages.ErrDatabaseUnavailable) works on any database_unavailable error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && e != nil && t != nil && t.Code == e.Code
}

// HTTPStatus is the status of the error's code.
func (e *Error) HTTPStatus() int { return e.Code.HTTPStatus() }

// JSON encodes the envelope. It never fails.
func (e *Error) JSON() []byte {
	b, _ := json.Marshal(e)
	return b
}

// CodeOf returns the code of err if it is (or wraps) an *Error, else CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e.Code
	}
	return CodeInternal
}

// AsError returns err as an *Error, wrapping unknown errors as internal ones
// with a generic message (the detail stays in the logs, not on the wire).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}

// DecodeError parses an error envelope. It fails unless the body is a JSON
// object with a non-empty code.
func DecodeError(data []byte) (*Error, error) {
	var e Error
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	if e.Code == "" {
		return nil, errors.New("error envelope without code")
	}
	return &e, nil
}

// Codes lists every stable code, sorted (for documents generated from
// this package, such as the AsyncAPI description).
func Codes() []Code {
	out := make([]Code, 0, len(statusByCode))
	for c := range statusByCode {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
