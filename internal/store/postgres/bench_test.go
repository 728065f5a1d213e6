package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// BenchmarkWritePath runs the sensor role's store traffic per test: one
// group-committed insert (with an idempotency key, as the edge gives every
// submission), the count of its processing attempt, one group-committed
// completion with its outbox row, and the relay's read and delete of that row, in batches as the
// writer and the relay send them. Besides the time per test it reports the
// CPU the PostgreSQL backends of the benchmark's database spent per test
// (pg-µs/test, from /proc; absent where /proc cannot tell), which is what
// the server pays for our statements:
//
//	SENSORHUB_REQUIRE_POSTGRES=1 go test -run '^$' -bench WritePath -benchtime 40x ./internal/store/postgres/
func BenchmarkWritePath(b *testing.B) {
	for _, batch := range []int{64, 512} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchWritePath(b, batch) })
	}
}

func benchWritePath(b *testing.B, batch int) {
	databaseURL := testenv.Postgres(b)
	s := open(b, databaseURL)
	u, err := url.Parse(databaseURL)
	if err != nil {
		b.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()
	result := []byte(`{"verdict":"pass","source":"simulated","stats":{"count":120,"min":2.6,"max":50.85,"mean":3.89,"stddev":7.52,"noise":6.24,"drift_per_min":1.23,"spikes":2,"out_of_range":3}}`)
	request := []byte(`{"sensor_type":"vibration","sensor_id":"default"}`)

	cpu0 := backendCPU(dbName)
	b.ResetTimer()
	for range b.N {
		lease := time.Now().Add(time.Minute)
		tests := make([]store.NewTest, batch)
		for i := range tests {
			// Keyed, as every submission through the edge is.
			tests[i] = store.NewTest{
				ID: uuid.Must(uuid.NewV7()).String(), Owner: "admin", SensorType: "vibration",
				SensorID: "default", Request: request, AuthMode: "online", LeaseUntil: lease,
				IdempotencyKey: uuid.Must(uuid.NewV7()).String(), Fingerprint: "f",
			}
		}
		if _, err := s.InsertTests(ctx, tests); err != nil {
			b.Fatalf("InsertTests: %v", err)
		}
		ids := make([]string, batch)
		for i, t := range tests {
			ids[i] = t.ID
		}
		if _, err := s.BeginAttempts(ctx, ids, lease); err != nil {
			b.Fatalf("BeginAttempts: %v", err)
		}
		cs := make([]store.Completion, batch)
		for i, t := range tests {
			eventID := uuid.Must(uuid.NewV7()).String()
			cs[i] = store.Completion{
				TestID: t.ID, Status: messages.StatusCompleted, Result: result, At: time.Now(),
				Event: store.OutboxEvent{EventID: eventID, Subject: "sensorhub.events.vibration.completed",
					Payload: []byte(`{"schema":1,"event_id":"` + eventID + `","test_id":"` + t.ID + `","stats":` + string(result) + `}`)},
			}
		}
		if _, err := s.CompleteTests(ctx, cs); err != nil {
			b.Fatalf("CompleteTests: %v", err)
		}
		rows, err := s.OutboxPending(ctx, 1024)
		if err != nil {
			b.Fatalf("OutboxPending: %v", err)
		}
		seqs := make([]int64, len(rows))
		for i, r := range rows {
			seqs[i] = r.Seq
		}
		if err := s.DeleteOutbox(ctx, seqs); err != nil {
			b.Fatalf("DeleteOutbox: %v", err)
		}
	}
	b.StopTimer()
	n := float64(b.N * batch)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/test")
	if cpu0 >= 0 {
		if cpu1 := backendCPU(dbName); cpu1 >= 0 {
			b.ReportMetric(float64(cpu1-cpu0)/n, "pg-µs/test")
		}
	}
}

// backendCPU returns the CPU time (user + system, in microseconds) of the
// PostgreSQL backends connected to dbName, or -1 when /proc cannot tell.
func backendCPU(dbName string) int64 {
	pids, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return -1
	}
	ticks := int64(0)
	found := false
	for _, p := range pids {
		cmd, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(cmd), "postgres: ") || !strings.Contains(string(cmd), " "+dbName+" ") {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name (in parentheses): utime and stime
		// are the 14th and 15th fields of the line.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		ticks += ut + st
		found = true
	}
	if !found {
		return -1
	}
	// USER_HZ is 100 on every Linux this runs on.
	return ticks * 10_000
}
