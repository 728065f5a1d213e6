// Package app wires sensorhub's roles into runnable processes: it opens the
// store, connects to NATS, creates the actor system, starts a role (or, for
// `dev`, every role plus embedded NATS, SQLite and Kafka), serves health,
// chaos and pprof, and shuts everything down in order when the context ends
// or a role supervisor gives up.
//
// It takes config structs; it never reads flags or the environment (that is
// cmd/sensorhub's job).
package app
