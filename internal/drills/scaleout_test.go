package drills

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"sensorhub/internal/bench"
)

// The settings of TestMeasureSensorScaleOut.
const (
	// envMeasureScaleOut lists the sensor process counts to measure, each
	// on a fresh deployment ("1,2,4"); unset, the test skips.
	envMeasureScaleOut = "SENSORHUB_MEASURE_SCALEOUT"
	envMeasureRate     = "SENSORHUB_MEASURE_RATE"     // submissions per second
	envMeasureDuration = "SENSORHUB_MEASURE_DURATION" // how long the rate lasts

	defaultMeasureRate     = 3000
	defaultMeasureDuration = 20 * time.Second
)

// TestMeasureSensorScaleOut is issue 14's measurement: throughput with 1, 2
// and 4 sensor processes. For each count it starts a fresh deployment (a
// new database, NATS server and Kafka broker; one auth, the sensor
// processes, one bridge, one edge, all on their default settings and the
// database without the fault proxy) and drives it with the bench library
// at a fixed rate, following the completions over NATS as the admin "ops".
// It is a measurement, not a drill, and off by default:
//
//	SENSORHUB_MEASURE_SCALEOUT=1,2,4 SENSORHUB_REQUIRE_POSTGRES=1 \
//	  go test -count=1 -timeout 900s -run TestMeasureSensorScaleOut -v ./internal/drills/
//
// (SENSORHUB_MEASURE_RATE, default 3000, and SENSORHUB_MEASURE_DURATION,
// default 20s, shape the load.) Every process shares the machine's CPUs,
// so on a small machine more sensor processes cannot add CPU, only divide
// it: the CPU per completed test, by process group, is the figure that
// says what a copy costs. The test process's share is the embedded NATS
// server, the Kafka broker and the load generator together, which one
// process cannot tell apart.
//
// The only assertion is that every accepted test completed; nothing is
// held against the clock.
func TestMeasureSensorScaleOut(t *testing.T) {
	spec := os.Getenv(envMeasureScaleOut)
	if spec == "" {
		t.Skipf("a measurement: set %s to the sensor process counts, e.g. 1,2,4", envMeasureScaleOut)
	}
	counts, err := parseCounts(spec)
	if err != nil {
		t.Fatalf("%s: %v", envMeasureScaleOut, err)
	}
	rate := defaultMeasureRate
	if v := os.Getenv(envMeasureRate); v != "" {
		if rate, err = strconv.Atoi(v); err != nil || rate <= 0 {
			t.Fatalf("%s=%q: want submissions per second above zero", envMeasureRate, v)
		}
	}
	duration := defaultMeasureDuration
	if v := os.Getenv(envMeasureDuration); v != "" {
		if duration, err = time.ParseDuration(v); err != nil || duration <= 0 {
			t.Fatalf("%s=%q: want a duration above zero (20s)", envMeasureDuration, v)
		}
	}

	var rows []scaleOutRow
	for _, n := range counts {
		t.Run(fmt.Sprintf("sensors=%d", n), func(t *testing.T) {
			row := measureScaleOut(t, n, rate, duration)
			rows = append(rows, row)
			t.Log(row.line())
		})
	}
	if len(rows) > 0 {
		t.Logf("sensor scale-out, %d/s for %s per run (µs of CPU per completed test):\n%s", rate, duration, scaleOutTable(rows))
	}
}

// parseCounts reads "1,2,4".
func parseCounts(spec string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want a comma-separated list of process counts (1,2,4)", spec)
		}
		out = append(out, n)
	}
	return out, nil
}

// scaleOutRow is one count's outcome.
type scaleOutRow struct {
	sensors      int
	rate         float64 // accepted per second
	errors       map[string]int
	acceptP50    float64 // ms
	acceptP99    float64
	completeP99  float64
	completed    int
	notCompleted int
	// CPU per completed test, in µs: the sensor processes together, the
	// other role processes, this process (NATS, Kafka, the load), from
	// this test's own reading over bench.Run; PostgreSQL and the
	// machine's busy share from the bench's report, over its window
	// (first request to last completion), nearly the same.
	sensorUS, otherUS, selfUS, postgresUS float64
	busy                                  float64 // share of the machine's CPU capacity
}

func (r scaleOutRow) line() string {
	return fmt.Sprintf("%d sensor process(es): %.0f/s accepted, errors %s, acceptance p50 %.1f ms p99 %.1f ms, completion p99 %.1f ms, "+
		"%d completed, %d not completed; CPU per completed test: sensors %.0f µs, other roles %.0f µs, test process (NATS+Kafka+load) %.0f µs, postgres %.0f µs; machine %.0f%% busy",
		r.sensors, r.rate, bench.FormatErrors(r.errors), r.acceptP50, r.acceptP99, r.completeP99,
		r.completed, r.notCompleted, r.sensorUS, r.otherUS, r.selfUS, r.postgresUS, 100*r.busy)
}

func scaleOutTable(rows []scaleOutRow) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\trate/s\terrors\tacc p50 ms\tacc p99 ms\tcompl p99 ms\tnot compl\tsensors\tother roles\ttest proc\tpostgres\tbusy\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.0f\t%s\t%.1f\t%.1f\t%.1f\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f%%\t\n",
			r.sensors, r.rate, bench.FormatErrors(r.errors), r.acceptP50, r.acceptP99, r.completeP99,
			r.notCompleted, r.sensorUS, r.otherUS, r.selfUS, r.postgresUS, 100*r.busy)
	}
	_ = tw.Flush()
	return b.String()
}

// measureScaleOut runs one deployment with n sensor processes under the
// load and returns what it measured.
func measureScaleOut(t *testing.T, n, rate int, duration time.Duration) scaleOutRow {
	c := newCluster(t, clusterOptions{roleCopies: map[string]int{roleSensor: n}, directDB: true, stockArgs: true})
	var sensors, others []int
	for _, p := range c.all() {
		if p.role == roleSensor {
			sensors = append(sensors, p.cmd.Process.Pid)
		} else {
			others = append(others, p.cmd.Process.Pid)
		}
	}
	if len(sensors) != n {
		t.Fatalf("%d sensor processes, want %d", len(sensors), n)
	}
	// A saturated deployment drains its backlog after the load has
	// ended; the wait is bounded all the same, so that a lost test fails
	// the run instead of holding it.
	wait := max(bench.DefaultWait, 2*duration)
	ctx, cancel := context.WithTimeout(t.Context(), duration+wait+time.Minute)
	defer cancel()

	before := readGroupCPU(t, sensors, others)
	rep, err := bench.Run(ctx, bench.Config{
		URL:      "http://" + c.edgeAddr,
		Username: opsUser,
		Password: c.password,
		Rate:     rate,
		Duration: duration,
		NATSURL:  c.natsURL(0),
		Wait:     wait,
		PIDs:     append(append([]int(nil), sensors...), others...),
	})
	after := readGroupCPU(t, sensors, others)
	if err != nil && !errors.Is(err, bench.ErrIncomplete) {
		t.Fatalf("bench: %v", err)
	}
	run := rep.Run
	if run.Completion.NotCompleted > 0 {
		t.Errorf("%d of %d accepted tests did not complete within %s (%d ended failed)",
			run.Completion.NotCompleted, run.Accepted, wait, run.Completion.Failed)
	}
	for _, w := range run.CPU.Warnings {
		t.Logf("bench: %s", w)
	}
	t.Logf("bench's own CPU accounting: every role %.0f µs per completed test, this process %.0f µs",
		run.CPU.ServerPerTestUS, run.CPU.BenchPerTestUS)

	perTest := func(cpu time.Duration) float64 {
		if run.Completion.Completed == 0 {
			return 0
		}
		return float64(cpu.Microseconds()) / float64(run.Completion.Completed)
	}
	row := scaleOutRow{
		sensors:      n,
		rate:         run.AchievedRate,
		errors:       run.Errors,
		acceptP50:    run.Acceptance.P50,
		acceptP99:    run.Acceptance.P99,
		completeP99:  run.Completion.Latency.P99,
		completed:    run.Completion.Completed,
		notCompleted: run.Completion.NotCompleted,
		sensorUS:     perTest(after.sensors - before.sensors),
		otherUS:      perTest(after.others - before.others),
		selfUS:       perTest(after.self - before.self),
		postgresUS:   run.CPU.PostgresPerTestUS,
	}
	if run.CPU.CapacityS > 0 {
		row.busy = run.CPU.MachineS / run.CPU.CapacityS
	}
	return row
}

// groupCPU is the CPU time of the sensor processes, the other role
// processes and this process at one moment.
type groupCPU struct{ sensors, others, self time.Duration }

// readGroupCPU reads /proc. The role processes are this process's
// children, but a child's time reaches this process's own figures only
// once it is reaped, after the measurement: the three do not overlap.
func readGroupCPU(t *testing.T, sensors, others []int) groupCPU {
	t.Helper()
	cpu := func(pid int) time.Duration {
		d, err := bench.ProcessCPU(pid)
		if err != nil {
			t.Fatalf("cpu time of process %d: %v (Linux only; or a role process has exited)", pid, err)
		}
		return d
	}
	sum := func(pids []int) time.Duration {
		var s time.Duration
		for _, pid := range pids {
			s += cpu(pid)
		}
		return s
	}
	return groupCPU{sensors: sum(sensors), others: sum(others), self: cpu(os.Getpid())}
}
