package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sensorhub/internal/natsx"
)

// maxSubjects bounds the subjects labelled one by one; requests to more
// are labelled SubjectOther. sensorhub's requests go to a fixed set of
// subjects (messages.Subjects, no ids in them), so this is only a guard.
const maxSubjects = 64

// SubjectOther labels requests past maxSubjects distinct subjects.
const SubjectOther = "other"

// outcomes are natsx's request outcomes, in a fixed order.
var outcomes = []string{natsx.OutcomeOK, natsx.OutcomeError, natsx.OutcomeNoResponders,
	natsx.OutcomeTimeout, natsx.OutcomeNotConnected, natsx.OutcomeFailed}

// NATS counts the NATS requests a role makes, by subject and outcome, with
// a latency histogram by subject. It is a natsx.RequestObserver.
type NATS struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// subjects is copied on write (a new subject, a handful per process),
	// so that a request reads it without a lock.
	subjects atomic.Pointer[map[string]*subjectMetrics]
	mu       sync.Mutex // serialises writers
}

type subjectMetrics struct {
	duration prometheus.Observer
	outcome  []prometheus.Counter // by index in outcomes
}

var _ natsx.RequestObserver = (*NATS)(nil)

// NATS registers the NATS request metrics of role.
func (r *Registry) NATS(role string) *NATS {
	n := &NATS{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "nats", Name: "requests_total",
			Help:        "NATS requests made, by subject and outcome (ok, error: the service answered with an error, no_responders, timeout, not_connected, failed).",
			ConstLabels: roleLabels(role),
		}, []string{"subject", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "nats", Name: "request_duration_seconds",
			Help:        "Time from sending a NATS request to its reply (or failure), by subject.",
			ConstLabels: roleLabels(role),
			Buckets:     durationBuckets,
		}, []string{"subject"}),
	}
	empty := map[string]*subjectMetrics{}
	n.subjects.Store(&empty)
	r.register(role, n.requests)
	r.register(role, n.duration)
	return n
}

// ObserveRequest implements natsx.RequestObserver.
func (n *NATS) ObserveRequest(subject, outcome string, took time.Duration) {
	m := (*n.subjects.Load())[subject]
	if m == nil {
		m = n.add(subject)
	}
	m.duration.Observe(took.Seconds())
	for i, o := range outcomes {
		if o == outcome {
			m.outcome[i].Inc()
			return
		}
	}
	m.outcome[len(outcomes)-1].Inc()
}

func (n *NATS) add(subject string) *subjectMetrics {
	n.mu.Lock()
	defer n.mu.Unlock()
	cur := *n.subjects.Load()
	if m := cur[subject]; m != nil {
		return m
	}
	label := subject
	if len(cur) >= maxSubjects {
		if m := cur[SubjectOther]; m != nil {
			return m
		}
		label = SubjectOther
	}
	m := &subjectMetrics{duration: n.duration.WithLabelValues(label)}
	for _, o := range outcomes {
		m.outcome = append(m.outcome, n.requests.WithLabelValues(label, o))
	}
	next := make(map[string]*subjectMetrics, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[label] = m
	n.subjects.Store(&next)
	return m
}
