// Package acceptance is the sensor domain: the catalogue of sensor types
// with their acceptance limits, the evaluation of a series of readings
// against a type's limits, the simulation of an acquisition for a test
// submitted without readings, and the evaluation's JSON encoding.
//
// It is pure: it does no I/O, keeps no state and never panics on any input,
// so the sensor role's actors can call it inside Receive and a poison input
// can only ever produce a failed verdict. It imports only package messages
// (the wire types it fills) and the standard library; the actors, the
// store and NATS belong to actors/sensor.
package acceptance
