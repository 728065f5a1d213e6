// Package auth is the auth role: logins (bcrypt against the store, Ed25519
// JWTs out), token validation, the JWKS, and its health, served as the NATS
// micro service sensorhub-auth by a protoactor-go tree under the role
// supervisor "auth". It also holds the Validator that other roles use to
// authenticate a caller: online through auth.validate, with a local check
// against the cached JWKS when auth does not answer.
//
// The micro handlers never block: they hand the request to an actor, which
// answers it. Every request gets an answer with a stable code, including
// when an actor panics (it answers "internal" before it is restarted) or the
// database is down ("database_unavailable" at once while its breaker is
// open).
//
// It must not know about HTTP, sensors or Kafka.
package auth
