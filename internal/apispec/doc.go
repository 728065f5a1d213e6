// Package apispec describes sensorhub's messages as an AsyncAPI 3 document
// (asyncapi.yaml at the repository's root): every request/reply subject of
// the roles' NATS micro services, the event stream, the dead letters and
// the Kafka topic, with JSON Schemas generated from the Go types of package
// messages and their doc comments, so that the contract is written once.
//
// The document is generated, never edited: `go test ./internal/apispec
// -update` writes it, and the test fails when the committed one differs
// from what the code says, or when a subject of messages.Subjects is
// missing from Operations.
package apispec
