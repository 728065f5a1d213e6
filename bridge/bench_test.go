package bridge_test

import (
	"testing"
	"time"

	"sensorhub/bridge"
)

// benchConfig is the production batch size and pacing, with the test's
// short waits only where they do not affect throughput.
func benchConfig(e *env) bridge.Config {
	cfg := e.config()
	cfg.BatchSize = 0     // default: 500 per fetch and per WriteMessages
	cfg.MaxAckPending = 0 // default: 10 batches
	return cfg
}

// relayBacklog publishes n events, then starts a bridge and returns how
// long it took to relay them all to Kafka (acknowledged in JetStream), and
// the CPU time the process (bridge, embedded NATS server and in-process
// Kafka broker together) spent meanwhile. Setting up and publishing are
// not timed. The CPU time is the figure to compare on a shared machine:
// the wall time there depends on what else runs.
func relayBacklog(b *testing.B, n int) (elapsed, cpu time.Duration) {
	b.StopTimer()
	e := newEnv(b)
	e.publish(b, events(n, 100))
	cfg := benchConfig(e)
	b.StartTimer()
	start, cpuStart := time.Now(), processCPU()
	br := e.start(b, cfg)
	deadline := start.Add(5 * time.Minute)
	for stats(b, br).Successful < uint64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("relayed %d of %d events within 5 minutes", stats(b, br).Successful, n)
		}
		time.Sleep(20 * time.Millisecond) // polling the counter
	}
	elapsed, cpu = time.Since(start), processCPU()-cpuStart
	b.StopTimer()
	// Successful counts an event once Kafka has it; its JetStream ack is
	// a plain one that lands a moment later, so Queued gets there after.
	for s := stats(b, br); s.Queued != 0 || s.Failed != 0; s = stats(b, br) {
		if s.Failed != 0 || time.Now().After(deadline) {
			b.Fatalf("after the relay: %+v", s)
		}
		time.Sleep(20 * time.Millisecond) // polling the counter
	}
	return elapsed, cpu
}

// BenchmarkRelay measures events relayed per second from a JetStream
// backlog of b.N events to the in-process Kafka broker, one bridge.
func BenchmarkRelay(b *testing.B) {
	elapsed, cpu := relayBacklog(b, b.N)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}

// BenchmarkDrain100k measures the time one bridge takes to drain a backlog
// of 100,000 events. Run it once: -run='^$' -bench=Drain100k -benchtime=1x.
func BenchmarkDrain100k(b *testing.B) {
	const n = 100_000
	var total, cpu time.Duration
	for range b.N {
		e, c := relayBacklog(b, n)
		total += e
		cpu += c
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/drain")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/drain")
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "events/s")
}
