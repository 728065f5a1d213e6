package bench

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// Defaults of Config.
const (
	DefaultURL                 = "http://127.0.0.1:8000"
	DefaultSensor              = "temperature"
	DefaultWait                = 30 * time.Second
	DefaultTimeout             = 30 * time.Second
	DefaultPollWorkers         = 8
	DefaultPollInterval        = 250 * time.Millisecond
	DefaultBaselineDuration    = 5 * time.Second
	DefaultBaselineConcurrency = 64
	DefaultProgressInterval    = time.Second
	// DefaultConnections keeps the bench and an in-process baseline server
	// (two descriptors per connection) under a 20,000 open-files limit.
	DefaultConnections = 4000
)

// Config describes one bench run. Zero fields take the defaults; exactly
// one load shape is used: Burst when it is positive, else Rate for Duration.
type Config struct {
	// URL is the edge's base URL (default http://127.0.0.1:8000).
	URL string
	// Username and Password log the bench in, once.
	Username, Password string
	// Rate is the submissions started per second during Duration.
	Rate     int
	Duration time.Duration
	// Burst, when positive, starts that many submissions at once instead.
	Burst int
	// Sensor is the sensor type submitted (default temperature).
	Sensor string
	// Readings is the number of readings per submission; 0 sends no body,
	// so that the sensor role simulates an acquisition.
	Readings int
	// SensorIDs, above 1, has the submissions name that many sensors in
	// turn (bench-0, bench-1...), each with a body; 0 or 1: one sensor
	// (the default one without readings). The sensor role relays each
	// sensor's events in order, one JetStream round trip after the other,
	// so one sensor bounds the event rate where many do not.
	SensorIDs int
	// NATSURL, when set, follows completions through the events
	// (a core NATS subscription on <SubjectPrefix>.events.>, as Username:
	// an admin, since only admins may read every event); otherwise
	// they are polled with GET /test/{id} by PollWorkers workers.
	NATSURL string
	// NATSTLS turns on TLS to that NATS server (see natsx.TLSFiles).
	NATSTLS       natsx.TLSFiles
	SubjectPrefix string
	PollWorkers   int
	PollInterval  time.Duration
	// Wait bounds the wait for completions once the load has ended.
	Wait time.Duration
	// Timeout bounds one HTTP request of the load.
	Timeout time.Duration
	// Connections bounds the connections of the load (default
	// DefaultConnections); past it requests wait for a free one, and the
	// wait counts in their latency.
	Connections int
	// PIDs are the server processes whose memory is reported; when empty,
	// every other process named "sensorhub" is.
	PIDs []int
	// CPUProfileURL, when set, is the base URL of a server's
	// net/http/pprof (`sensorhub dev --pprof`): a CPU profile of it is
	// taken during the load, after a warm-up, and attributed to the
	// components of RunStats.CPUBudget. Not for a burst.
	CPUProfileURL string
	// Baseline also measures a bare in-process handler: under the same
	// load, and at full speed with BaselineConcurrency requests in flight
	// for BaselineDuration (the ceiling).
	Baseline            bool
	BaselineDuration    time.Duration
	BaselineConcurrency int
	// Progress, when set, gets a progress line every ProgressInterval;
	// ProgressTTY rewrites one line in place instead of printing new ones.
	Progress         io.Writer
	ProgressTTY      bool
	ProgressInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	c.URL = strings.TrimRight(c.URL, "/")
	// The base URL is also taken as dev --pprof's address, or as the pprof
	// index's URL that a browser shows.
	if c.CPUProfileURL != "" && !strings.Contains(c.CPUProfileURL, "://") {
		c.CPUProfileURL = "http://" + c.CPUProfileURL
	}
	c.CPUProfileURL = strings.TrimSuffix(strings.TrimRight(c.CPUProfileURL, "/"), "/debug/pprof")
	if c.Sensor == "" {
		c.Sensor = DefaultSensor
	}
	if c.Wait == 0 {
		c.Wait = DefaultWait
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.PollWorkers == 0 {
		c.PollWorkers = DefaultPollWorkers
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BaselineDuration == 0 {
		c.BaselineDuration = DefaultBaselineDuration
	}
	if c.BaselineConcurrency == 0 {
		c.BaselineConcurrency = DefaultBaselineConcurrency
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
}

// Validate refuses a configuration that cannot run. It expects the
// defaults applied.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url %q: want http://host:port", c.URL))
	}
	if c.CPUProfileURL != "" {
		if u, err := url.Parse(c.CPUProfileURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || strings.Contains(u.Path, "/debug/pprof") {
			errs = append(errs, fmt.Errorf("cpu profile url %q: want the base URL of net/http/pprof, http://host:port", c.CPUProfileURL))
		}
	}
	switch {
	case c.Burst < 0:
		errs = append(errs, errors.New("burst must not be negative"))
	case c.Burst == 0 && (c.Rate <= 0 || c.Duration <= 0):
		errs = append(errs, errors.New("want --rate and --duration above zero, or --burst N"))
	}
	if !messages.ValidSensorType(c.Sensor) {
		errs = append(errs, fmt.Errorf("sensor %q is not a sensor type", c.Sensor))
	}
	if c.SensorIDs < 0 || c.SensorIDs > 100_000 {
		errs = append(errs, fmt.Errorf("sensor ids must be 0 to 100000"))
	}
	if c.Readings < 0 || c.Readings > messages.MaxReadings {
		errs = append(errs, fmt.Errorf("readings must be 0 to %d", messages.MaxReadings))
	}
	if c.Wait < 0 || c.Timeout < 0 || c.PollInterval < 0 || c.BaselineDuration < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.PollWorkers < 1 || c.BaselineConcurrency < 1 || c.Connections < 1 {
		errs = append(errs, errors.New("poll workers, connections and baseline concurrency must be at least 1"))
	}
	if _, err := messages.NewSubjects(c.SubjectPrefix); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid bench config: %w", err)
	}
	return nil
}

// shape describes the load in words, for the report.
func (c Config) shape() string {
	if c.Burst > 0 {
		return fmt.Sprintf("burst of %d", c.Burst)
	}
	return fmt.Sprintf("%d/s for %s", c.Rate, c.Duration)
}
