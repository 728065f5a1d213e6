package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/kafkadev"
	"sensorhub/internal/natsauth"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// system is sensorhub assembled in one test process the way production runs
// it: every role with its own NATS connection, actor system and store pool,
// so that one role can be stopped (as if its process died) while the others
// keep running. Real servers only: embedded NATS, PostgreSQL behind a fault
// proxy, and kfake.
type system struct {
	t      *testing.T
	nats   *testenv.NATSServer
	proxy  *testenv.Proxy
	dbURL  string // through the proxy
	realDB string // straight to PostgreSQL, for assertions
	kafka  *kafkadev.Broker
	common Common
	keyDir string
	logger *slog.Logger
	logs   *testenv.Buffer
	// dbBreaker is the sensor role's database breaker (fastDB unless a
	// test sets another before starting the role).
	dbBreaker breaker.Config

	mu    sync.Mutex
	roles map[string]*lifecycle
	http  string
}

func newSystem(t *testing.T) *system {
	testenv.SkipIfShort(t)
	t.Helper()
	realDB := testenv.Postgres(t)
	u, err := url.Parse(realDB)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.FaultProxy(t, u.Host)
	u.Host = proxy.Addr()
	logs := &testenv.Buffer{}
	s := &system{
		t:      t,
		nats:   testenv.NATS(t),
		proxy:  proxy,
		dbURL:  u.String(),
		realDB: realDB,
		kafka:  testenv.Kafka(t),
		keyDir: t.TempDir(),
		logs:   logs,
		logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		roles:  map[string]*lifecycle{},

		dbBreaker: fastDB,
	}
	s.common = Common{NATSURL: s.nats.URL(), SubjectPrefix: messages.DefaultPrefix}
	t.Cleanup(func() {
		s.stopAll()
		if t.Failed() {
			t.Logf("system logs:\n%s", tail(logs.String(), 200))
		}
	})
	// A user for the tests (admin role: may read every test).
	st := s.openStore(s.realDB)
	if err := upsertUser(context.Background(), st, "alice", "alice-secret", []string{messages.RoleAdmin}, false); err != nil {
		t.Fatal(err)
	}
	if err := upsertUser(context.Background(), st, "bob", "bob-secret", []string{"user"}, false); err != nil {
		t.Fatal(err)
	}
	return s
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

func (s *system) openStore(url string) store.Store {
	s.t.Helper()
	st, err := OpenStore(context.Background(), url, s.logger)
	if err != nil {
		s.t.Fatalf("open store: %v", err)
	}
	s.t.Cleanup(func() { _ = st.Close() })
	return st
}

// as is the common configuration of role: its own identity on the bus.
func (s *system) as(role string) Common {
	c := s.common
	c.NATSCreds = s.nats.Creds(role)
	return c
}

// role starts one role in its own lifecycle (NATS connection, actor system,
// store pool), replacing a stopped one of the same name.
func (s *system) role(name string, start func(ctx context.Context, l *lifecycle, sys *actor.ActorSystem) error) {
	s.t.Helper()
	l := newLifecycle(s.logger.With("role", name))
	sys := supervise.NewSystem(s.logger)
	if err := start(context.Background(), l, sys); err != nil {
		l.shutdown()
		s.t.Fatalf("start %s: %v", name, err)
	}
	l.flush(5 * time.Second)
	s.mu.Lock()
	s.roles[name] = l
	s.mu.Unlock()
}

// stop stops a role as if its process went away.
func (s *system) stop(name string) {
	s.mu.Lock()
	l := s.roles[name]
	delete(s.roles, name)
	s.mu.Unlock()
	if l != nil {
		l.shutdown()
	}
}

func (s *system) stopAll() {
	for _, name := range []string{"edge", "bridge", "sensor", "auth"} {
		s.stop(name)
	}
}

var fastDB = breaker.Config{CallTimeout: 2 * time.Second, OpenFor: 500 * time.Millisecond, Failures: 3}

func (s *system) startAuth() {
	s.role("auth", func(ctx context.Context, l *lifecycle, sys *actor.ActorSystem) error {
		st, err := OpenStore(ctx, s.dbURL, s.logger)
		if err != nil {
			return err
		}
		l.defer_("store", func() { _ = st.Close() })
		nc, err := connect(l, s.as("auth"), "auth", s.logger)
		if err != nil {
			return err
		}
		_, err = startAuth(ctx, l, nc, sys, st, AuthConfig{
			Common: s.as("auth"), KeyFile: s.keyDir + "/jwt.pem", Issuer: "sensorhub", Audience: "sensorhub",
			CalloutIssuerFile: filepath.Join(s.nats.KeyDir, natsauth.IssuerFile), CalloutXKeyFile: filepath.Join(s.nats.KeyDir, natsauth.XKeyFile),
			TokenTTL: time.Hour, DatabaseBreaker: fastDB,
		}, nil, s.logger)
		return err
	})
}

func (s *system) startSensor() { s.startSensorAs("sensor") }

// startSensorAs starts a sensor role under name and returns its NATS
// connection, so that a test can kill it.
func (s *system) startSensorAs(name string) *nats.Conn {
	var conn *nats.Conn
	s.role(name, func(ctx context.Context, l *lifecycle, sys *actor.ActorSystem) error {
		st, err := OpenStore(ctx, s.dbURL, s.logger)
		if err != nil {
			return err
		}
		l.defer_("store", func() { _ = st.Close() })
		nc, err := connect(l, s.as("sensor"), "sensor", s.logger)
		if err != nil {
			return err
		}
		conn = nc
		_, err = startSensor(ctx, l, nc, sys, st, SensorConfig{
			Common: s.as("sensor"), Issuer: "sensorhub", Audience: "sensorhub", Lease: 2 * time.Second,
			DatabaseBreaker: s.dbBreaker,
			AuthBreaker:     breaker.Config{CallTimeout: 300 * time.Millisecond, OpenFor: time.Second, Failures: 3},
		}, nil, s.logger)
		return err
	})
	return conn
}

func (s *system) startBridge() {
	s.role("bridge", func(ctx context.Context, l *lifecycle, sys *actor.ActorSystem) error {
		nc, err := connect(l, s.as("bridge"), "bridge", s.logger)
		if err != nil {
			return err
		}
		_, err = startBridge(ctx, l, nc, sys, BridgeConfig{
			Common: s.as("bridge"), KafkaBrokers: s.kafka.Addr(), KafkaTopic: messages.DefaultKafkaTopic,
			KafkaBreaker: breaker.Config{CallTimeout: 2 * time.Second, OpenFor: 300 * time.Millisecond, Failures: 2},
		}, nil, s.logger)
		return err
	})
}

func (s *system) startEdge() {
	s.role("edge", func(ctx context.Context, l *lifecycle, _ *actor.ActorSystem) error {
		nc, err := connect(l, s.as("edge"), "edge", s.logger)
		if err != nil {
			return err
		}
		// The edge waits as long as the test may: these tests prove that
		// nothing is lost or refused, and latency is the benchmarks' to
		// measure; on a busy machine a 2 s request deadline opens the
		// breaker and refuses work that would have been done. Outages
		// still answer at once (no responders, the database's 503).
		patient := breaker.Config{CallTimeout: testenv.Wait(s.t)}
		addr, err := startEdge(l, nc, EdgeConfig{Common: s.as("edge"), HTTP: "127.0.0.1:0",
			AuthBreaker: patient, SensorBreaker: patient, BridgeBreaker: patient,
			SubmitTimeout: testenv.Wait(s.t)}, nil, s.logger)
		s.mu.Lock()
		s.http = "http://" + addr
		s.mu.Unlock()
		return err
	})
}

func (s *system) startAll() {
	s.startAuth()
	s.startSensor()
	s.startBridge()
	s.startEdge()
}

// httpClient allows many concurrent connections to the edge.
var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 2000, MaxIdleConnsPerHost: 2000, MaxConnsPerHost: 0},
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r reply) code() string {
	var e messages.Error
	_ = json.Unmarshal(r.body, &e)
	return string(e.Code)
}

func (s *system) do(method, path, tok string, body []byte, hdr ...string) (reply, error) {
	s.mu.Lock()
	base := s.http
	s.mu.Unlock()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (s *system) mustDo(method, path, tok string, body []byte, hdr ...string) reply {
	s.t.Helper()
	r, err := s.do(method, path, tok, body, hdr...)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (s *system) login(user, pass string) string {
	s.t.Helper()
	r := s.mustDo(http.MethodPost, "/auth/token", "", []byte(fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass)))
	if r.status != http.StatusOK {
		s.t.Fatalf("login %s: %d %s", user, r.status, r.body)
	}
	var tok messages.TokenReply
	r.decode(s.t, &tok)
	return tok.AccessToken
}

func (s *system) counts(st store.Store) map[string]int64 {
	s.t.Helper()
	c, err := st.CountTests(context.Background())
	if err != nil {
		s.t.Fatalf("count tests: %v", err)
	}
	return c
}

// runRoles runs each role function (a Run* of this package) in its own
// goroutine until the test ends: then cancel stops them, and each must
// return without an error.
func runRoles(t *testing.T, cancel context.CancelFunc, runs ...func() error) {
	t.Helper()
	errs := make(chan error, len(runs))
	for _, run := range runs {
		go func() { errs <- run() }()
	}
	t.Cleanup(func() {
		cancel()
		for range runs {
			if err := <-errs; err != nil {
				t.Errorf("role: %v", err)
			}
		}
	})
}

// waitEdgeHealthy waits until the edge at base reports every role ok.
func waitEdgeHealthy(t *testing.T, base string) {
	t.Helper()
	testenv.Eventually(t, "every role healthy behind the edge", func() bool {
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var h struct{ Status string }
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.Status == messages.HealthOK
	})
}

// runDev runs dev on cfg (its Ready set here) until the test ends, and
// returns its addresses once every role serves; its log is shown if the
// test fails. Listen addresses left empty are free ports on 127.0.0.1 and
// DataDir a temporary directory.
func runDev(t *testing.T, cfg DevConfig) DevAddrs {
	t.Helper()
	testenv.SkipIfShort(t)
	if cfg.HTTP == "" {
		cfg.HTTP = "127.0.0.1:0"
	}
	if cfg.NATSListen == "" && cfg.NATSURL == "" {
		cfg.NATSListen = "127.0.0.1:0"
	}
	if cfg.KafkaListen == "" && cfg.KafkaBrokers == "" {
		cfg.KafkaListen = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = messages.DefaultPrefix
	}
	ready := make(chan DevAddrs, 1)
	cfg.Ready = ready
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &testenv.Buffer{}
	go func() {
		done <- RunDev(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
		if t.Failed() {
			t.Logf("dev logs:\n%s", tail(logs.String(), 150))
		}
	})
	select {
	case addrs := <-ready:
		return addrs
	case err := <-done:
		t.Fatalf("dev stopped: %v", err)
	case <-time.After(testenv.Wait(t)):
		t.Fatal("dev did not start")
	}
	return DevAddrs{}
}
