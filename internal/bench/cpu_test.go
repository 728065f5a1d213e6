package bench

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"sensorhub/internal/testenv"
)

func TestParseProcStat(t *testing.T) {
	busy, total, err := parseProcStat("cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 3 0\nintr 1\n")
	if err != nil {
		t.Fatal(err)
	}
	// busy: user+nice+system+irq+softirq+steal; idle: idle+iowait.
	if busy != 161 || total != 1181 {
		t.Fatalf("busy %d total %d, want 161 1181", busy, total)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, _, err := parseProcStat(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestParsePIDStat(t *testing.T) {
	// A command name with spaces and a parenthesis: the fields start after
	// the last ')'. utime 1200, stime 300, cutime 40, cstime 60.
	line := "4242 (post (gres) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1200 300 40 60 20 0 1 0 12345 1000 10\n"
	own, err := parsePIDStat(line, false)
	if err != nil || own != 1500 {
		t.Fatalf("own ticks %d, %v; want 1500", own, err)
	}
	all, err := parsePIDStat(line, true)
	if err != nil || all != 1600 {
		t.Fatalf("ticks with children %d, %v; want 1600", all, err)
	}
	if _, err := parsePIDStat("4242 (x) S 1 2", false); err == nil {
		t.Fatal("parsed a short line")
	}
}

// Two CPUs for 10 s: 2,000 ticks of capacity, 1,500 busy, of which the
// server 800, postgres 300, the bench 100: 300 ticks were someone else's.
func TestCPUBetween(t *testing.T) {
	at := time.Unix(1000, 0)
	a := cpuSnapshot{at: at, busy: 10_000, total: 50_000, self: 10, servers: 500, postgres: 7_000, ok: true}
	b := cpuSnapshot{at: at.Add(10 * time.Second), busy: 11_500, total: 52_000, self: 110, servers: 1_300, postgres: 7_300, ok: true}
	c := cpuBetween(a, b, 2, 40_000, 0.3)
	if c.WindowS != 10 || c.CapacityS != 20 || c.MachineS != 15 || c.ServerS != 8 || c.PostgresS != 3 || c.BenchS != 1 || c.OtherS != 3 {
		t.Fatalf("seconds: %+v", c)
	}
	if c.ServerPerTestUS != 200 || c.PostgresPerTestUS != 75 || c.BenchPerTestUS != 25 {
		t.Fatalf("per test: %+v", c)
	}
	if c.BenchShare != 0.067 {
		t.Fatalf("bench share %v, want 0.067", c.BenchShare)
	}
	// 3 of 20 CPU-seconds were others' (15%): one warning; load 0.3 on 2
	// CPUs is quiet, 75% busy is not saturated.
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "other processes used 15%") {
		t.Fatalf("warnings %q", c.Warnings)
	}

	// Loaded before, and saturated: both said.
	b.busy = a.busy + 1_900
	c = cpuBetween(a, b, 2, 40_000, 1.5)
	joined := strings.Join(c.Warnings, "\n")
	for _, want := range []string{"already loaded: load average 1.50 on 2 CPUs", "every CPU was busy (95%)", "other processes used 35%"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
	if c := cpuBetween(cpuSnapshot{}, b, 2, 1, 0); c.Note == "" || c.MachineS != 0 {
		t.Fatalf("without /proc: %+v", c)
	}
}

// On Linux the bench's own CPU time is read: burning CPU raises it.
func TestTakeCPUSeesItsOwnWork(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU times come from /proc")
	}
	a := takeCPU([]int{os.Getpid()})
	if !a.ok {
		t.Fatal("takeCPU found no /proc/stat")
	}
	x := uint64(1)
	deadline := time.Now().Add(testenv.Wait(t))
	for {
		for range 1_000_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		b := takeCPU([]int{os.Getpid()})
		if b.self > a.self && b.servers > a.servers && b.busy > a.busy && b.total > a.total {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU time counted: %+v -> %+v (%d)", a, b, x)
		}
	}
}

// ProcessCPU reads a process's CPU time from /proc: burning CPU raises it,
// and a process that is not there is an error.
func TestProcessCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU times come from /proc")
	}
	a, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := uint64(1)
	deadline := time.Now().Add(testenv.Wait(t))
	for {
		for range 1_000_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		b, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if b > a {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU time counted: %v -> %v (%d)", a, b, x)
		}
	}
	if _, err := ProcessCPU(1 << 30); err == nil {
		t.Error("ProcessCPU of a pid that does not exist: no error")
	}
}
