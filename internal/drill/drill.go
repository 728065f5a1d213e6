// Package drill is `sensorhub drill`: the seed's four failure drills run
// on demand against a `dev --chaos`, through its chaos control
// (sensorhub.chaos.control) as admin and its HTTP edge as a user: auth
// stopped, Kafka stopped, the database cut, everything back. It prints each
// step and what a user saw, then checks that every test accepted during the
// drill was completed and every queued event delivered.
//
// It drives dev only through NATS and HTTP, as a person would; it never
// reads the database or Kafka itself (the bridge's stats say what reached
// Kafka). Whatever happens, including an interrupt, it starts again every
// part it stopped before it returns.
package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// Defaults of Config.
const (
	DefaultURL         = "http://localhost:8000"
	DefaultNATSURL     = "nats://127.0.0.1:4222"
	DefaultUsername    = "admin"
	DefaultPassword    = "admin123"
	DefaultSubmissions = 5
	DefaultStepTimeout = time.Minute
	DefaultWait        = 2 * time.Minute
	DefaultTimeout     = 15 * time.Second
	DefaultHold        = 2 * time.Second
	DefaultSensor      = "temperature"
)

// ErrFailed is returned when the drill ran but its verdict is FAIL: an
// accepted test not completed, an event not delivered, or a step where the
// user saw something else than the drill expects.
var ErrFailed = errors.New("drill failed")

// Config is what `sensorhub drill` is told.
type Config struct {
	// URL is the edge's base URL (default DefaultURL).
	URL string
	// NATSURL is dev's NATS server (default DefaultNATSURL). The drill
	// connects as Username through the auth callout, with the user's own
	// inbox prefix; only an admin may use the chaos control.
	NATSURL string
	NATSTLS natsx.TLSFiles
	// Username and Password log in over HTTP and on NATS (default dev's
	// admin/admin123).
	Username, Password string
	// SubjectPrefix of dev's subjects (default messages.DefaultPrefix).
	SubjectPrefix string
	// Sensor is the sensor type submitted (a simulated acquisition).
	Sensor string
	// Submissions per step (default DefaultSubmissions).
	Submissions int
	// StepTimeout bounds the wait for what a step expects to see (a breaker
	// opening, the database shown down, submissions accepted again).
	StepTimeout time.Duration
	// Wait bounds the final wait for every accepted test to complete and
	// every queued event to reach Kafka (default DefaultWait).
	Wait time.Duration
	// Timeout is the deadline of one HTTP request or chaos control call
	// (default DefaultTimeout).
	Timeout time.Duration
	// Hold is how long each step keeps its part away once it has shown
	// what a user sees, so that a dashboard can show it (0: none; the
	// command's default is DefaultHold).
	Hold time.Duration
	// Out receives the report as it goes (default io.Discard).
	Out io.Writer
	// HTTPClient, if set, makes the HTTP requests (tests).
	HTTPClient *http.Client
}

func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.NATSURL == "" {
		c.NATSURL = DefaultNATSURL
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = messages.DefaultPrefix
	}
	if c.Sensor == "" {
		c.Sensor = DefaultSensor
	}
	if c.Submissions <= 0 {
		c.Submissions = DefaultSubmissions
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = DefaultStepTimeout
	}
	if c.Wait <= 0 {
		c.Wait = DefaultWait
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
}

// Report is what the drill found.
type Report struct {
	// Accepted is every test accepted (202) during the drill; Completed
	// how many of them ended completed or failed (a verdict either way).
	Accepted  []string `json:"accepted"`
	Completed int      `json:"completed"`
	// EventsWritten is how many records Kafka gained during the drill
	// (the bridge's successful count, end minus start).
	EventsWritten uint64 `json:"events_written"`
	// Queued and OutboxBacklog are the events still waiting at the end.
	Queued        uint64 `json:"queued"`
	OutboxBacklog int64  `json:"outbox_backlog"`
	// Surprises are the steps where a user saw something else than the
	// drill expects.
	Surprises []string `json:"surprises,omitempty"`
	Pass      bool     `json:"pass"`
}

// targets the drill stops, in the order it brings them back.
var targets = []string{messages.ChaosTargetDatabase, messages.ChaosTargetKafka, messages.RoleAuth}

// Run runs the drill. It returns ErrFailed (wrapped) when it ran and the
// verdict is FAIL, another error when it could not run (dev unreachable,
// no --chaos, a wrong password, an interrupt).
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.setDefaults()
	subj, err := messages.NewSubjects(cfg.SubjectPrefix)
	if err != nil {
		return Report{}, err
	}
	tlsOpt, err := cfg.NATSTLS.Option()
	if err != nil {
		return Report{}, err
	}
	nc, err := nats.Connect(cfg.NATSURL, tlsOpt,
		nats.Name("sensorhub-drill"),
		nats.UserInfo(cfg.Username, cfg.Password),
		nats.CustomInboxPrefix(messages.InboxPrefix(cfg.Username)),
		// Longer than the server's wait for the auth callout (2 s).
		nats.Timeout(5*time.Second),
		nats.MaxReconnects(-1))
	if err != nil {
		return Report{}, fmt.Errorf("connect to NATS %s as %s: %w", cfg.NATSURL, cfg.Username, err)
	}
	defer nc.Close()
	d := &run{cfg: cfg, nc: nc, subject: subj.ChaosControl(), stopped: map[string]bool{}}
	// Whatever happens from here, bring back what the drill took away, on
	// a context of its own: an interrupt ends ctx, not the clean-up.
	defer d.restore()
	err = d.run(ctx)
	return d.rep, err
}

// restore starts every target the drill stopped and has not started.
func (d *run) restore() {
	var left []string
	for _, t := range targets {
		if d.stopped[t] {
			left = append(left, t)
		}
	}
	if len(left) == 0 {
		return
	}
	d.printf("\nbringing back what the drill stopped: %s\n", strings.Join(left, ", "))
	for _, t := range left {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
		if _, err := d.control(ctx, t, messages.ChaosActionStart); err != nil {
			d.printf("  could not start %s: %v (start it with: nats req %s '{\"target\":%q,\"action\":\"start\"}')\n", t, err, d.subject, t)
		} else {
			d.printf("  %s started\n", t)
		}
		cancel()
	}
}
