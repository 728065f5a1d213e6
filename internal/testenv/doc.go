// Package testenv is the test harness shared by sensorhub's tests: a fresh
// PostgreSQL database per test (Postgres) and a TCP fault proxy to cut or
// slow a dependency's connections (FaultProxy); other files add embedded
// NATS (plain or TLS), an in-process Kafka broker, a throw-away PKI for TLS
// tests (Certs) and poll deadlines taken from the test binary (Deadline).
//
// It is imported only by tests. It may read its own environment variables
// (SENSORHUB_TEST_DATABASE_URL, SENSORHUB_REQUIRE_POSTGRES); every resource
// it creates is released in t.Cleanup.
package testenv
