package sensor

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"sensorhub/internal/acceptance"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// envMeasureMemory, when set to a number of submissions, runs
// TestMeasureQueuedMemory (a measurement, not a check: it takes a minute and
// a few hundred MiB).
const envMeasureMemory = "SENSORHUB_MEASURE_MEMORY"

// TestMeasureQueuedMemory submits N tests of 10,000 readings each to a
// sensor role whose processors are paused, so that every admitted test
// stays queued, and reports the peak RSS of the test process (VmHWM: the
// role, the embedded NATS server, SQLite and the submitting client), the
// heap after a collection with everything queued, and what the byte bound
// admitted and refused. The role must stay up: it answers every submission
// and completes every admitted test once the processors resume.
//
//	SENSORHUB_MEASURE_MEMORY=20000 go test -run TestMeasureQueuedMemory -v ./actors/sensor/
func TestMeasureQueuedMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(envMeasureMemory))
	if n <= 0 {
		t.Skipf("a measurement: set %s to the number of submissions", envMeasureMemory)
	}
	h := newHarness(t)
	st := openSQLite(t)
	spec, _ := acceptance.LookupSpec("temperature")
	readings := make([]float64, messages.MaxReadings)
	for i := range readings {
		// Two decimals, as a real series has: about 6 bytes a reading in
		// JSON, a 60 KB payload.
		readings[i] = spec.Nominal + float64(i%20)/100
	}
	payload, err := json.Marshal(messages.SubmitTest{SensorType: spec.Type, Readings: readings})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var gateOnce sync.Once
	svc := h.start(st, func(c *Config) {
		c.hooks = &testHooks{beforeProcess: func(store.Test) { <-gate }}
	})
	t.Cleanup(func() { gateOnce.Do(func() { close(gate) }) })

	const submitters = 32
	var (
		next, accepted, refused, other atomic.Int64
		wg                             sync.WaitGroup
		mu                             sync.Mutex
		otherErr                       error
	)
	for range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				_, err := h.submit(tokAlice, payload, nil)
				var e *messages.Error
				switch {
				case err == nil:
					accepted.Add(1)
				case errors.As(err, &e) && e.Code == messages.CodeOverloaded:
					refused.Add(1)
				default:
					other.Add(1)
					mu.Lock()
					otherErr = err
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	queued := svc.pipe.counts()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	hwm := vmHWM(t)
	t.Logf("%d submissions of %d readings (%d-byte payload): %d accepted, %d refused overloaded, %d other errors (%v)",
		n, len(readings), len(payload), accepted.Load(), refused.Load(), other.Load(), otherErr)
	t.Logf("queued %d tests holding %d bytes (limit %d); heap in use after GC %.1f MiB (%.1f KiB per queued test); peak RSS (VmHWM) %.1f MiB",
		queued.queued, queued.bytes, svc.cfg.MaxInFlightBytes, float64(ms.HeapInuse)/(1<<20),
		float64(ms.HeapInuse)/1024/float64(max(queued.queued, 1)), float64(hwm)/(1<<20))
	if other.Load() != 0 {
		t.Errorf("%d submissions failed with something else than overloaded: %v", other.Load(), otherErr)
	}
	if queued.bytes > svc.cfg.MaxInFlightBytes {
		t.Errorf("queued bytes %d past the bound %d", queued.bytes, svc.cfg.MaxInFlightBytes)
	}
	gateOnce.Do(func() { close(gate) })
	testenv.Eventually(t, "every accepted test to complete", func() bool {
		c := counts(t, st)
		return c[messages.StatusCompleted] == accepted.Load() && c[messages.StatusProcessing] == 0
	})
}

// vmHWM is this process's peak resident set size, in bytes.
func vmHWM(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
