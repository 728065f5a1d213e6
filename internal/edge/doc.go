// Package edge is sensorhub's HTTP edge: the seed-compatible JSON API on
// :8000. It owns the routes, the middleware (body limits, panic recovery,
// JSON 404/405, debug request logs), login rate limiting, the last good
// JWKS, and one circuit breaker per downstream service ("edge.auth",
// "edge.sensor", "edge.bridge").
//
// It validates outside input itself, so a bad request costs no NATS trip,
// and then talks to the other roles only over NATS request/reply, through
// messages.Subjects and natsx.Request. It must not reach a database, Kafka
// or another role's packages: every answer it gives comes from a role's
// reply, an error envelope, or its own breakers and caches.
package edge
