// Package sensor is the sensor role: it accepts sensor tests, evaluates or
// simulates their readings against the catalogue, stores the outcome with
// its event in the outbox, and relays the outbox to JetStream.
//
// The domain logic (the catalogue, the evaluation of a series of readings
// and the simulation of an acquisition) is pure: it does no I/O, keeps no
// state and never panics on any input, so the actors can call it inside
// Receive and a poison input can only ever produce a failed verdict. Subjects,
// stream names and wire types belong to package messages, not here.
package sensor
