// Package actortest holds helpers for tests of sensorhub's actors: an actor
// system that logs to the test and is shut down with it, a slog logger that
// captures records so a test can wait for a supervision line, a probe actor,
// and waiting on channels or conditions with a deadline (never a sleep).
//
// It is imported by tests only and must not start anything that outlives
// the test.
package actortest
