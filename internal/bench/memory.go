package bench

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// serverName is the process name the bench looks for when no PIDs are given.
const serverName = "sensorhub"

// rssEvery is how often the resident memory is sampled during a run.
const rssEvery = 250 * time.Millisecond

// ProcessMemory is the memory of one server process, from /proc.
type ProcessMemory struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
	// PeakRSSMiB is VmHWM at the end of the run: the highest resident set of
	// the process's whole life (start-up and earlier runs included).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// RunPeakRSSMiB is the highest VmRSS sampled during this run.
	RunPeakRSSMiB float64 `json:"run_peak_rss_mib"`
}

// Memory is the memory of the server processes the bench could see.
type Memory struct {
	Processes []ProcessMemory `json:"processes"`
	// PeakRSSMiB adds up the processes' PeakRSSMiB (0 when none was seen).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Note       string  `json:"note,omitempty"`
}

// findServers lists the processes named sensorhub, other than this one.
func findServers(self int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == serverName {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStatus reads the name, VmRSS and VmHWM (in kB) of pid.
func procStatus(pid int) (name string, rssKB, hwmKB int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "", 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Name":
			name = val
		case "VmRSS", "VmHWM":
			n, _ := strconv.ParseInt(strings.TrimSuffix(val, " kB"), 10, 64)
			if key == "VmRSS" {
				rssKB = n
			} else {
				hwmKB = n
			}
		}
	}
	return name, rssKB, hwmKB, sc.Err()
}

// memorySampler samples the resident set of some processes until stopped.
type memorySampler struct {
	pids   []int
	note   string
	mu     sync.Mutex
	peakKB map[int]int64
	stop   context.CancelFunc
	done   chan struct{}
}

// startMemorySampler samples pids, or every other sensorhub process when
// pids is empty.
func startMemorySampler(pids []int) *memorySampler {
	m := &memorySampler{pids: pids, peakKB: map[int]int64{}, done: make(chan struct{})}
	if len(m.pids) == 0 {
		m.pids = findServers(os.Getpid())
		if len(m.pids) == 0 {
			m.note = "no other process named " + serverName + " is visible (in-process server, or another machine): give --pid"
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		defer close(m.done)
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memorySampler) sample() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, pid := range m.pids {
		if _, rss, _, err := procStatus(pid); err == nil && rss > m.peakKB[pid] {
			m.peakKB[pid] = rss
		}
	}
}

// finish stops the sampling and reports.
func (m *memorySampler) finish() Memory {
	m.stop()
	<-m.done
	m.sample()
	mem := Memory{Processes: []ProcessMemory{}, Note: m.note}
	for _, pid := range m.pids {
		name, _, hwm, err := procStatus(pid)
		if err != nil {
			mem.Note = strings.TrimPrefix(mem.Note+"; pid "+strconv.Itoa(pid)+" is gone or unreadable", "; ")
			continue
		}
		m.mu.Lock()
		peak := m.peakKB[pid]
		m.mu.Unlock()
		p := ProcessMemory{PID: pid, Name: name, PeakRSSMiB: kbToMiB(hwm), RunPeakRSSMiB: kbToMiB(peak)}
		mem.Processes = append(mem.Processes, p)
		mem.PeakRSSMiB += p.PeakRSSMiB
	}
	mem.PeakRSSMiB = round1(mem.PeakRSSMiB)
	return mem
}

func kbToMiB(kb int64) float64 { return round1(float64(kb) / 1024) }

// loadAverage is the 1-minute load average, 0 when unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(data), " ")
	v, _ := strconv.ParseFloat(f, 64)
	return v
}
