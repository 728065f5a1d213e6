package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/dashboard"
	"sensorhub/internal/health"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// The exit codes of `sensorhub status`.
const (
	StatusExitOK       = 0
	StatusExitDegraded = 1
	StatusExitDown     = 2
)

// StatusDown is the status of a system whose picture cannot be had: the
// edge or NATS does not answer, or no role does.
const StatusDown = messages.HealthDown

// ExitError ends a command with a given exit code; Err, when set, is
// printed on stderr.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// StatusConfig configures Status: the edge's view (URL) or NATS' own
// (NATSURL with a person's identity).
type StatusConfig struct {
	// URL is the edge's base URL (GET /health, GET /kafka/stats); ignored
	// when NATSURL is set.
	URL string
	// NATSURL asks NATS directly: each role's health subject, the bridge
	// tier's stats and the micro discovery ($SRV.PING) for the instances.
	NATSURL       string
	NATSCreds     natsx.Credentials
	NATSTLS       natsx.TLSFiles
	SubjectPrefix string
	// Timeout bounds one picture (default 5s).
	Timeout time.Duration
	// Watch, when positive, redraws the picture every Watch until ctx ends.
	Watch time.Duration
	// JSON prints the report as JSON (one object a line with Watch).
	JSON bool
}

// StatusReport is the picture `sensorhub status` prints.
type StatusReport struct {
	// Status is ok, degraded (health.Summary of every role) or down (the
	// source cannot be reached, or no role answers).
	Status string    `json:"status"`
	Source string    `json:"source"` // "edge <url>" or "nats <url>"
	At     time.Time `json:"at"`
	// Error says why the picture could not be had (Status down).
	Error string `json:"error,omitempty"`
	// Roles are every role's health by name ("edge" in the edge's view).
	Roles map[string]messages.HealthReply `json:"roles,omitempty"`
	// Instances are the micro service instances of each role that
	// answered discovery, by role (in the edge's view, as its dashboard
	// found them).
	Instances map[string][]string `json:"instances,omitempty"`
	// Breakers are every breaker, keyed "<role>.<dependency>".
	Breakers map[string]messages.BreakerHealth `json:"circuit_breakers,omitempty"`
	// Flow is the bridge tier's stats: queued in SENSOR_EVENTS, delivered
	// to Kafka, dead letters, the outbox backlog (absent when no bridge
	// answered; FlowError says why).
	Flow      *messages.BridgeStats `json:"flow,omitempty"`
	FlowError string                `json:"flow_error,omitempty"`
	// Pipeline is the sensor role's submissions in flight and tests queued,
	// summed over its instances (absent when none reported them).
	Pipeline *StatusPipeline `json:"pipeline,omitempty"`
	// Transitions and Supervision are the latest breaker state changes and
	// supervision events of every instance, newest first (at most
	// statusRecent each), as the dashboard shows them.
	Transitions []messages.BreakerTransition `json:"breaker_transitions,omitempty"`
	Supervision []dashboard.Supervision      `json:"supervision,omitempty"`
}

// StatusPipeline is the sensor role's pipeline gauges.
type StatusPipeline struct {
	InFlight int64 `json:"in_flight"`
	Queued   int64 `json:"queued"`
}

// statusRecent is how many transitions and supervision events status
// prints.
const statusRecent = 8

// ExitCode is the report's exit code: 0 ok, 1 degraded, 2 down.
func (r StatusReport) ExitCode() int {
	switch r.Status {
	case messages.HealthOK:
		return StatusExitOK
	case messages.HealthDegraded:
		return StatusExitDegraded
	}
	return StatusExitDown
}

// Status prints the system's picture once (or every Watch until ctx ends)
// and returns an *ExitError unless it is ok (with Watch: nil when ctx
// ends, whatever the last picture said).
func Status(ctx context.Context, cfg StatusConfig, out io.Writer) error {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	source, closeSource, err := statusSource(cfg)
	if err != nil {
		return &ExitError{Code: StatusExitDown, Err: err}
	}
	defer closeSource()
	if cfg.Watch <= 0 {
		rep := source(ctx)
		if err := printStatus(out, rep, cfg.JSON); err != nil {
			return err
		}
		return statusExit(rep)
	}
	t := time.NewTicker(cfg.Watch)
	defer t.Stop()
	for {
		rep := source(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if !cfg.JSON {
			fmt.Fprint(out, "\033[H\033[2J") // redraw from the top
		}
		if err := printStatus(out, rep, cfg.JSON); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func statusExit(rep StatusReport) error {
	switch code := rep.ExitCode(); code {
	case StatusExitOK:
		return nil
	case StatusExitDegraded:
		return &ExitError{Code: code, Err: errors.New("degraded: " + strings.Join(notOK(rep), "; "))}
	default:
		msg := rep.Error
		if msg == "" {
			msg = strings.Join(notOK(rep), "; ")
		}
		return &ExitError{Code: code, Err: errors.New("down: " + msg)}
	}
}

// notOK names each role that is not ok and why.
func notOK(rep StatusReport) []string {
	var out []string
	for _, name := range roleOrder(rep.Roles) {
		h := rep.Roles[name]
		if h.Status == messages.HealthOK && health.Status(h.Dependencies, h.CircuitBreakers) == messages.HealthOK {
			continue
		}
		var why []string
		for _, d := range sortedKeys(h.Dependencies) {
			if h.Dependencies[d].Status != messages.HealthUp {
				why = append(why, d+" "+h.Dependencies[d].Status)
			}
		}
		for _, b := range sortedKeys(h.CircuitBreakers) {
			if h.CircuitBreakers[b].State == messages.BreakerOpen {
				why = append(why, b+" open")
			}
		}
		s := name + " " + h.Status
		if len(why) > 0 {
			s += " (" + strings.Join(why, ", ") + ")"
		}
		out = append(out, s)
	}
	return out
}

// statusSource returns the function that takes one picture.
func statusSource(cfg StatusConfig) (func(context.Context) StatusReport, func(), error) {
	if cfg.NATSURL == "" {
		base := strings.TrimRight(cmp.Or(cfg.URL, "http://127.0.0.1:8000"), "/")
		client := &http.Client{Timeout: cfg.Timeout}
		return func(ctx context.Context) StatusReport {
			ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			return edgeStatus(ctx, client, base)
		}, func() {}, nil
	}
	subj, err := messages.NewSubjects(cfg.SubjectPrefix)
	if err != nil {
		return nil, nil, err
	}
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: cfg.NATSURL, Name: "sensorhub-status", Credentials: cfg.NATSCreds, TLS: cfg.NATSTLS, Logger: discardLogger()})
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context) StatusReport {
		ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		return natsStatus(ctx, nc, subj, cfg.NATSURL)
	}, nc.Close, nil
}

// edgeStatus is the edge's view: GET /health and GET /kafka/stats.
func edgeStatus(ctx context.Context, client *http.Client, base string) StatusReport {
	rep := StatusReport{Source: "edge " + base, At: time.Now().UTC()}
	var h messages.EdgeHealth
	if err := getJSON(ctx, client, base+"/health", &h); err != nil {
		rep.Status, rep.Error = StatusDown, "the edge at "+base+" cannot be reached: "+err.Error()
		return rep
	}
	rep.Roles, rep.Breakers = h.Services, h.CircuitBreakers
	var st messages.BridgeStats
	if err := getJSON(ctx, client, base+"/kafka/stats", &st); err != nil {
		rep.FlowError = err.Error()
	} else {
		rep.Flow = &st
	}
	// The dashboard's picture (an edge without it answers 404: its
	// figures are then left out).
	var snap dashboard.Snapshot
	if getJSON(ctx, client, base+"/ui/state", &snap) == nil && snap.State != nil {
		ds := snap.State
		rep.Instances = map[string][]string{}
		for _, r := range ds.Roles {
			for _, in := range r.Instances {
				rep.Instances[r.Name] = append(rep.Instances[r.Name], in.ID)
			}
		}
		if ds.Flow.InFlight != nil && ds.Flow.Queued != nil {
			rep.Pipeline = &StatusPipeline{InFlight: *ds.Flow.InFlight, Queued: *ds.Flow.Queued}
		}
		rep.Transitions = ds.Transitions[:min(len(ds.Transitions), statusRecent)]
		rep.Supervision = ds.Supervision[:min(len(ds.Supervision), statusRecent)]
	}
	rep.Status = systemStatus(h.Status, rep.Roles)
	return rep
}

// systemStatus is the summary of the roles, or down when none answered.
func systemStatus(summary string, roles map[string]messages.HealthReply) string {
	for _, r := range messages.Roles {
		if h, ok := roles[r]; ok && h.Status != messages.HealthDown {
			return summary
		}
	}
	return StatusDown
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		if e, derr := messages.DecodeError(body); derr == nil {
			return fmt.Errorf("GET %s: %d %w", url, resp.StatusCode, e)
		}
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// natsStatus is NATS' view: every role's health subject (no answer:
// down), the bridge tier's stats and the instances micro discovery finds.
func natsStatus(ctx context.Context, nc *nats.Conn, subj messages.Subjects, url string) StatusReport {
	rep := StatusReport{Source: "nats " + url, At: time.Now().UTC()}
	if err := natsx.WaitConnected(ctx, nc); err != nil {
		why := err.Error()
		if last := nc.LastError(); last != nil {
			why = last.Error()
		}
		rep.Status, rep.Error = StatusDown, "NATS at "+url+" cannot be reached: "+why
		return rep
	}
	replies := make([]messages.HealthReply, len(messages.Roles))
	var wg sync.WaitGroup
	for i, role := range messages.Roles {
		wg.Go(func() {
			var h messages.HealthReply
			if _, err := natsx.Request(ctx, nc, subj.Health(role), nil, nil, &h); err != nil {
				h = messages.HealthReply{Status: messages.HealthDown, Dependencies: map[string]messages.DependencyHealth{},
					CircuitBreakers: map[string]messages.BreakerHealth{}}
			}
			h.Role = role
			replies[i] = h
		})
	}
	wg.Go(func() {
		var st messages.BridgeStats
		if _, err := natsx.Request(ctx, nc, subj.BridgeStats(), nil, nil, &st); err != nil {
			rep.FlowError = err.Error()
			return
		}
		rep.Flow = &st
	})
	wg.Go(func() { discover(ctx, nc, subj, &rep) })
	wg.Wait()
	rep.Roles = map[string]messages.HealthReply{}
	rep.Breakers = map[string]messages.BreakerHealth{}
	for _, h := range replies {
		rep.Roles[h.Role] = h
		for name, b := range h.CircuitBreakers {
			rep.Breakers[name] = b
		}
	}
	rep.Status = systemStatus(health.Summary(replies...), rep.Roles)
	return rep
}

// discover asks every role's $SRV.STATS (for at most 500 ms, less once
// the answers stop for 100 ms) and fills in rep's instances, the sensor
// role's pipeline and the latest transitions and supervision events, from
// the health endpoint's data of each instance.
func discover(ctx context.Context, nc *nats.Conn, subj messages.Subjects, rep *StatusReport) {
	gathered := make([][][]byte, len(messages.Services))
	var wg sync.WaitGroup
	for i, role := range messages.Services {
		wg.Go(func() {
			gathered[i] = natsx.Gather(ctx, nc, subj.ServiceStats(role), 500*time.Millisecond, 100*time.Millisecond)
		})
	}
	wg.Wait()
	rep.Instances = map[string][]string{}
	var pipeline StatusPipeline
	var flows int
	for i, role := range messages.Services {
		for _, data := range gathered[i] {
			var st micro.Stats
			if json.Unmarshal(data, &st) != nil || st.ID == "" {
				continue
			}
			rep.Instances[role] = append(rep.Instances[role], st.ID)
			for _, ep := range st.Endpoints {
				var h messages.HealthStats
				if ep.Name != "health" || len(ep.Data) == 0 || json.Unmarshal(ep.Data, &h) != nil {
					continue
				}
				rep.Transitions = append(rep.Transitions, h.BreakerTransitions...)
				for _, e := range h.Supervision {
					rep.Supervision = append(rep.Supervision, dashboard.Supervision{Role: role, SupervisionEvent: e})
				}
				if h.Flow != nil {
					pipeline.InFlight += h.Flow.InFlight
					pipeline.Queued += h.Flow.Queued
					flows++
				}
			}
		}
		slices.Sort(rep.Instances[role])
	}
	if flows > 0 {
		rep.Pipeline = &pipeline
	}
	slices.SortStableFunc(rep.Transitions, func(a, b messages.BreakerTransition) int { return b.At.Compare(a.At) })
	slices.SortStableFunc(rep.Supervision, func(a, b dashboard.Supervision) int { return b.At.Compare(a.At) })
	rep.Transitions = rep.Transitions[:min(len(rep.Transitions), statusRecent)]
	rep.Supervision = rep.Supervision[:min(len(rep.Supervision), statusRecent)]
}

func roleOrder(roles map[string]messages.HealthReply) []string {
	order := append(slices.Clone(messages.Roles), messages.RoleEdge)
	var out []string
	for _, r := range order {
		if _, ok := roles[r]; ok {
			out = append(out, r)
		}
	}
	for _, r := range sortedKeys(roles) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func printStatus(out io.Writer, rep StatusReport, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, string(b))
		return err
	}
	fmt.Fprintf(out, "sensorhub %s  (%s, %s)\n", strings.ToUpper(rep.Status), rep.Source, rep.At.Format(time.RFC3339))
	if rep.Error != "" {
		fmt.Fprintf(out, "  %s\n", rep.Error)
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nROLE\tSTATUS\tINSTANCES\tDEPENDENCIES")
	for _, name := range roleOrder(rep.Roles) {
		h := rep.Roles[name]
		inst := strings.Join(rep.Instances[name], ",")
		if inst == "" {
			inst = h.Instance
		}
		if inst == "" {
			inst = "-"
		}
		var deps []string
		for _, d := range sortedKeys(h.Dependencies) {
			dep := h.Dependencies[d]
			s := d + " " + dep.Status
			if dep.Status != messages.HealthUp && dep.LastError != "" {
				s += " (" + truncate(dep.LastError, 60) + ")"
			}
			deps = append(deps, s)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, h.Status, inst, strings.Join(deps, ", "))
	}
	if len(rep.Breakers) > 0 {
		fmt.Fprintln(w, "\nBREAKER\tSTATE\tREQUESTS\tSUCCESSES\tFAILURES\tIN A ROW")
		for _, name := range sortedKeys(rep.Breakers) {
			b := rep.Breakers[name]
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\n", name, b.State, b.Requests, b.TotalSuccesses, b.TotalFailures, b.ConsecutiveFailures)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nFLOW")
	if e, ok := rep.Roles[messages.RoleEdge]; ok && e.Requests != nil {
		fmt.Fprintf(out, "  edge requests in flight   %d of %d (refused overloaded: %d)\n", e.Requests.InFlight, e.Requests.MaxConcurrent, e.Requests.Overloaded)
		if r := e.Requests; r.QueueTargetMS > 0 {
			fmt.Fprintf(out, "  edge submissions          %d of limit %d, target %gms (refused past the limit: %d)\n", r.SubmitInFlight, r.SubmitLimit, r.QueueTargetMS, r.SubmitOverloaded)
		}
	}
	if p := rep.Pipeline; p != nil {
		fmt.Fprintf(out, "  sensor in flight, queued  %d, %d\n", p.InFlight, p.Queued)
	}
	if f := rep.Flow; f != nil {
		backlog := fmt.Sprint(f.OutboxBacklog)
		if f.OutboxBacklog < 0 {
			backlog = "unknown (no sensor role answered)"
		}
		fmt.Fprintf(out, "  outbox backlog            %s\n", backlog)
		fmt.Fprintf(out, "  SENSOR_EVENTS queued      %d\n", f.Queued)
		fmt.Fprintf(out, "  delivered to Kafka        %d (%s)\n", f.Successful, f.SuccessfulFrom)
		fmt.Fprintf(out, "  dead letters              %d\n", f.DeadLettered)
		fmt.Fprintf(out, "  kafka breaker             %s, reachable %t, %d bridge(s)\n", f.Breaker, f.KafkaReachable, len(f.Instances))
		if f.LastError != "" {
			fmt.Fprintf(out, "  last bridge error         %s\n", truncate(f.LastError, 100))
		}
	} else {
		fmt.Fprintf(out, "  no bridge stats: %s\n", rep.FlowError)
	}
	if len(rep.Transitions) > 0 {
		fmt.Fprintln(out, "\nLATEST BREAKER TRANSITIONS")
		for _, tr := range rep.Transitions {
			fmt.Fprintf(out, "  %s  %-22s %s -> %s\n", tr.At.Format(time.TimeOnly), tr.Breaker, tr.From, tr.To)
		}
	}
	if len(rep.Supervision) > 0 {
		fmt.Fprintln(out, "\nLATEST SUPERVISION EVENTS")
		for _, e := range rep.Supervision {
			fmt.Fprintf(out, "  %s  %-24s %-8s %s\n", e.At.Format(time.TimeOnly), e.Actor, e.Directive, truncate(e.Reason, 80))
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
