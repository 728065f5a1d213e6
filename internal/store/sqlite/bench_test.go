package sqlite_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"sensorhub/internal/store"
	"sensorhub/internal/store/sqlite"
)

// BenchmarkInsertBatch is one group commit of n submissions on a file
// database: with synchronous=FULL each commit waits for its fsync, so the
// cost per test falls with the batch size.
func BenchmarkInsertBatch(b *testing.B) {
	for _, n := range []int{1, 64, 512} {
		b.Run("batch="+strconv.Itoa(n), func(b *testing.B) {
			st, err := sqlite.Open(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			req := []byte(`{"sensor_type":"temperature"}`)
			batch := make([]store.NewTest, n)
			for b.Loop() {
				for i := range batch {
					id, _ := uuid.NewV7()
					batch[i] = store.NewTest{ID: id.String(), Owner: "bench", SensorType: "temperature", SensorID: "s",
						Request: req, AuthMode: "online", LeaseUntil: time.Now().Add(time.Minute)}
				}
				if _, err := st.InsertTests(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/test")
		})
	}
}
