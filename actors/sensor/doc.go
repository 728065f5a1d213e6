// Package sensor is the sensor role: it accepts sensor tests, has them
// judged by package acceptance (the catalogue, the evaluation and the
// simulation), stores the outcome with its event in the outbox, and relays
// the outbox to JetStream.
//
// Subjects, stream names and wire types belong to package messages, the
// sensor domain to package acceptance; this package owns the actors, the
// pipeline between them and the role's NATS service.
package sensor
