package sensor

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// Tokens the fake authenticator knows.
const (
	tokAlice = "tok-alice"
	tokBob   = "tok-bob"
	tokAdmin = "tok-admin"
)

// fakeAuth is a unit fake of the Authenticator (the real one is tested in
// actors/auth). While gated, Validate waits for the gate to open.
type fakeAuth struct {
	mu    sync.Mutex
	gate  chan struct{}
	calls atomic.Int64
}

func (f *fakeAuth) Validate(ctx context.Context, token string) (messages.ValidateReply, error) {
	f.calls.Add(1)
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return messages.ValidateReply{}, messages.ErrAuthUnavailable
		}
	}
	users := map[string]messages.ValidateReply{
		tokAlice: {Subject: "alice", Roles: []string{"user"}},
		tokBob:   {Subject: "bob", Roles: []string{"user"}},
		tokAdmin: {Subject: "admin", Roles: []string{messages.RoleAdmin}},
	}
	r, ok := users[token]
	if !ok {
		return messages.ValidateReply{}, messages.ErrUnauthorized
	}
	r.Valid, r.AuthMode = true, messages.AuthModeOnline
	return r, nil
}

// block makes Validate wait until the returned func is called.
func (f *fakeAuth) block() (release func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.gate = nil
			f.mu.Unlock()
			close(gate)
		})
	}
}

// authWithBreaker exposes a breaker, as actors/auth's Validator does.
type authWithBreaker struct {
	*fakeAuth
	b *breaker.Breaker
}

func (a authWithBreaker) Breaker() *breaker.Breaker { return a.b }

// logSink collects the log lines of a test (testenv's goroutine-safe
// buffer, with a search by line).
type logSink struct{ testenv.Buffer }

// lines returns the lines that contain every one of parts.
func (l *logSink) lines(parts ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// harness is one test's embedded NATS, client connection and fakes.
type harness struct {
	t  *testing.T
	ns *testenv.NATSServer
	nc *nats.Conn // the edge's identity: submissions, results, health
	// events is the sensor role's identity: it may read its own stream.
	events *nats.Conn
	subj   messages.Subjects
	auth   *fakeAuth
	logs   *logSink
	log    *slog.Logger
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, subj: messages.DefaultSubjects(), auth: &fakeAuth{}, logs: &logSink{}}
	h.log = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h.ns = testenv.NATS(t)
	h.nc = h.ns.Conn(t, messages.RoleEdge)
	h.events = h.ns.Conn(t, messages.RoleSensor)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs.String())
		}
	})
	return h
}

// storeKinds are the two store dialects (testenv opens them).
var storeKinds = testenv.Stores

func openSQLite(t *testing.T) store.Store { return testenv.SQLite(t) }

// start starts a sensor role on its own actor system and NATS connection,
// stopped by t.Cleanup.
func (h *harness) start(st store.Store, mutate func(*Config)) *Service {
	h.t.Helper()
	cfg := Config{
		Subjects:         h.subj,
		Store:            st,
		Auth:             h.auth,
		Workers:          2,
		Logger:           h.log,
		LogStacks:        true,
		DatabaseBreaker:  breaker.Config{OpenFor: 50 * time.Millisecond},
		JetStreamBreaker: breaker.Config{OpenFor: 50 * time.Millisecond, CallTimeout: 2 * time.Second},
		OnGiveUp:         func(err error) { h.log.Error("test: role gave up", "err", err) },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	system := supervise.NewSystem(h.log)
	ctx, cancel := context.WithTimeout(h.t.Context(), testenv.Wait(h.t))
	defer cancel()
	svc, err := Start(ctx, h.ns.Conn(h.t, messages.RoleSensor), system, cfg)
	if err != nil {
		h.t.Fatalf("start sensor role: %v", err)
	}
	h.t.Cleanup(func() {
		if err := svc.Stop(5 * time.Second); err != nil {
			h.t.Logf("stop sensor role: %v", err)
		}
		system.Shutdown()
	})
	return svc
}

// submit sends a submission with the token in the Authorization header.
func (h *harness) submit(token string, body any, hdr nats.Header) (messages.TestAccepted, error) {
	if hdr == nil {
		hdr = nats.Header{}
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(h.t.Context(), testenv.Wait(h.t))
	defer cancel()
	var out messages.TestAccepted
	_, err := natsx.Request(ctx, h.nc, h.subj.SensorSubmit(), body, hdr, &out)
	return out, err
}

// mustSubmit submits and fails the test unless the test was accepted.
func (h *harness) mustSubmit(token string, body any) messages.TestAccepted {
	h.t.Helper()
	a, err := h.submit(token, body, nil)
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	if a.TestID == "" || a.Status != messages.StatusProcessing {
		h.t.Fatalf("submit: got %+v, want a test id and status processing", a)
	}
	return a
}

// result reads a test with the token in the Authorization header.
func (h *harness) result(token, id string) (messages.TestRecord, error) {
	hdr := nats.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(h.t.Context(), testenv.Wait(h.t))
	defer cancel()
	var out messages.TestRecord
	_, err := natsx.Request(ctx, h.nc, h.subj.SensorResult(), messages.GetResult{TestID: id}, hdr, &out)
	return out, err
}

// waitDone polls the result endpoint until the test is no longer processing.
func (h *harness) waitDone(token, id string) messages.TestRecord {
	h.t.Helper()
	var rec messages.TestRecord
	testenv.Eventually(h.t, "test "+id+" to finish", func() bool {
		r, err := h.result(token, id)
		if err != nil {
			return false
		}
		rec = r
		return r.Status != messages.StatusProcessing
	})
	return rec
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code messages.Code) *messages.Error {
	t.Helper()
	var e *messages.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got error %v, want code %s", err, code)
	}
	return e
}

// counts returns the tests per status.
func counts(t *testing.T, st store.Store) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	c, err := st.CountTests(ctx)
	if err != nil {
		t.Fatalf("count tests: %v", err)
	}
	return c
}

func total(c map[string]int64) int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

func backlog(t *testing.T, st store.Store) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	n, err := st.OutboxBacklog(ctx)
	if err != nil {
		t.Fatalf("outbox backlog: %v", err)
	}
	return n
}

// streamEvent is one message of SENSOR_EVENTS.
type streamEvent struct {
	msgID   string
	subject string
	header  nats.Header
	event   messages.TestCompleted
}

// readStream returns every message in SENSOR_EVENTS (reading by sequence
// does not consume the work queue).
func readStream(t *testing.T, nc *nats.Conn) []streamEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	st, err := js.Stream(ctx, messages.StreamEvents)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// The outbox relay makes the stream with its first round, after
		// the role started: nothing is in it yet.
		return nil
	}
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var out []streamEvent
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		ev, err := messages.DecodeEvent(m.Data)
		if err != nil {
			t.Fatalf("message %d is not an event: %v", seq, err)
		}
		out = append(out, streamEvent{msgID: m.Header.Get(jetstream.MsgIDHeader), subject: m.Subject, header: m.Header, event: ev})
	}
	return out
}

// streamCount is the number of messages in SENSOR_EVENTS (0 when missing).
func streamCount(t *testing.T, nc *nats.Conn) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	st, err := js.Stream(ctx, messages.StreamEvents)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// flakyStore fails every call with store.ErrUnavailable while down is set,
// as a database outage would.
type flakyStore struct {
	store.Store
	down atomic.Bool
}

var errFlakyDown = errors.Join(store.ErrUnavailable, errors.New("test: database switched off"))

func (f *flakyStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errFlakyDown
	}
	return f.Store.Ping(ctx)
}

func (f *flakyStore) InsertTests(ctx context.Context, tests []store.NewTest) ([]store.InsertResult, error) {
	if f.down.Load() {
		return nil, errFlakyDown
	}
	return f.Store.InsertTests(ctx, tests)
}

func (f *flakyStore) GetTest(ctx context.Context, id string) (store.Test, error) {
	if f.down.Load() {
		return store.Test{}, errFlakyDown
	}
	return f.Store.GetTest(ctx, id)
}

func (f *flakyStore) CompleteTests(ctx context.Context, cs []store.Completion) ([]bool, error) {
	if f.down.Load() {
		return nil, errFlakyDown
	}
	return f.Store.CompleteTests(ctx, cs)
}

func (f *flakyStore) ClaimExpired(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Test, error) {
	if f.down.Load() {
		return nil, errFlakyDown
	}
	return f.Store.ClaimExpired(ctx, now, lease, limit)
}

func (f *flakyStore) BeginAttempts(ctx context.Context, ids []string, until time.Time) ([]int, error) {
	if f.down.Load() {
		return nil, errFlakyDown
	}
	return f.Store.BeginAttempts(ctx, ids, until)
}

func (f *flakyStore) RenewLeases(ctx context.Context, ids []string, until time.Time) (int64, error) {
	if f.down.Load() {
		return 0, errFlakyDown
	}
	return f.Store.RenewLeases(ctx, ids, until)
}

func (f *flakyStore) OutboxPending(ctx context.Context, limit int) ([]store.OutboxRow, error) {
	if f.down.Load() {
		return nil, errFlakyDown
	}
	return f.Store.OutboxPending(ctx, limit)
}

func (f *flakyStore) DeleteOutbox(ctx context.Context, seqs []int64) error {
	if f.down.Load() {
		return errFlakyDown
	}
	return f.Store.DeleteOutbox(ctx, seqs)
}

func (f *flakyStore) OutboxBacklog(ctx context.Context) (int64, error) {
	if f.down.Load() {
		return 0, errFlakyDown
	}
	return f.Store.OutboxBacklog(ctx)
}

// batchRecorder records the size of every InsertTests batch; the first call
// waits for gate when it is set.
type batchRecorder struct {
	store.Store
	mu      sync.Mutex
	batches []int
	gate    chan struct{}
	entered chan struct{}
}

func (b *batchRecorder) InsertTests(ctx context.Context, tests []store.NewTest) ([]store.InsertResult, error) {
	b.mu.Lock()
	b.batches = append(b.batches, len(tests))
	first := len(b.batches) == 1
	b.mu.Unlock()
	if first && b.gate != nil {
		close(b.entered)
		select {
		case <-b.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.Store.InsertTests(ctx, tests)
}

func (b *batchRecorder) sizes() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.batches...)
}

// readingsFor returns n readings at the spec's nominal value: a healthy
// series.
func readingsFor(spec messages.SensorSpec, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = spec.Nominal
	}
	return out
}
