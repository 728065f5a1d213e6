package metrics

import (
	"context"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
)

// funcCollector is a collector whose samples a function produces at scrape
// time from state kept elsewhere.
type funcCollector struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

func desc(role, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, roleLabels(role))
}

// Breakers registers every breaker of sets (read at scrape time) as the
// one-hot gauge sensorhub_circuit_breaker_state{breaker,state} and the
// counter sensorhub_circuit_breaker_transitions_total{breaker,from,to}. A
// breaker in several sets is reported once.
func (r *Registry) Breakers(role string, sets ...*breaker.Set) {
	state := desc(role, "circuit_breaker_state",
		"1 for the state the circuit breaker is in (closed, half-open, open), 0 for the others.", "breaker", "state")
	transitions := desc(role, "circuit_breaker_transitions_total",
		"State changes of the circuit breaker since the process started, by the states it left and entered.", "breaker", "from", "to")
	r.register(role, &funcCollector{descs: []*prometheus.Desc{state, transitions}, collect: func(ch chan<- prometheus.Metric) {
		seen := map[string]bool{}
		for _, set := range sets {
			for _, b := range set.Breakers() {
				if seen[b.Name()] {
					continue
				}
				seen[b.Name()] = true
				cur := b.State()
				for _, s := range breaker.States() {
					v := 0.0
					if s == cur {
						v = 1
					}
					ch <- prometheus.MustNewConstMetric(state, prometheus.GaugeValue, v, b.Name(), s)
				}
				for _, t := range b.Transitions() {
					ch <- prometheus.MustNewConstMetric(transitions, prometheus.CounterValue, float64(t.Count), b.Name(), t.From, t.To)
				}
			}
		}
	}})
}

// Supervision registers the supervision decisions of tallies (read at
// scrape time) as sensorhub_supervisor_restarts_total{actor,directive}:
// every failure a supervisor handled, by the actor's name path and the
// directive it chose (restart, resume, stop, escalate).
func (r *Registry) Supervision(role string, tallies ...func() map[supervise.Decision]uint64) {
	d := desc(role, "supervisor_restarts_total",
		"Actor failures handled by a supervisor since the process started, by actor name path and the directive chosen.", "actor", "directive")
	r.register(role, &funcCollector{descs: []*prometheus.Desc{d}, collect: func(ch chan<- prometheus.Metric) {
		sum := map[supervise.Decision]uint64{}
		for _, t := range tallies {
			for k, v := range t() {
				sum[k] += v
			}
		}
		keys := make([]supervise.Decision, 0, len(sum))
		for k := range sum {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			return keys[i].Actor < keys[j].Actor || keys[i].Actor == keys[j].Actor && keys[i].Directive < keys[j].Directive
		})
		for _, k := range keys {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(sum[k]), k.Actor, k.Directive)
		}
	}})
}

// SensorCounts are the sensor role's figures (sensor.Counts converts to
// it): counters since the role started, gauges of the moment.
type SensorCounts struct {
	Accepted                                    uint64
	Refused                                     map[string]uint64
	Completed, Failed                           uint64
	InFlight, Queued, Completing, InFlightBytes int64
	OutboxBacklog                               int64 // -1: not counted
}

// Sensor registers the sensor role's test counters and pipeline gauges,
// read from counts at scrape time.
func (r *Registry) Sensor(role string, counts func() SensorCounts) {
	accepted := desc(role, "tests_accepted_total", "Submissions accepted (answered processing).")
	refused := desc(role, "tests_refused_total", "Submissions refused, by error code.", "code")
	completed := desc(role, "tests_completed_total", "Tests whose completed verdict this process committed.")
	failed := desc(role, "tests_failed_total", "Tests this process committed as failed.")
	inFlight := desc(role, "pipeline_in_flight", "Submissions received and not yet answered.")
	queued := desc(role, "pipeline_queued", "Tests handed to the processor pool and not yet out of it.")
	completing := desc(role, "pipeline_completing", "Completions sent to the store writer and not yet committed.")
	bytes := desc(role, "pipeline_bytes", "Bytes the submissions in flight and the queued tests hold.")
	backlog := desc(role, "outbox_backlog", "Events in the outbox waiting to be published to JetStream, as last counted (every second).")
	r.register(role, &funcCollector{
		descs: []*prometheus.Desc{accepted, refused, completed, failed, inFlight, queued, completing, bytes, backlog},
		collect: func(ch chan<- prometheus.Metric) {
			c := counts()
			ch <- prometheus.MustNewConstMetric(accepted, prometheus.CounterValue, float64(c.Accepted))
			codes := make([]string, 0, len(c.Refused))
			for code := range c.Refused {
				codes = append(codes, code)
			}
			sort.Strings(codes)
			for _, code := range codes {
				ch <- prometheus.MustNewConstMetric(refused, prometheus.CounterValue, float64(c.Refused[code]), code)
			}
			ch <- prometheus.MustNewConstMetric(completed, prometheus.CounterValue, float64(c.Completed))
			ch <- prometheus.MustNewConstMetric(failed, prometheus.CounterValue, float64(c.Failed))
			ch <- prometheus.MustNewConstMetric(inFlight, prometheus.GaugeValue, float64(c.InFlight))
			ch <- prometheus.MustNewConstMetric(queued, prometheus.GaugeValue, float64(c.Queued))
			ch <- prometheus.MustNewConstMetric(completing, prometheus.GaugeValue, float64(c.Completing))
			ch <- prometheus.MustNewConstMetric(bytes, prometheus.GaugeValue, float64(c.InFlightBytes))
			if c.OutboxBacklog >= 0 {
				ch <- prometheus.MustNewConstMetric(backlog, prometheus.GaugeValue, float64(c.OutboxBacklog))
			}
		},
	})
}

// BridgeCounts are the bridge's relay counters (bridge.Counts converts to it).
type BridgeCounts struct {
	Successful, Failed, DeadLettered uint64
	Held                             int64
}

// ConsumerLag is the bridge's durable consumer's state (bridge.Lag
// converts to it).
type ConsumerLag struct {
	Pending, AckPending, Redelivered uint64
}

// lagTimeout bounds the consumer info call of one scrape.
const lagTimeout = time.Second

// Bridge registers the bridge's event counters (by result) and its
// consumer's lag. counts is read from memory; lag asks JetStream, under a
// second's deadline: when it fails, the lag series are left out of that
// scrape.
func (r *Registry) Bridge(role string, counts func() BridgeCounts, lag func(ctx context.Context) (ConsumerLag, error)) {
	events := desc(role, "bridge_events_total", "Events relayed from JetStream, by result (successful: written to Kafka; failed: a failed write; dead_lettered).", "result")
	held := desc(role, "bridge_events_held", "Events this bridge fetched and has not yet acknowledged.")
	pending := desc(role, "bridge_consumer_pending", "Events of SENSOR_EVENTS not yet delivered to any bridge.")
	ackPending := desc(role, "bridge_consumer_ack_pending", "Events delivered to a bridge and not yet acknowledged.")
	redelivered := desc(role, "bridge_consumer_redelivered", "Events delivered more than once and not yet acknowledged.")
	r.register(role, &funcCollector{
		descs: []*prometheus.Desc{events, held, pending, ackPending, redelivered},
		collect: func(ch chan<- prometheus.Metric) {
			c := counts()
			ch <- prometheus.MustNewConstMetric(events, prometheus.CounterValue, float64(c.Successful), "successful")
			ch <- prometheus.MustNewConstMetric(events, prometheus.CounterValue, float64(c.Failed), "failed")
			ch <- prometheus.MustNewConstMetric(events, prometheus.CounterValue, float64(c.DeadLettered), "dead_lettered")
			ch <- prometheus.MustNewConstMetric(held, prometheus.GaugeValue, float64(c.Held))
			ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
			defer cancel()
			l, err := lag(ctx)
			if err != nil {
				return
			}
			ch <- prometheus.MustNewConstMetric(pending, prometheus.GaugeValue, float64(l.Pending))
			ch <- prometheus.MustNewConstMetric(ackPending, prometheus.GaugeValue, float64(l.AckPending))
			ch <- prometheus.MustNewConstMetric(redelivered, prometheus.GaugeValue, float64(l.Redelivered))
		},
	})
}

// EdgeAdmission is the edge's adaptive submission limit (edge.Admission
// converts to it).
type EdgeAdmission struct {
	Limit, InFlight, Refused int64
	MinLatency, Target       time.Duration
}

// EdgeAdmission registers the edge's adaptive submission limit, read from
// admission at scrape time: the limit and the submissions in flight under
// it, the submissions refused past it, and the least latency of the last
// interval it judged.
func (r *Registry) EdgeAdmission(role string, admission func() EdgeAdmission) {
	limit := desc(role, "edge_submit_limit", "Submissions the edge admits at once now: the adaptive limit, at most its max concurrent requests.")
	inFlight := desc(role, "edge_submit_in_flight", "Submissions admitted by the edge and not yet answered.")
	refused := desc(role, "edge_submit_overloaded_total", "Submissions refused 503 overloaded past the adaptive limit since the edge started.")
	minLat := desc(role, "edge_submit_min_latency_seconds", "The least latency of the submissions answered in the last interval the adaptive limit judged.")
	r.register(role, &funcCollector{
		descs: []*prometheus.Desc{limit, inFlight, refused, minLat},
		collect: func(ch chan<- prometheus.Metric) {
			a := admission()
			ch <- prometheus.MustNewConstMetric(limit, prometheus.GaugeValue, float64(a.Limit))
			ch <- prometheus.MustNewConstMetric(inFlight, prometheus.GaugeValue, float64(a.InFlight))
			ch <- prometheus.MustNewConstMetric(refused, prometheus.CounterValue, float64(a.Refused))
			ch <- prometheus.MustNewConstMetric(minLat, prometheus.GaugeValue, a.MinLatency.Seconds())
		},
	})
}
