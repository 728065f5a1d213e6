// Package drills holds sensorhub's failure drills: Go integration tests that
// build the sensorhub binary once, run the edge, auth, sensor and bridge
// roles as separate OS processes against an embedded NATS server (JetStream
// on disk), a fresh PostgreSQL database behind a fault proxy and an
// in-process Kafka-protocol broker, and take one part away at a time:
//
//  1. the auth process is killed: login answers 503, a token already held
//     still submits (fallback verification), a forged token is refused;
//  2. Kafka is unavailable: submissions still succeed and their events wait
//     in JetStream ("queued", breaker open);
//  3. the database is cut: submissions answer 503 "Database unavailable"
//     and /health shows the database down while every process stays up;
//  4. everything comes back: submissions succeed again within 10 s without
//     restarting any other process, and the queued events reach Kafka;
//  5. the NATS server restarts on the same store: every process reconnects.
//
// One drill run keeps a bounded client submitting all along and then checks
// that no accepted test or event was lost. The cluster drill runs two copies
// of every role on a 3-node NATS cluster (nats-server processes on the
// configurations `sensorhub nats-config --cluster-name` writes; it needs
// the binary named by SENSORHUB_NATS_SERVER) and kills the node leading
// SENSOR_EVENTS under load, with the same no-loss check. A further test panics an auth
// actor through the chaos switch and checks its supervision log line.
// TestMeasureSensorScaleOut is a measurement, not a drill, and skips unless
// SENSORHUB_MEASURE_SCALEOUT lists sensor process counts: throughput and
// CPU per test with that many sensor processes (see its comment).
//
// They run with the rest of the tests (go test -race ./...); to repeat
// them alone:
//
//	go test -race -count=5 -run Drill -v ./internal/drills/
//
// They need PostgreSQL (testenv.Postgres: skipped without a server, a
// failure with SENSORHUB_REQUIRE_POSTGRES=1).
//
// The package has tests only. It must not be imported, and it changes no
// production code: it drives the real binary through its flags, its HTTP
// edge and NATS, and reads PostgreSQL and Kafka directly to check outcomes.
package drills
