// Package metrics owns sensorhub's Prometheus metrics: one registry per
// process (every role of `dev` shares it, each role's series carrying a
// "role" label), the HTTP handler that serves it, and the collectors.
//
// What is counted on a hot path is one counter Inc or one histogram
// Observe on a child resolved ahead of time (HTTP routes, NATS subjects,
// store operations): no lock, no allocation per request. Everything else
// is read from the state the roles already keep, at scrape time
// (breakers, pipeline counters, the outbox count, the bridge's counters
// and its consumer's lag, supervision decisions).
//
// Cardinality is bounded by construction: labels are route patterns,
// subjects (at most maxSubjects, the rest as "other"), error codes,
// operations, breaker names, states, directives and actor name paths;
// never a test id, a user or a sensor id.
//
// It must not read the environment or flags (cmd/ does), and it names no
// subject of its own: subjects come from the callers.
package metrics
