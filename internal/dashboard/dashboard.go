package dashboard

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/breaker"
	"sensorhub/internal/latency"
	"sensorhub/messages"
)

// Defaults of Config.
const (
	DefaultInterval   = time.Second
	DefaultHistory    = 300 // five minutes at one sample a second
	DefaultMaxViewers = 32
	DefaultTimeout    = 800 * time.Millisecond
	// LatencyWindow is what the latency percentiles are computed over.
	LatencyWindow = time.Minute
)

// Config configures a Dashboard. Zero fields take the defaults.
type Config struct {
	// Conn is the edge's NATS connection: micro discovery and the bridge
	// tier's stats are asked over it, and its state is the banner's.
	Conn     *nats.Conn
	Subjects messages.Subjects
	// Health asks every role's health, as GET /health does (each role
	// within its own deadline).
	Health func(ctx context.Context) messages.EdgeHealth
	// EdgeBreakers are the edge's own breakers (their transitions).
	EdgeBreakers *breaker.Set
	// Instance names the serving edge among the instances.
	Instance string
	// Interval between samples while someone watches (default 1s).
	Interval time.Duration
	// History is how many samples the charts keep (default 300).
	History int
	// MaxViewers bounds the open streams (default 32); one more is
	// answered 503 overloaded.
	MaxViewers int
	// Timeout bounds each NATS call of a sample (default 800ms, and
	// never more than Interval).
	Timeout time.Duration
	Logger  *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	if c.MaxViewers <= 0 {
		c.MaxViewers = DefaultMaxViewers
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	c.Timeout = min(c.Timeout, c.Interval)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Instance == "" {
		c.Instance = "this edge"
	}
	if c.EdgeBreakers == nil {
		c.EdgeBreakers = &breaker.Set{}
	}
}

// Errors of a stream that cannot be opened.
var (
	// ErrClosed: the edge is shutting down.
	ErrClosed = errors.New("dashboard closed")
	// ErrTooManyViewers: MaxViewers streams are open.
	ErrTooManyViewers = errors.New("too many dashboard viewers")
)

// Dashboard samples the system while someone watches and streams the
// samples to every viewer. Its methods are safe for concurrent use.
type Dashboard struct {
	cfg Config
	// acceptance is the edge's submission latency, observed only while
	// someone watches (watching).
	acceptance latency.Histogram
	watching   atomic.Bool

	mu       sync.Mutex
	viewers  map[*viewer]struct{}
	closed   bool
	done     chan struct{} // closed by Close: every stream ends
	stop     context.CancelFunc
	loopDone chan struct{}
	latest   *State
	latestAt time.Time
	history  []Point // ring of cfg.History, oldest at histNext when full
	histNext int

	// sampleMu serializes samples (the loop and GET /ui/state) and guards
	// the sampler's memory of the previous sample.
	sampleMu sync.Mutex
	prev     sampleMemory
}

// viewer is one open stream: samples arrive on ch, already encoded; gone
// is closed when the dashboard drops it (too slow) or closes.
type viewer struct {
	ch   chan []byte
	gone chan struct{}
}

// viewerBuffer is how many samples a viewer may be behind before it is
// dropped (its browser reconnects and starts from the snapshot).
const viewerBuffer = 4

// New returns a dashboard; it samples nothing until a viewer comes.
func New(cfg Config) *Dashboard {
	cfg.setDefaults()
	return &Dashboard{
		cfg:     cfg,
		viewers: map[*viewer]struct{}{},
		done:    make(chan struct{}),
		history: make([]Point, 0, cfg.History),
	}
}

// Watching reports whether a viewer is connected. The edge measures the
// acceptance latency only then.
func (d *Dashboard) Watching() bool { return d.watching.Load() }

// ObserveAcceptance counts one accepted submission's latency, while
// someone watches.
func (d *Dashboard) ObserveAcceptance(took time.Duration) {
	if d.watching.Load() {
		d.acceptance.Observe(took)
	}
}

// Close ends every stream and the sampling; later streams are refused.
// The edge calls it when its HTTP server shuts down, so that open streams
// do not hold the shutdown.
func (d *Dashboard) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.done)
	for v := range d.viewers {
		delete(d.viewers, v)
		close(v.gone)
	}
	loopDone := d.stopLoopLocked()
	d.mu.Unlock()
	if loopDone != nil {
		<-loopDone
	}
}

// Viewers is how many streams are open.
func (d *Dashboard) Viewers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.viewers)
}

func (d *Dashboard) join() (*viewer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if len(d.viewers) >= d.cfg.MaxViewers {
		return nil, ErrTooManyViewers
	}
	v := &viewer{ch: make(chan []byte, viewerBuffer), gone: make(chan struct{})}
	d.viewers[v] = struct{}{}
	if d.stop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		d.stop, d.loopDone = cancel, make(chan struct{})
		d.watching.Store(true)
		go d.loop(ctx, d.loopDone)
	}
	return v, nil
}

func (d *Dashboard) leave(v *viewer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.viewers[v]; !ok {
		return
	}
	delete(d.viewers, v)
	close(v.gone)
	if len(d.viewers) == 0 {
		d.stopLoopLocked()
	}
}

// stopLoopLocked stops the sampling loop (d.mu held) and returns the
// channel closed when it has ended (nil when none ran).
func (d *Dashboard) stopLoopLocked() chan struct{} {
	if d.stop == nil {
		return nil
	}
	d.stop()
	d.watching.Store(false)
	done := d.loopDone
	d.stop, d.loopDone = nil, nil
	return done
}

// loop samples every Interval, the first at once, until ctx ends (the
// last viewer left, or Close).
func (d *Dashboard) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		st := d.sample(ctx)
		if ctx.Err() != nil {
			return
		}
		d.publish(st)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publish records st and hands it to every viewer, dropping any that has
// viewerBuffer samples unread.
func (d *Dashboard) publish(st *State) {
	b, err := encodeEvent("state", st)
	if err != nil {
		d.cfg.Logger.Error("encode dashboard state", "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.record(st)
	for v := range d.viewers {
		select {
		case v.ch <- b:
		default:
			d.cfg.Logger.Debug("dashboard viewer too slow: dropped")
			delete(d.viewers, v)
			close(v.gone)
		}
	}
	if len(d.viewers) == 0 {
		d.stopLoopLocked()
	}
}

// record keeps st as the latest and its flow in the history (d.mu held).
func (d *Dashboard) record(st *State) {
	d.latest, d.latestAt = st, time.Now()
	if len(d.history) < d.cfg.History {
		d.history = append(d.history, st.Flow)
		return
	}
	d.history[d.histNext] = st.Flow
	d.histNext = (d.histNext + 1) % d.cfg.History
}

// snapshot is the latest state and the history, oldest first.
func (d *Dashboard) snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := make([]Point, 0, len(d.history))
	h = append(h, d.history[d.histNext:]...)
	h = append(h, d.history[:d.histNext]...)
	return Snapshot{State: d.latest, History: h}
}

// fresh is the latest state if it is younger than two intervals.
func (d *Dashboard) fresh() *State {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.latest != nil && time.Since(d.latestAt) < 2*d.cfg.Interval {
		return d.latest
	}
	return nil
}
