package dashboard

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/latency"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// Page statuses of roles and instances.
const (
	StatusUp       = "up"
	StatusDegraded = "degraded"
	StatusDown     = "down"
)

// RoleOrder is the order of the roles on the page.
var RoleOrder = []string{messages.RoleAuth, messages.RoleSensor, messages.RoleBridge, messages.RoleEdge}

// shown bounds the supervision events and transitions a sample carries.
const shown = 20

// discoveryGap ends a discovery round once no instance answered for it.
const discoveryGap = 100 * time.Millisecond

// sampleMemory is what a sample needs of earlier ones: the counters of the
// previous (for the rates) and the latency snapshots of the last
// LatencyWindow (for the percentiles).
type sampleMemory struct {
	at                 time.Time
	accepted, refused  uint64
	kafka              uint64
	haveSensor, haveKB bool
	acceptance         []stamped
	completion         []stamped
	last               *State // the last sample that reached NATS
}

type stamped struct {
	at time.Time
	c  messages.LatencyCounts
}

// discovered is what $SRV.STATS told of one role.
type discovered struct {
	instances   []Instance
	breakers    map[string]messages.BreakerHealth
	supervision []messages.SupervisionEvent
	transitions []messages.BreakerTransition
	flows       []messages.SensorFlow
	bridges     []messages.BridgeInstance
}

// sample reads the system once: every role's health, every instance by
// micro discovery, and the bridge tier's stats, all at once and each
// within Timeout. Without NATS it asks nothing and repeats the last known
// picture, marked stale.
func (d *Dashboard) sample(ctx context.Context) *State {
	d.sampleMu.Lock()
	defer d.sampleMu.Unlock()
	now := time.Now().UTC()
	nc := d.cfg.Conn
	st := &State{At: now, Edge: EdgeConn{NATSConnected: nc.IsConnected(), NATSStatus: nc.Status().String()}}
	if !st.Edge.NATSConnected {
		st.Edge.Stale = true
		if last := d.prev.last; last != nil {
			st.Status, st.Roles, st.Breakers = last.Status, last.Roles, last.Breakers
			st.Supervision, st.Transitions, st.Latency = last.Supervision, last.Transitions, last.Latency
		}
		st.Flow = Point{At: now}
		return st
	}

	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var (
		wg       sync.WaitGroup
		health   messages.EdgeHealth
		found    = make([]discovered, len(messages.Services))
		tier     messages.BridgeStats
		tierErr  error
		gathered = make([][][]byte, len(messages.Services))
	)
	wg.Go(func() { health = d.cfg.Health(ctx) })
	for i, role := range messages.Services {
		wg.Go(func() {
			gathered[i] = natsx.Gather(ctx, nc, d.cfg.Subjects.ServiceStats(role), d.cfg.Timeout, discoveryGap)
		})
	}
	wg.Go(func() {
		_, tierErr = natsx.Request(ctx, nc, d.cfg.Subjects.BridgeStats(), messages.Empty{}, nil, &tier)
	})
	wg.Wait()
	for i := range messages.Services {
		found[i] = discover(gathered[i])
	}

	st.Status = health.Status
	st.Roles, st.Breakers = d.roles(health, found)
	st.Supervision, st.Transitions = d.events(found)
	st.Flow = d.flow(now, found, tier, tierErr)
	st.Latency = d.latencies(now, found)
	d.prev.last = st
	return st
}

// discover decodes the $SRV.STATS replies of one role's instances.
func discover(replies [][]byte) discovered {
	var out discovered
	out.breakers = map[string]messages.BreakerHealth{}
	for _, data := range replies {
		var s micro.Stats
		if json.Unmarshal(data, &s) != nil || s.ID == "" {
			continue
		}
		in := Instance{ID: s.ID, Version: s.Version, Started: s.Started, Status: StatusUp}
		for _, ep := range s.Endpoints {
			if len(ep.Data) == 0 {
				continue
			}
			switch ep.Name {
			case "health":
				var h messages.HealthStats
				if json.Unmarshal(ep.Data, &h) != nil {
					continue
				}
				for name, b := range h.CircuitBreakers {
					if b.State == messages.BreakerOpen {
						in.Status = StatusDegraded
					}
					// The worst state of any instance's breaker of a name.
					if prev, ok := out.breakers[name]; !ok || rank(b.State) > rank(prev.State) {
						out.breakers[name] = b
					}
				}
				out.supervision = append(out.supervision, h.Supervision...)
				out.transitions = append(out.transitions, h.BreakerTransitions...)
				if h.Flow != nil {
					out.flows = append(out.flows, *h.Flow)
				}
			case "stats":
				var b messages.BridgeInstance
				if json.Unmarshal(ep.Data, &b) == nil && b.ID != "" {
					out.bridges = append(out.bridges, b)
				}
			}
		}
		out.instances = append(out.instances, in)
	}
	slices.SortFunc(out.instances, func(a, b Instance) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func rank(state string) int {
	switch state {
	case messages.BreakerOpen:
		return 2
	case messages.BreakerHalfOpen:
		return 1
	}
	return 0
}

// pageStatus turns a health status into the page's up, degraded or down.
func pageStatus(health string) string {
	switch health {
	case messages.HealthOK, messages.HealthUp:
		return StatusUp
	case messages.HealthDown, "":
		return StatusDown
	}
	return StatusDegraded
}

// roles are the four roles with their instances, and every breaker: the
// health replies' (one instance of each role answers), and the discovered
// instances' for a role whose health did not answer.
func (d *Dashboard) roles(health messages.EdgeHealth, found []discovered) ([]Role, []Breaker) {
	breakers := map[string]messages.BreakerHealth{}
	for name, b := range health.CircuitBreakers {
		breakers[name] = b
	}
	var roles []Role
	for _, name := range RoleOrder {
		h, ok := health.Services[name]
		r := Role{Name: name, Status: StatusDown, Dependencies: h.Dependencies}
		if ok {
			r.Status = pageStatus(h.Status)
		}
		if i := slices.Index(messages.Roles, name); i >= 0 {
			r.Instances = found[i].instances
			if r.Status == StatusDown {
				for n, b := range found[i].breakers {
					if _, known := breakers[n]; !known {
						breakers[n] = b
					}
				}
			}
		} else if i := slices.Index(messages.Services, name); i >= 0 && len(found[i].instances) > 0 {
			// The edges, by discovery of sensorhub-edge.
			r.Instances = found[i].instances
		} else {
			in := Instance{ID: d.cfg.Instance, Status: StatusUp}
			if r.Status != StatusUp {
				in.Status = StatusDegraded
			}
			r.Instances = []Instance{in}
		}
		if r.Instances == nil {
			r.Instances = []Instance{}
		}
		if r.Dependencies == nil {
			r.Dependencies = map[string]messages.DependencyHealth{}
		}
		roles = append(roles, r)
	}
	out := make([]Breaker, 0, len(breakers))
	for name, b := range breakers {
		out = append(out, Breaker{Name: name, BreakerHealth: b})
	}
	slices.SortFunc(out, func(a, b Breaker) int { return cmp.Compare(a.Name, b.Name) })
	return roles, out
}

// events are the latest supervision events and breaker transitions of
// every instance and of the edge, newest first.
func (d *Dashboard) events(found []discovered) ([]Supervision, []messages.BreakerTransition) {
	sup := []Supervision{}
	tr := d.cfg.EdgeBreakers.Recent()
	for i, role := range messages.Roles {
		for _, ev := range found[i].supervision {
			sup = append(sup, Supervision{Role: role, SupervisionEvent: ev})
		}
		tr = append(tr, found[i].transitions...)
	}
	slices.SortStableFunc(sup, func(a, b Supervision) int { return b.At.Compare(a.At) })
	slices.SortStableFunc(tr, func(a, b messages.BreakerTransition) int { return b.At.Compare(a.At) })
	if tr == nil {
		tr = []messages.BreakerTransition{}
	}
	return sup[:min(len(sup), shown)], tr[:min(len(tr), shown)]
}

// flow is this sample's point: gauges as read, rates from the counters'
// change since the previous sample (a counter that went down, because an
// instance went away, counts from zero).
func (d *Dashboard) flow(now time.Time, found []discovered, tier messages.BridgeStats, tierErr error) Point {
	p := Point{At: now}
	mem := &d.prev
	dt := now.Sub(mem.at).Seconds()
	rate := func(cur, prev uint64, had bool) *float64 {
		if !had || dt <= 0 || mem.at.IsZero() {
			return nil
		}
		v := 0.0
		if cur > prev {
			v = float64(cur-prev) / dt
		}
		return &v
	}
	sensor := found[slices.Index(messages.Roles, messages.RoleSensor)]
	if len(sensor.flows) > 0 {
		var acc, ref uint64
		var inflight, queued, backlog int64
		for _, f := range sensor.flows {
			acc += f.Accepted
			ref += f.Refused
			inflight += f.InFlight
			queued += f.Queued
			backlog = max(backlog, f.OutboxBacklog) // one outbox, counted by each
		}
		p.AcceptedPerSec = rate(acc, mem.accepted, mem.haveSensor)
		p.RefusedPerSec = rate(ref, mem.refused, mem.haveSensor)
		p.InFlight, p.Queued = &inflight, &queued
		if backlog >= 0 {
			p.OutboxBacklog = &backlog
		}
		mem.accepted, mem.refused, mem.haveSensor = acc, ref, true
	} else {
		mem.haveSensor = false
	}
	bridges := found[slices.Index(messages.Roles, messages.RoleBridge)].bridges
	if len(bridges) > 0 {
		var ok uint64
		for _, b := range bridges {
			ok += b.Successful
		}
		p.KafkaPerSec = rate(ok, mem.kafka, mem.haveKB)
		mem.kafka, mem.haveKB = ok, true
	} else {
		mem.haveKB = false
	}
	if tierErr == nil {
		pending, dead := tier.Queued, tier.DeadLettered
		p.EventsPending, p.DeadLetters = &pending, &dead
		if p.OutboxBacklog == nil && tier.OutboxBacklog >= 0 {
			backlog := tier.OutboxBacklog
			p.OutboxBacklog = &backlog
		}
	}
	mem.at = now
	return p
}

// latencies are the percentiles over the last LatencyWindow: the
// difference between now's cumulative counts and those of a window ago.
func (d *Dashboard) latencies(now time.Time, found []discovered) Latency {
	var completion messages.LatencyCounts
	for _, f := range found[slices.Index(messages.Roles, messages.RoleSensor)].flows {
		completion = latency.Add(completion, f.CompletionLatency)
	}
	out := Latency{WindowSeconds: int(LatencyWindow / time.Second)}
	d.prev.acceptance, out.Acceptance = window(d.prev.acceptance, now, d.acceptance.Snapshot())
	d.prev.completion, out.Completion = window(d.prev.completion, now, completion)
	return out
}

// window appends cur to the snapshots, drops those older than
// LatencyWindow (keeping the oldest inside it as the base) and reads the
// percentiles of what was counted since that base.
func window(snaps []stamped, now time.Time, cur messages.LatencyCounts) ([]stamped, Percentiles) {
	snaps = append(snaps, stamped{at: now, c: cur})
	for len(snaps) > 1 && now.Sub(snaps[1].at) >= LatencyWindow {
		snaps = snaps[1:]
	}
	diff := latency.Sub(cur, snaps[0].c)
	ms := func(q float64) float64 { return float64(latency.Quantile(diff, q)) / float64(time.Millisecond) }
	return snaps, Percentiles{Count: latency.Total(diff), P50: ms(0.5), P90: ms(0.9), P99: ms(0.99)}
}
