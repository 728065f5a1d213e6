// Package messages is sensorhub's wire contract: the NATS subjects, the stream,
// consumer, bucket and topic names, the request, reply and event types that
// travel between roles, the error envelope with its stable codes, and the
// validation of everything that arrives from outside.
//
// It is a leaf: it imports only the standard library, and no other package
// names a subject, a stream or a topic in a literal.
package messages
