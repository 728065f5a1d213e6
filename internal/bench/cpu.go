package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100
// on every Linux architecture Go runs on.
const clockTicks = 100

// postgresName is the process name of PostgreSQL's server and backends.
const postgresName = "postgres"

// CPU is where the machine's CPU time went while the bench ran, from /proc
// (Linux): from the first request to the last completion, or the end of the
// wait. On a shared machine these, not wall time, are the comparable
// figures: wall time depends on the neighbours.
type CPU struct {
	// WindowS is the measured wall time; CapacityS is that times the
	// machine's CPUs (all the CPU time there was).
	WindowS   float64 `json:"window_s"`
	CapacityS float64 `json:"capacity_s"`
	// MachineS is the CPU time the whole machine was busy.
	MachineS float64 `json:"machine_s"`
	// ServerS is the server processes' (--pid, or every other process
	// named sensorhub), BenchS this load generator's own, PostgresS every
	// process named postgres on this machine (backends that ended during
	// the run included, through the postmaster's reaped children), OtherS
	// the rest: neighbours.
	ServerS   float64 `json:"server_s"`
	BenchS    float64 `json:"bench_s"`
	PostgresS float64 `json:"postgres_s"`
	OtherS    float64 `json:"other_s"`
	// Per completed test, in microseconds of CPU.
	ServerPerTestUS   float64 `json:"server_per_test_us,omitempty"`
	PostgresPerTestUS float64 `json:"postgres_per_test_us,omitempty"`
	BenchPerTestUS    float64 `json:"bench_per_test_us,omitempty"`
	// BenchShare is the bench's part of the machine's busy time: the load
	// generator competes with the server for the same CPUs unless they are
	// pinned apart (README, "Performance").
	BenchShare float64 `json:"bench_share"`
	// Warnings say why these figures may not measure sensorhub alone.
	Warnings []string `json:"warnings,omitempty"`
	Note     string   `json:"note,omitempty"`
}

// cpuSnapshot is the CPU times of one moment, in clock ticks.
type cpuSnapshot struct {
	at            time.Time
	busy, total   uint64 // the machine (/proc/stat, every CPU)
	self, servers uint64
	postgres      uint64
	ok            bool
}

// takeCPU reads the CPU times now; ok is false where /proc is not there.
func takeCPU(servers []int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now()}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	if s.busy, s.total, err = parseProcStat(string(data)); err != nil {
		return s
	}
	s.self, _ = processTicks("/proc/self/stat", false)
	for _, pid := range servers {
		t, _ := processTicks("/proc/"+strconv.Itoa(pid)+"/stat", true)
		s.servers += t
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if comm, err := os.ReadFile(filepath.Join(d, "comm")); err == nil && strings.TrimSpace(string(comm)) == postgresName {
			t, _ := processTicks(filepath.Join(d, "stat"), true)
			s.postgres += t
		}
	}
	s.ok = true
	return s
}

// parseProcStat reads the machine's busy and total ticks from the first
// ("cpu") line of /proc/stat: user nice system idle iowait irq softirq
// steal (guest time is already inside user).
func parseProcStat(data string) (busy, total uint64, err error) {
	line, _, _ := strings.Cut(data, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var v [8]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat field %d: %w", i+1, err)
		}
	}
	idle := v[3] + v[4]
	busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return busy, busy + idle, nil
}

// ProcessCPU is the CPU time (user and system) process pid has used so
// far, read from /proc (Linux only).
func ProcessCPU(pid int) (time.Duration, error) {
	ticks, err := processTicks("/proc/"+strconv.Itoa(pid)+"/stat", false)
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// processTicks reads utime+stime of a /proc/<pid>/stat file, plus the
// reaped children's cutime+cstime when children is set.
func processTicks(path string, children bool) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parsePIDStat(string(data), children)
}

// parsePIDStat parses a /proc/<pid>/stat line. The command name, in
// parentheses, may hold spaces and parentheses itself: the fields start
// after the last ')'.
func parsePIDStat(line string, children bool) (uint64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected stat line %q", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime 15, cutime 16,
	// cstime 17.
	if len(f) < 15 {
		return 0, fmt.Errorf("short stat line %q", line)
	}
	n := 2
	if children {
		n = 4
	}
	var sum uint64
	for _, s := range f[11 : 11+n] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat field %q: %w", s, err)
		}
		if v > 0 {
			sum += uint64(v)
		}
	}
	return sum, nil
}

// cpuBetween says where the CPU time went from a to b, for completed
// tests; load is the 1-minute load average at the start.
func cpuBetween(a, b cpuSnapshot, cpus, completed int, load float64) CPU {
	if !a.ok || !b.ok {
		return CPU{Note: "no /proc: CPU time not measured"}
	}
	sec := func(ticks uint64) float64 { return float64(ticks) / clockTicks }
	diff := func(x, y uint64) uint64 {
		if y < x { // a process seen at the start is gone
			return 0
		}
		return y - x
	}
	c := CPU{
		WindowS:   round3(b.at.Sub(a.at).Seconds()),
		CapacityS: round3(sec(diff(a.total, b.total))),
		MachineS:  round3(sec(diff(a.busy, b.busy))),
		ServerS:   round3(sec(diff(a.servers, b.servers))),
		BenchS:    round3(sec(diff(a.self, b.self))),
		PostgresS: round3(sec(diff(a.postgres, b.postgres))),
	}
	c.OtherS = round3(math.Max(0, c.MachineS-c.ServerS-c.BenchS-c.PostgresS))
	if completed > 0 {
		per := func(s float64) float64 { return round1(s * 1e6 / float64(completed)) }
		c.ServerPerTestUS, c.PostgresPerTestUS, c.BenchPerTestUS = per(c.ServerS), per(c.PostgresS), per(c.BenchS)
	}
	if c.MachineS > 0 {
		c.BenchShare = round3(c.BenchS / c.MachineS)
	}
	c.Warnings = cpuWarnings(c, cpus, load)
	return c
}

// cpuWarnings are the reasons the run may measure the machine rather than
// sensorhub: it was loaded before the run, neighbours took CPU during it,
// or every CPU was busy (then the rate is the machine's limit).
func cpuWarnings(c CPU, cpus int, load float64) []string {
	var w []string
	if cpus > 0 && load > 0.25*float64(cpus) {
		w = append(w, fmt.Sprintf("the machine was already loaded: load average %.2f on %d CPUs at the start", load, cpus))
	}
	if c.CapacityS > 0 && c.OtherS > 0.05*c.CapacityS {
		w = append(w, fmt.Sprintf("other processes used %.0f%% of the machine's CPU during the run (%.1f of %.1f CPU-seconds)",
			100*c.OtherS/c.CapacityS, c.OtherS, c.CapacityS))
	}
	if c.CapacityS > 0 && c.MachineS > 0.9*c.CapacityS {
		w = append(w, fmt.Sprintf("every CPU was busy (%.0f%%): the rate is bounded by the machine; pin the generator apart to separate the two", 100*c.MachineS/c.CapacityS))
	}
	return w
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
