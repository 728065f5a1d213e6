// Package natsx holds sensorhub's NATS plumbing: connecting with endless
// reconnects and logged state changes (over TLS when TLSFiles say so), the
// embedded server used by `dev` and tests, registering micro services,
// answering requests with JSON or the error envelope, and making requests
// with a deadline that turn the envelope back into a *messages.Error.
//
// It knows no subject: callers pass them from messages.Subjects.
package natsx
