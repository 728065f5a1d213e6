package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"sensorhub/internal/breaker"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// clock is a settable time for the since-when bookkeeping.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newTracker(t *testing.T) (*Tracker, *clock, *testenv.Buffer) {
	t.Helper()
	logs := &testenv.Buffer{}
	tr := New(messages.RoleSensor, slog.New(slog.NewTextHandler(logs, nil)), nil)
	c := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	tr.now = c.now
	return tr, c, logs
}

func TestTrackerBookkeeping(t *testing.T) {
	errRefused := errors.New("connection refused")
	errTimeout := errors.New("i/o timeout")
	type step struct {
		advance   time.Duration
		err       error
		wantUp    bool
		wantErr   string
		wantSince time.Duration // since the start
		wantLog   string        // the message logged by this step, "" for none
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first check up is no news", []step{
			{advance: time.Second, wantUp: true, wantSince: time.Second},
			{advance: time.Second, wantUp: true, wantSince: time.Second},
		}},
		{"first check down is news", []step{
			{advance: time.Second, err: errRefused, wantErr: errRefused.Error(), wantSince: time.Second, wantLog: "dependency lost"},
		}},
		{"lost and regained", []step{
			{advance: time.Second, wantUp: true, wantSince: time.Second},
			{advance: time.Second, err: errRefused, wantErr: errRefused.Error(), wantSince: 2 * time.Second, wantLog: "dependency lost"},
			// Still down with another error: the error follows, the since does not, no new line.
			{advance: time.Second, err: errTimeout, wantErr: errTimeout.Error(), wantSince: 2 * time.Second},
			{advance: time.Second, wantUp: true, wantSince: 4 * time.Second, wantLog: "dependency regained"},
			{advance: time.Second, wantUp: true, wantSince: 4 * time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, c, logs := newTracker(t)
			start := c.t
			dep := tr.Dependency("database")
			if h := tr.Dependencies()["database"]; h.Status != messages.HealthDown || h.LastError != ErrNotChecked.Error() || !h.Since.Equal(start) {
				t.Fatalf("before any check: %+v", h)
			}
			for i, s := range tt.steps {
				before := logs.String()
				c.advance(s.advance)
				dep.Set(s.err)
				h := tr.Dependencies()["database"]
				wantStatus := messages.HealthDown
				if s.wantUp {
					wantStatus = messages.HealthUp
				}
				if h.Status != wantStatus || h.LastError != s.wantErr || h.Since == nil || !h.Since.Equal(start.Add(s.wantSince)) {
					t.Fatalf("step %d: %+v, want %s, error %q, since +%v", i, h, wantStatus, s.wantErr, s.wantSince)
				}
				if dep.Up() != s.wantUp {
					t.Fatalf("step %d: Up = %v", i, dep.Up())
				}
				logged := strings.TrimPrefix(logs.String(), before)
				if s.wantLog == "" && logged != "" {
					t.Fatalf("step %d logged %q, want nothing", i, logged)
				}
				if s.wantLog != "" && (strings.Count(logged, "\n") != 1 || !strings.Contains(logged, `msg="`+s.wantLog+`"`) || !strings.Contains(logged, "dependency=database")) {
					t.Fatalf("step %d logged %q, want one %q line", i, logged, s.wantLog)
				}
			}
		})
	}
}

func TestTrackerReport(t *testing.T) {
	var set breaker.Set
	b := set.Add(breaker.New("sensor.database", breaker.Config{Failures: 1, OpenFor: time.Hour}, nil, slog.New(slog.DiscardHandler)))
	tr := New(messages.RoleSensor, slog.New(slog.DiscardHandler), &set)
	tr.Set("database", nil)
	tr.Set("nats", nil)
	if r := tr.Report("i-1"); r.Role != messages.RoleSensor || r.Instance != "i-1" || r.Status != messages.HealthOK ||
		len(r.Dependencies) != 2 || r.CircuitBreakers["sensor.database"].State != messages.BreakerClosed {
		t.Fatalf("all up: %+v", r)
	}
	// The breaker opens; the dependency answers a direct check again. The
	// role is still degraded: the breaker refuses calls.
	_ = b.Do(t.Context(), func(context.Context) error { return errors.New("refused") })
	if r := tr.Report(""); r.Status != messages.HealthDegraded || r.CircuitBreakers["sensor.database"].State != messages.BreakerOpen {
		t.Fatalf("breaker open: %+v", r)
	}
	if r := New(messages.RoleAuth, nil, nil).Report(""); r.Status != messages.HealthOK || r.CircuitBreakers == nil || r.Dependencies == nil {
		t.Fatalf("empty: %+v", r)
	}
}

func TestTrackerConcurrent(t *testing.T) {
	logs := &testenv.Buffer{}
	tr := New(messages.RoleBridge, slog.New(slog.NewTextHandler(logs, nil)), &breaker.Set{})
	var wg sync.WaitGroup
	for i := range 8 {
		name := fmt.Sprintf("dep-%d", i%3)
		wg.Go(func() {
			d := tr.Dependency(name)
			for j := range 200 {
				var err error
				if j%2 == 1 {
					err = errors.New("down")
				}
				d.Set(err)
				_ = d.Up()
				_ = tr.Report("")
			}
			d.Set(nil)
		})
	}
	wg.Wait()
	r := tr.Report("")
	if r.Status != messages.HealthOK || len(r.Dependencies) != 3 {
		t.Fatalf("after every writer ended up: %+v", r)
	}
	// One line per change: as many lost as regained lines, per dependency.
	for _, n := range []string{"dep-0", "dep-1", "dep-2"} {
		lost := strings.Count(logs.String(), `msg="dependency lost" dependency=`+n)
		regained := strings.Count(logs.String(), `msg="dependency regained" dependency=`+n)
		if lost == 0 || lost != regained {
			t.Errorf("%s: %d lost, %d regained lines", n, lost, regained)
		}
	}
}
