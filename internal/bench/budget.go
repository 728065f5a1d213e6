package bench

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// The CPU budget attributes every sample of a server's CPU profile to one
// component, by the function names of its stack, in three steps:
//
//  1. A stack with runtime.gcAssistAlloc in it is "GC assists": the
//     collector's work charged to a goroutine that allocated, whatever
//     that goroutine was doing.
//  2. Else the sensorhub rules (sensorhubRules, in order), first from the
//     leaf to the root: the frame nearest the leaf that one of the
//     specific rules matches names the component, so that a library of
//     sensorhub's own (natsx, messages) is counted apart from its caller.
//     The catch-all rules of a package ("edge: other", "sensor: other",
//     "store calls (pgx)", "sensorhub other") apply only when no specific
//     rule matches any frame, again the nearest the leaf first: a helper
//     such as the store's transaction wrapper belongs to the insert commit
//     that called it, not to "store calls".
//  3. Else the outer rules (outerRules): the first rule, in order, that
//     matches any frame. The order, not the frames', decides: every
//     goroutine of the embedded NATS server starts in the same function,
//     and a JetStream store under a client's read loop is JetStream.
//
// Else "other". Frames are every line of every location, the innermost
// (inlined) first, with the "%2e" that a package path's last element gets
// for a '.' (nats%2ego) read as the '.'. The names are short and stable:
// scripts and the README use them.
const gcAssists = "GC assists"

// otherComponent takes the samples that no rule matches.
const otherComponent = "other"

// A rule names the component of the frames its pattern matches.
type rule struct {
	component string
	pattern   *regexp.Regexp
	// fallback marks a package's catch-all (step 2, second pass).
	fallback bool
}

func specific(component, pattern string) rule {
	return rule{component: component, pattern: regexp.MustCompile(pattern)}
}

func fallback(component, pattern string) rule {
	return rule{component: component, pattern: regexp.MustCompile(pattern), fallback: true}
}

// sensorhubRules are step 2, matched against a frame's function name in
// this order.
var sensorhubRules = []rule{
	specific("edge: submit handler", `^sensorhub/internal/edge\.\(\*Server\)\.(handleSubmit|submit|call)\b`),
	fallback("edge: other", `^sensorhub/internal/edge\.`),
	specific("sensor: intake", `^sensorhub/actors/sensor\.(\(\*intake\)|\(\*Service\)\.handleSubmit\b|decodeSubmit\b|\(\*submission\))`),
	specific("auth", `^sensorhub/actors/auth\.`),
	specific("sensor: insert commit", `^sensorhub/(actors/sensor\.\(\*writer\)\.(flushInserts|insertsDone)\b|internal/store/(postgres|sqlite)\.\(\*Store\)\.InsertTests\b)`),
	specific("sensor: completion commit", `^sensorhub/(actors/sensor\.\(\*writer\)\.(flushCompletions|completionsDone)\b|internal/store/(postgres|sqlite)\.\(\*Store\)\.CompleteTests\b)`),
	specific("sensor: attempts, leases", `^sensorhub/(actors/sensor\.\(\*pool\)|internal/store/(postgres|sqlite)\.\(\*Store\)\.(BeginAttempts|RenewLeases)\b)`),
	specific("sensor: processing", `^sensorhub/(actors/sensor\.\(\*processor\)|internal/acceptance\.)`),
	specific("sensor: outbox relay", `^sensorhub/(actors/sensor\.(\(\*outboxRelay\)|\(\*Service\)\.(relayOnce|publish))|internal/store/(postgres|sqlite)\.\(\*Store\)\.(OutboxPending|DeleteOutbox|OutboxBacklog)\b)`),
	fallback("sensor: other", `^sensorhub/actors/sensor\.`),
	specific("bridge", `^sensorhub/bridge\.`),
	specific("metrics, tracing", `^sensorhub/internal/(metrics|tracing)\.`),
	specific("edge->sensor NATS request", `^sensorhub/internal/natsx\.(request|Request)\b`),
	specific("NATS replies and events", `^sensorhub/internal/natsx\.`),
	specific("submission decode, validate", `^sensorhub/messages\.(decode|Decode|SubmitTest|Valid|valid)`),
	specific("event encoding", `^sensorhub/messages\.`),
	fallback("store calls (pgx)", `^sensorhub/internal/(store|breaker)[./]`),
	fallback("sensorhub other", `^sensorhub/`),
}

// outerRules are step 3: the first whose pattern matches any frame.
var outerRules = []rule{
	specific("GC background", `^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge)\b`),
	specific("NATS server: JetStream", `nats-server/v2/server\.(\(\*stream\)|\(\*fileStore\)|\(\*memStore\)|\(\*consumer\)|\(\*jetStream\)|\(\*raft\))`),
	specific("NATS server: routing", `nats-server/v2/`),
	specific("Kafka broker (kfake)", `franz-go/pkg/kfake\.`),
	specific("Kafka client", `segmentio/kafka-go`),
	specific("NATS client loops", `nats-io/nats\.go[./]`),
	specific("pgx other", `jackc/`),
	specific("HTTP server", `^net/http\.`),
	specific("actor runtime", `protoactor-go/`),
	specific("runtime (scheduler, syscalls)", `^(runtime|internal/runtime/[a-z/]+)\.`),
}

// Components are the names the budget can report, in the order of the
// rules.
func Components() []string {
	names := []string{gcAssists}
	for _, r := range slices.Concat(sensorhubRules, outerRules) {
		names = append(names, r.component)
	}
	return append(names, otherComponent)
}

// frameMatch is what the rules say of one function name; a profile has far
// fewer functions than frames, so it is worked out once per name.
type frameMatch struct {
	assist   bool
	specific int    // index in sensorhubRules, -1 for none
	fallback int    // index in sensorhubRules, -1 for none
	outer    uint64 // bit i: outerRules[i] matches
}

// classifier classifies stacks, remembering each function's match.
type classifier struct {
	seen map[string]frameMatch
}

func newClassifier() *classifier { return &classifier{seen: map[string]frameMatch{}} }

func (c *classifier) match(name string) frameMatch {
	if m, ok := c.seen[name]; ok {
		return m
	}
	m := frameMatch{assist: strings.Contains(name, "runtime.gcAssistAlloc"), specific: -1, fallback: -1}
	for i, r := range sensorhubRules {
		if !r.pattern.MatchString(name) {
			continue
		}
		if r.fallback && m.fallback < 0 {
			m.fallback = i
		} else if !r.fallback && m.specific < 0 {
			m.specific = i
		}
	}
	for i, r := range outerRules {
		if r.pattern.MatchString(name) {
			m.outer |= 1 << i
		}
	}
	c.seen[name] = m
	return m
}

// classify names the component of a stack, its function names leaf first.
func (c *classifier) classify(frames []string) string {
	ms := make([]frameMatch, len(frames))
	for i, f := range frames {
		ms[i] = c.match(f)
		if ms[i].assist {
			return gcAssists
		}
	}
	for _, m := range ms {
		if m.specific >= 0 {
			return sensorhubRules[m.specific].component
		}
	}
	var outer uint64
	for _, m := range ms {
		if m.fallback >= 0 {
			return sensorhubRules[m.fallback].component
		}
		outer |= m.outer
	}
	for i, r := range outerRules {
		if outer&(1<<i) != 0 {
			return r.component
		}
	}
	return otherComponent
}

// stackFrames lists the function names of a sample's stack, leaf first:
// the first location is the leaf, and a location's lines run from the
// innermost inlined function to the one it was inlined into.
func stackFrames(s *profile.Sample) []string {
	var frames []string
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function == nil {
				continue
			}
			name := line.Function.Name
			if name == "" {
				name = line.Function.SystemName
			}
			frames = append(frames, strings.ReplaceAll(name, "%2e", "."))
		}
	}
	return frames
}

// BudgetItem is one component's part of the server's CPU profile.
type BudgetItem struct {
	Component string `json:"component"`
	// Share is the component's part of the profile's sample time (0 to 1);
	// SampleS that time, in CPU-seconds.
	Share   float64 `json:"share"`
	SampleS float64 `json:"sample_s"`
	// PerTestUS is Share times the server's CPU per completed test
	// (CPU.ServerPerTestUS): the component's microseconds of CPU per
	// test. Absent when that was not measured.
	PerTestUS float64 `json:"per_test_us,omitempty"`
}

// budget is a profile's samples by component.
type budget struct {
	items      []BudgetItem // by sample time, largest first
	sampleNS   int64
	durationNS int64
}

// budgetOf attributes every sample of the CPU profile p to a component by
// classify (given the stack's function names, leaf first).
func budgetOf(p *profile.Profile, classify func(frames []string) string) (budget, error) {
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			vi = i
		}
	}
	if vi < 0 {
		return budget{}, fmt.Errorf("not a CPU profile: no cpu/nanoseconds sample type in %v", sampleTypes(p))
	}
	b := budget{durationNS: p.DurationNanos}
	byComponent := map[string]int64{}
	for _, s := range p.Sample {
		if vi >= len(s.Value) || s.Value[vi] <= 0 {
			continue
		}
		byComponent[classify(stackFrames(s))] += s.Value[vi]
		b.sampleNS += s.Value[vi]
	}
	names := slices.Collect(maps.Keys(byComponent))
	slices.SortFunc(names, func(x, y string) int {
		return cmp.Or(cmp.Compare(byComponent[y], byComponent[x]), strings.Compare(x, y))
	})
	for _, name := range names {
		ns := byComponent[name]
		b.items = append(b.items, BudgetItem{
			Component: name,
			Share:     round4(float64(ns) / float64(b.sampleNS)),
			SampleS:   round3(float64(ns) / 1e9),
		})
	}
	return b, nil
}

// perTest sets each item's microseconds per completed test from the
// server's; the shares are of the profile, so this supposes that the
// profile's window spent the server's CPU as the whole run did.
func perTest(items []BudgetItem, serverPerTestUS float64) {
	for i := range items {
		items[i].PerTestUS = round1(items[i].Share * serverPerTestUS)
	}
}

func sampleTypes(p *profile.Profile) []string {
	var ts []string
	for _, st := range p.SampleType {
		ts = append(ts, st.Type+"/"+st.Unit)
	}
	return ts
}

func round4(f float64) float64 { return float64(int64(f*10_000+0.5)) / 10_000 }
