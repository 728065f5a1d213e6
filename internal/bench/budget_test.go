package bench

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// stack is a sample's stack, leaf first; a frame with " <- " in it is one
// location whose inlined lines are listed innermost first.
type stack []string

type testSample struct {
	stack stack
	ms    int64
}

// cpuProfile builds a valid CPU profile (as runtime/pprof writes: a count
// and nanoseconds per sample, 10 ms a sample) of the given samples.
func cpuProfile(samples ...testSample) *profile.Profile {
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10_000_000,
		DurationNanos: 3_000_000_000,
	}
	funcs := map[string]*profile.Function{}
	fn := func(name string) *profile.Function {
		if f, ok := funcs[name]; ok {
			return f
		}
		f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name, Filename: "x.go"}
		funcs[name] = f
		p.Function = append(p.Function, f)
		return f
	}
	for _, s := range samples {
		var locs []*profile.Location
		for _, frame := range s.stack {
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Address: uint64(0x1000 + len(p.Location))}
			for _, name := range strings.Split(frame, " <- ") {
				loc.Line = append(loc.Line, profile.Line{Function: fn(name), Line: 1})
			}
			p.Location = append(p.Location, loc)
			locs = append(locs, loc)
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: []int64{s.ms / 10, s.ms * 1_000_000}})
	}
	return p
}

// Each rule, and the order in which the rules and the frames are read:
// every case is a profile of one stack, which must land whole in the
// component named.
func TestBudgetRules(t *testing.T) {
	const (
		httpRoot  = "net/http.(*conn).serve"
		actorRoot = "github.com/asynkron/protoactor-go/actor.(*defaultMailbox).run"
		natsRoot  = "github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"
	)
	for _, tc := range []struct {
		name  string
		stack stack
		want  string
	}{
		// Step 1: an assist is GC, whoever allocated.
		{"assist under the edge", stack{"runtime.gcDrainN", "runtime.gcAssistAlloc1", "runtime.systemstack", "runtime.gcAssistAlloc", "runtime.mallocgc",
			"sensorhub/internal/edge.(*Server).handleSubmit", httpRoot}, "GC assists"},
		{"assist inlined", stack{"runtime.gcAssistAlloc <- runtime.mallocgc", "github.com/nats-io/nats-server/v2/server.(*client).readLoop"}, "GC assists"},

		// Step 2, each rule.
		{"submit handler", stack{"runtime.memmove", "sensorhub/internal/edge.(*Server).handleSubmit", httpRoot}, "edge: submit handler"},
		{"edge call", stack{"sensorhub/internal/edge.(*Server).call", "sensorhub/internal/edge.(*Server).handleLogin", httpRoot}, "edge: submit handler"},
		{"edge handler of its own", stack{"sensorhub/internal/edge.(*Server).handleGetTest", httpRoot}, "edge: other"},
		{"edge: a word boundary", stack{"sensorhub/internal/edge.(*Server).callbackURL", httpRoot}, "edge: other"},
		{"intake", stack{"runtime.newstack", "sensorhub/actors/sensor.(*intake).authenticated", actorRoot}, "sensor: intake"},
		{"intake decode", stack{"sensorhub/actors/sensor.decodeSubmit", "sensorhub/actors/sensor.(*intake).received", actorRoot}, "sensor: intake"},
		{"auth", stack{"crypto/ed25519.Verify", "sensorhub/actors/auth.(*Service).validate", actorRoot}, "auth"},
		{"insert commit", stack{"sensorhub/actors/sensor.(*writer).insertsDone", actorRoot}, "sensor: insert commit"},
		{"insert commit on sqlite", stack{"sensorhub/internal/store/sqlite.(*Store).InsertTests.func1"}, "sensor: insert commit"},
		{"completion commit", stack{"sensorhub/internal/store/postgres.(*Store).CompleteTests", "sensorhub/actors/sensor.(*writer).flushCompletions.func1"}, "sensor: completion commit"},
		{"leases", stack{"sensorhub/internal/store/postgres.(*Store).RenewLeases", "sensorhub/actors/sensor.(*pool).renew"}, "sensor: attempts, leases"},
		{"pool", stack{"sensorhub/actors/sensor.(*pool).pump", actorRoot}, "sensor: attempts, leases"},
		{"processing", stack{"math.Sqrt", "sensorhub/internal/acceptance.Evaluate", "sensorhub/actors/sensor.(*processor).process", actorRoot}, "sensor: processing"},
		{"outbox relay", stack{"sensorhub/actors/sensor.(*Service).publishWave", "sensorhub/actors/sensor.(*Service).relayOnce"}, "sensor: outbox relay"},
		{"outbox read", stack{"sensorhub/internal/store/postgres.(*Store).OutboxPending", "sensorhub/actors/sensor.(*outboxRelay).Receive"}, "sensor: outbox relay"},
		{"sensor other", stack{"sensorhub/actors/sensor.(*tasks).goTracked.func1"}, "sensor: other"},
		{"bridge", stack{"github.com/segmentio/kafka-go.(*Writer).WriteMessages", "sensorhub/bridge.(*relay).prefetch.func1"}, "bridge"},
		{"metrics", stack{"sensorhub/internal/metrics.(*timedStore).since", "sensorhub/internal/metrics.(*timedStore).InsertTests", "sensorhub/actors/sensor.(*writer).flushInserts.func1.1"}, "metrics, tracing"},
		{"tracing", stack{"sensorhub/internal/tracing.Start", actorRoot}, "metrics, tracing"},
		{"NATS request", stack{"sensorhub/internal/natsx.request", "sensorhub/internal/natsx.Request"}, "edge->sensor NATS request"},
		{"NATS replies", stack{"sensorhub/internal/natsx.Respond", actorRoot}, "NATS replies and events"},
		{"decode", stack{"regexp.(*Regexp).doExecute", "sensorhub/messages.ValidSensorType <- sensorhub/messages.SubmitTest.Validate", "sensorhub/messages.DecodeSubmitTest"}, "submission decode, validate"},
		{"event encoding", stack{"sensorhub/messages.TestCompleted.Encode"}, "event encoding"},
		{"store call", stack{"github.com/jackc/pgx/v5.(*Conn).Query", "sensorhub/internal/store/postgres.(*Store).GetTest", "sensorhub/actors/sensor.(*Service).handleGet"}, "store calls (pgx)"},
		{"breaker", stack{"sensorhub/internal/breaker.Call[go.shape.[]sensorhub/actors/sensor.row].func1", "github.com/sony/gobreaker/v2.(*CircuitBreaker[go.shape.interface {}]).Execute"}, "store calls (pgx)"},
		{"sensorhub other", stack{"sensorhub/actors/supervise.capturePanics.func1", actorRoot}, "sensorhub other"},

		// Step 2 reads the frames from the leaf: the nearest specific
		// frame wins, though an earlier rule matches one further up.
		{"leaf first: the request under the edge", stack{"sensorhub/internal/natsx.Request", "sensorhub/internal/edge.(*Server).submit", "sensorhub/internal/edge.(*Server).handleSubmit", httpRoot}, "edge->sensor NATS request"},
		{"leaf first: fingerprint under intake", stack{"runtime.newstack", "sensorhub/messages.SubmitTest.Fingerprint", "sensorhub/actors/sensor.(*intake).authenticated", actorRoot}, "submission decode, validate"},
		{"leaf first: an inlined callee before its caller", stack{"sensorhub/internal/natsx.request <- sensorhub/internal/edge.(*Server).submit", httpRoot}, "edge->sensor NATS request"},
		{"leaf first: an inlined caller after its callee", stack{"sensorhub/internal/edge.(*Server).submit <- sensorhub/internal/natsx.request", httpRoot}, "edge: submit handler"},
		// A catch-all frame nearer the leaf yields to a specific one.
		{"catch-all: the store's transaction under the insert", stack{"github.com/jackc/pgx/v5.BeginTxFunc", "sensorhub/internal/store/postgres.(*Store).inTx",
			"sensorhub/internal/store/postgres.(*Store).InsertTests", "sensorhub/actors/sensor.dbCall[go.shape.[]sensorhub/internal/store.InsertResult]", "sensorhub/actors/sensor.(*writer).flushInserts.func1"}, "sensor: insert commit"},
		{"catch-all: an edge helper under the submit handler", stack{"sensorhub/internal/edge.writeJSON", "sensorhub/internal/edge.(*Server).handleSubmit", httpRoot}, "edge: submit handler"},
		{"catch-all: a store call of auth's", stack{"sensorhub/internal/store/postgres.(*Store).UserByName", "sensorhub/actors/auth.(*Service).login"}, "auth"},
		{"catch-all: the nearest of two", stack{"sensorhub/internal/store/postgres.(*Store).GetTest", "sensorhub/actors/sensor.(*Service).handleGet", "sensorhub/actors/supervise.capturePanics.func1"}, "store calls (pgx)"},

		// Step 3: the first rule that matches any frame, wherever.
		{"GC background", stack{"runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker.func2", "runtime.systemstack", "runtime.gcBgMarkWorker"}, "GC background"},
		{"sweeper", stack{"runtime.sweepone", "runtime.bgsweep"}, "GC background"},
		{"JetStream under a client's read loop", stack{"runtime.memmove", "github.com/nats-io/nats-server/v2/server.(*fileStore).storeRawMsg",
			"github.com/nats-io/nats-server/v2/server.(*stream).processJetStreamMsg", "github.com/nats-io/nats-server/v2/server.(*client).processInboundClientMsg",
			"github.com/nats-io/nats-server/v2/server.(*client).readLoop", natsRoot}, "NATS server: JetStream"},
		{"NATS routing", stack{"syscall.write", "github.com/nats-io/nats-server/v2/server.(*client).flushOutbound", natsRoot}, "NATS server: routing"},
		{"kfake", stack{"github.com/twmb/franz-go/pkg/kfake.(*Cluster).run"}, "Kafka broker (kfake)"},
		{"runtime under the Kafka client", stack{"runtime.mallocgc", "github.com/segmentio/kafka-go.(*conn).run"}, "Kafka client"},
		{"NATS client, escaped", stack{"internal/runtime/syscall/linux.Syscall6", "github.com/nats-io/nats%2ego.(*Conn).readLoop"}, "NATS client loops"},
		{"NATS client, unescaped", stack{"github.com/nats-io/nats.go/jetstream.(*pullConsumer).fetch.func1"}, "NATS client loops"},
		{"pgx", stack{"github.com/jackc/puddle/v2.(*Pool).backgroundHealthCheck"}, "pgx other"},
		{"HTTP", stack{"syscall.read", "net.(*conn).Read", "net/http.(*connReader).backgroundRead"}, "HTTP server"},
		{"actor runtime", stack{"runtime.chanrecv", actorRoot}, "actor runtime"},
		{"scheduler", stack{"runtime.findRunnable", "runtime.schedule", "runtime.park_m", "runtime.mcall"}, "runtime (scheduler, syscalls)"},
		{"syscall", stack{"internal/runtime/syscall/linux.Syscall6", "syscall.Syscall"}, "runtime (scheduler, syscalls)"},
		{"other", stack{"crypto/sha256.block", "main.main"}, "other"},
		{"no frames", stack{}, "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := budgetOf(cpuProfile(testSample{tc.stack, 30}), newClassifier().classify)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.items) != 1 || b.items[0].Component != tc.want || b.items[0].Share != 1 {
				t.Fatalf("budget %+v, want all in %q", b.items, tc.want)
			}
		})
	}
}

// Shares of a mixed profile, read back from its encoded form as the bench
// reads a server's: they add up to 1, sample time is kept, the largest
// comes first, and µs per test are the share of the server's.
func TestBudgetShares(t *testing.T) {
	p := cpuProfile(
		testSample{stack{"sensorhub/internal/edge.(*Server).handleSubmit"}, 500},
		testSample{stack{"runtime.gcBgMarkWorker"}, 200},
		testSample{stack{"sensorhub/internal/edge.(*Server).submit"}, 250}, // the same component again
		testSample{stack{"github.com/twmb/franz-go/pkg/kfake.(*Cluster).run"}, 50},
	)
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	parsed, err := profile.ParseData(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	b, err := budgetOf(parsed, newClassifier().classify)
	if err != nil {
		t.Fatal(err)
	}
	if b.sampleNS != 1_000_000_000 || b.durationNS != 3_000_000_000 {
		t.Fatalf("sample %d ns, duration %d ns", b.sampleNS, b.durationNS)
	}
	want := []BudgetItem{
		{Component: "edge: submit handler", Share: 0.75, SampleS: 0.75},
		{Component: "GC background", Share: 0.2, SampleS: 0.2},
		{Component: "Kafka broker (kfake)", Share: 0.05, SampleS: 0.05},
	}
	if len(b.items) != len(want) {
		t.Fatalf("items %+v, want %+v", b.items, want)
	}
	for i := range want {
		if b.items[i] != want[i] {
			t.Errorf("item %d: %+v, want %+v", i, b.items[i], want[i])
		}
	}
	perTest(b.items, 240)
	if b.items[0].PerTestUS != 180 || b.items[1].PerTestUS != 48 || b.items[2].PerTestUS != 12 {
		t.Errorf("µs per test of 240: %+v", b.items)
	}

	// Thirds: rounded, they still add up to 1 within the rounding.
	b, err = budgetOf(cpuProfile(
		testSample{stack{"runtime.mcall"}, 10}, testSample{stack{"net/http.(*conn).serve"}, 10}, testSample{stack{"main.main"}, 10},
	), newClassifier().classify)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, it := range b.items {
		sum += it.Share
	}
	if len(b.items) != 3 || math.Abs(sum-1) > 0.0005 {
		t.Errorf("thirds: %+v (sum %v)", b.items, sum)
	}
	// Equal shares come in name order, so that the report is stable.
	if b.items[0].Component != "HTTP server" || b.items[1].Component != "other" {
		t.Errorf("ties not by name: %+v", b.items)
	}
}

// A profile with no samples has no budget and no division by zero; one that
// is not a CPU profile is refused.
func TestBudgetEmptyAndNotCPU(t *testing.T) {
	b, err := budgetOf(cpuProfile(), newClassifier().classify)
	if err != nil || len(b.items) != 0 || b.sampleNS != 0 {
		t.Fatalf("empty profile: %+v, %v", b, err)
	}
	sp := &serverProfile{info: CPUProfile{URL: "http://x"}, prof: cpuProfile(), done: make(chan struct{})}
	close(sp.done)
	info, items := sp.finish(200, 1)
	if items != nil || !strings.Contains(info.Note, "no samples") {
		t.Fatalf("empty profile: %+v %+v", info, items)
	}
	heap := cpuProfile(testSample{stack{"main.main"}, 10})
	heap.SampleType = []*profile.ValueType{{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"}}
	if _, err := budgetOf(heap, newClassifier().classify); err == nil || !strings.Contains(err.Error(), "not a CPU profile") {
		t.Fatalf("heap profile: %v", err)
	}
}

// finish divides the server's µs per test only when it is of the one
// process profiled, and says why not otherwise.
func TestBudgetPerTestNeedsOneServer(t *testing.T) {
	done := func() *serverProfile {
		sp := &serverProfile{info: CPUProfile{URL: "http://x", RequestedS: 3}, done: make(chan struct{}),
			prof: cpuProfile(testSample{stack{"runtime.bgsweep"}, 100}, testSample{stack{"runtime.mcall"}, 300})}
		close(sp.done)
		return sp
	}
	info, items := done().finish(200, 1)
	if info.Note != "" || info.ServerPerTestUS != 200 || info.SampleS != 0.4 || info.DurationS != 3 || len(items) != 2 ||
		items[0].PerTestUS != 150 || items[1].PerTestUS != 50 {
		t.Fatalf("one server: %+v %+v", info, items)
	}
	for _, tc := range []struct {
		perTest float64
		servers int
		want    string
	}{{200, 2, "of 2 server processes"}, {0, 1, "not measured"}, {0, 0, "not measured"}} {
		info, items := done().finish(tc.perTest, tc.servers)
		if !strings.Contains(info.Note, tc.want) || info.ServerPerTestUS != 0 || len(items) != 2 || items[0].PerTestUS != 0 || items[0].Share != 0.75 {
			t.Errorf("%v µs, %d servers: %+v %+v; want a note naming %q", tc.perTest, tc.servers, info, items, tc.want)
		}
	}
}

// The README's Performance section names every component the budget can
// report.
func TestReadmeNamesEveryComponent(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "\n## Performance\n")
	if i < 0 {
		t.Fatal("README has no Performance section")
	}
	s = s[i:]
	if j := strings.Index(s[1:], "\n## "); j >= 0 {
		s = s[:j+1]
	}
	for _, name := range Components() {
		if !strings.Contains(s, "`"+name+"`") {
			t.Errorf("README's Performance section does not name the component `%s`", name)
		}
	}
}
