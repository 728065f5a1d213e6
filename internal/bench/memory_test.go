package bench

import (
	"os"
	"slices"
	"testing"
)

func TestProcStatusAndSampler(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	name, rss, hwm, err := procStatus(os.Getpid())
	if err != nil || name == "" || rss <= 0 || hwm < rss {
		t.Fatalf("procStatus(self) = %q %d %d %v", name, rss, hwm, err)
	}
	if slices.Contains(findServers(os.Getpid()), os.Getpid()) {
		t.Error("findServers lists the bench itself")
	}

	m := startMemorySampler([]int{os.Getpid()})
	mem := m.finish()
	if len(mem.Processes) != 1 || mem.Processes[0].PID != os.Getpid() || mem.PeakRSSMiB <= 0 || mem.Processes[0].RunPeakRSSMiB <= 0 {
		t.Fatalf("sampler on self: %+v", mem)
	}

	gone := startMemorySampler([]int{1 << 30})
	if mem := gone.finish(); len(mem.Processes) != 0 || mem.Note == "" {
		t.Errorf("sampler on a missing pid: %+v", mem)
	}
}
