package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteUnmatched labels requests that matched no route (404, 405).
const RouteUnmatched = "unmatched"

// HTTP counts an HTTP server's requests by route pattern and status code,
// with a latency histogram by route.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// HTTP registers the HTTP metrics of role (the edge).
func (r *Registry) HTTP(role string) *HTTP {
	h := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "http", Name: "requests_total",
			Help:        "HTTP requests answered, by route pattern and status code.",
			ConstLabels: roleLabels(role),
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:        "Time to answer an HTTP request, by route pattern.",
			ConstLabels: roleLabels(role),
			Buckets:     durationBuckets,
		}, []string{"route"}),
	}
	r.register(role, h.requests)
	r.register(role, h.duration)
	return h
}

// Route resolves the metrics of one route pattern, ahead of its requests.
func (h *HTTP) Route(pattern string) *Route {
	return &Route{route: pattern, requests: h.requests, duration: h.duration.WithLabelValues(pattern)}
}

// Route is one route's metrics. Observe takes no lock and allocates
// nothing once a status code has been seen on the route.
type Route struct {
	route    string
	requests *prometheus.CounterVec
	duration prometheus.Observer
	codes    [600]atomic.Pointer[counter]
}

type counter struct{ prometheus.Counter }

// Observe records one request answered with code after took.
func (rt *Route) Observe(code int, took time.Duration) {
	rt.duration.Observe(took.Seconds())
	if code < 100 || code >= len(rt.codes) {
		rt.requests.WithLabelValues(rt.route, strconv.Itoa(code)).Inc()
		return
	}
	c := rt.codes[code].Load()
	if c == nil {
		c = &counter{rt.requests.WithLabelValues(rt.route, strconv.Itoa(code))}
		rt.codes[code].Store(c) // a race stores the same child twice: harmless
	}
	c.Inc()
}
