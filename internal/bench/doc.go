// Package bench is the load generator behind `sensorhub bench`: it logs in
// to an edge, submits sensor tests with an open-model load (vegeta: requests
// start on schedule whether or not earlier ones have answered), follows every
// accepted test to its completion (through the events on NATS, or by polling
// GET /test/{id}), samples the resident memory of the server processes it
// can see, and reports latencies, errors by code and what never completed.
// With Baseline it also measures a bare in-process HTTP handler under the
// same load and at full speed, so that every figure comes with its ratio to
// what this machine can do at all. With CPUProfileURL it takes a CPU
// profile of a server during the load, through its net/http/pprof, and
// reports the server's CPU by component (budget.go).
//
// It talks to sensorhub only as a client does (HTTP, pprof's included, and
// a core NATS subscription on the event subjects): it must not import the
// roles.
package bench
