package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every sensorhub metric.
const Namespace = "sensorhub"

// DefaultListen is the default of --metrics-listen: no listener of its
// own (a role's metrics are off; dev and the edge serve them at GET
// /metrics on their HTTP port).
const DefaultListen = ""

// Path is where the metrics are served.
const Path = "/metrics"

// durationBuckets are the latency histograms' buckets, in seconds: 0.5 ms
// to about 8 s, doubling (the NATS requests, store calls and HTTP routes
// of sensorhub all fall in it).
var durationBuckets = prometheus.ExponentialBuckets(0.0005, 2, 15)

// Registry is a process's metrics.
type Registry struct {
	reg *prometheus.Registry

	mu     sync.Mutex
	byRole map[string][]prometheus.Collector // for Unregister
}

// New returns a registry with the Go runtime and process collectors and
// sensorhub_build_info{version,goversion,revision} = 1.
func New(version string) *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "build_info",
			Help:        "A constant 1, labelled with the binary's version, Go version and VCS revision.",
			ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version(), "revision": revision()},
		}, func() float64 { return 1 }),
	)
	return &Registry{reg: reg, byRole: map[string][]prometheus.Collector{}}
}

func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Handler serves the registry in the Prometheus text format. A collector
// that fails (the bridge's consumer info while JetStream is down) leaves
// its series out; the rest is served.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer is the registry, for tests.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// register adds c, role's, panicking on a conflict: the collectors of one
// role are registered once per start of the role, so a conflict is a
// wiring bug.
func (r *Registry) register(role string, c prometheus.Collector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reg.MustRegister(c)
	r.byRole[role] = append(r.byRole[role], c)
}

// Unregister removes every collector of role, when the role stops inside
// a process that goes on (`dev --chaos` stopping a role): its series are
// gone as a stopped process's would be, and the role started again
// registers its own, counting from zero like a new process.
func (r *Registry) Unregister(role string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.byRole[role] {
		r.reg.Unregister(c)
	}
	delete(r.byRole, role)
}

func roleLabels(role string) prometheus.Labels { return prometheus.Labels{"role": role} }
