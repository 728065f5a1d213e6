package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/metrics/metricstest"
	"sensorhub/internal/natsauth"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// devUnderTest is a running `dev` for the metrics tests: on a real
// PostgreSQL and the test's Kafka broker (so the test can refuse writes),
// with --chaos and its own metrics listener.
type devUnderTest struct {
	t     *testing.T
	addrs DevAddrs
	kafka interface{ RefuseProduce(bool) }
	// scrapes are rate-limited: Eventually polls every few milliseconds,
	// and a scrape asks JetStream for the bridge's consumer info.
	mu   sync.Mutex
	last time.Time
	prev metricstest.Samples
}

func startDevForMetrics(t *testing.T, opts ...func(*DevConfig)) *devUnderTest {
	t.Helper()
	testenv.SkipIfShort(t)
	kb := testenv.Kafka(t)
	cfg := DevConfig{
		Common:     Common{SubjectPrefix: messages.DefaultPrefix, Chaos: true, MetricsListen: "127.0.0.1:0"},
		HTTP:       "127.0.0.1:0",
		DataDir:    t.TempDir(),
		NATSListen: "127.0.0.1:0",
		// PostgreSQL, and Kafka that the test can make refuse writes.
		DatabaseURL:  testenv.Postgres(t),
		KafkaBrokers: kb.Addr(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	d := &devUnderTest{t: t, kafka: kb, addrs: runDev(t, cfg)}
	return d
}

// scrape reads the edge's GET /metrics (the whole process's registry).
func (d *devUnderTest) scrape() metricstest.Samples {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.prev != nil && time.Since(d.last) < 50*time.Millisecond {
		return d.prev
	}
	d.prev = metricstest.Scrape(d.t, d.t.Context(), "http://"+d.addrs.HTTP+"/metrics")
	d.last = time.Now()
	return d.prev
}

func (d *devUnderTest) post(path, tok string, body []byte) (int, []byte) {
	d.t.Helper()
	req, err := http.NewRequestWithContext(d.t.Context(), http.MethodPost, "http://"+d.addrs.HTTP+path, bytes.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *devUnderTest) login() string {
	d.t.Helper()
	code, body := d.post("/auth/token", "", []byte(fmt.Sprintf(`{"username":"admin","password":%q}`, DefaultPassword)))
	if code != http.StatusOK {
		d.t.Fatalf("login: %d %s", code, body)
	}
	var tok messages.TokenReply
	if err := json.Unmarshal(body, &tok); err != nil {
		d.t.Fatal(err)
	}
	return tok.AccessToken
}

// submit makes n submissions and fails unless each is accepted.
func (d *devUnderTest) submit(tok string, n int) {
	d.t.Helper()
	for i := range n {
		code, body := d.post("/test/sensor/temperature", tok, []byte(fmt.Sprintf(`{"sensor_id":"m-%d","readings":[21.5,21.6,21.4],"reference":21.5}`, i%3)))
		if code != http.StatusAccepted {
			d.t.Fatalf("submission %d: %d %s", i, code, body)
		}
	}
}

var (
	sensorRole = map[string]string{"role": messages.RoleSensor}
	bridgeRole = map[string]string{"role": messages.RoleBridge}
)

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// The metrics of `dev` tell what happened: the submissions accepted, the
// bridge.kafka breaker opening in a Kafka outage and closing after it, the
// JetStream backlog rising and falling, a supervisor restart after a chaos
// panic; and promtool finds nothing to lint.
func TestDevMetricsTellWhatHappened(t *testing.T) {
	d := startDevForMetrics(t)
	tok := d.login()

	const n, m = 12, 7
	d.submit(tok, n)
	testenv.EventuallyState(t, "the tests completed and relayed", func() (bool, string) {
		s := d.scrape()
		return s.Value("sensorhub_tests_completed_total", sensorRole) == n &&
				s.Value("sensorhub_bridge_events_total", labels("role", "bridge", "result", "successful")) == n,
			fmt.Sprintf("completed %v, relayed %v", s.Value("sensorhub_tests_completed_total", sensorRole),
				s.Value("sensorhub_bridge_events_total", labels("role", "bridge", "result", "successful")))
	})
	s := d.scrape()
	if got := s.Value("sensorhub_tests_accepted_total", sensorRole); got != n {
		t.Errorf("sensorhub_tests_accepted_total = %v, want %d", got, n)
	}
	if got := s.Value("sensorhub_http_requests_total", labels("role", "edge", "route", "POST /test/sensor/{sensor_type}", "code", "202")); got != n {
		t.Errorf("HTTP 202s on the submit route = %v, want %d", got, n)
	}
	if got := s.Value("sensorhub_http_request_duration_seconds_count", labels("role", "edge", "route", "POST /test/sensor/{sensor_type}")); got != n {
		t.Errorf("submit latency observations = %v, want %d", got, n)
	}
	if got := s.Value("sensorhub_nats_requests_total", labels("role", "edge", "subject", "sensorhub.sensor.submit", "outcome", "ok")); got != n {
		t.Errorf("the edge's ok NATS submits = %v, want %d", got, n)
	}
	if got := s.Value("sensorhub_store_call_duration_seconds_count", labels("role", "sensor", "operation", "insert_tests")); got < 1 {
		t.Errorf("no insert_tests store call observed")
	}
	if got := s.Value("sensorhub_circuit_breaker_state", labels("role", "bridge", "breaker", "bridge.kafka", "state", "closed")); got != 1 {
		t.Errorf("bridge.kafka closed = %v before the outage, want 1", got)
	}
	for _, name := range []string{"sensorhub_build_info", "go_goroutines", "process_resident_memory_bytes",
		"sensorhub_edge_submit_limit", "sensorhub_edge_submit_overloaded_total",
		"sensorhub_pipeline_in_flight", "sensorhub_pipeline_queued", "sensorhub_pipeline_completing", "sensorhub_outbox_backlog",
		"sensorhub_bridge_consumer_pending", "sensorhub_bridge_consumer_ack_pending", "sensorhub_bridge_consumer_redelivered"} {
		if s.Sum(name, nil) == 0 {
			if _, ok := findName(s, name); !ok {
				t.Errorf("%s is missing", name)
			}
		}
	}

	// Kafka refuses writes: the breaker opens and the events wait in JetStream.
	d.kafka.RefuseProduce(true)
	d.submit(tok, m)
	breaker := func(state string) float64 {
		return d.scrape().Value("sensorhub_circuit_breaker_state", labels("role", "bridge", "breaker", "bridge.kafka", "state", state))
	}
	backlog := func(s metricstest.Samples) float64 {
		return s.Value("sensorhub_bridge_consumer_pending", bridgeRole) + s.Value("sensorhub_bridge_consumer_ack_pending", bridgeRole)
	}
	testenv.EventuallyState(t, "bridge.kafka open with the events waiting", func() (bool, string) {
		s := d.scrape()
		return breaker("open") == 1 && breaker("closed") == 0 && backlog(s) == m,
			fmt.Sprintf("open %v, closed %v, backlog %v", breaker("open"), breaker("closed"), backlog(s))
	})
	if got := d.scrape().Value("sensorhub_circuit_breaker_transitions_total", labels("role", "bridge", "breaker", "bridge.kafka", "from", "closed", "to", "open")); got < 1 {
		t.Errorf("closed->open transitions = %v, want at least 1", got)
	}
	if got := d.scrape().Value("sensorhub_tests_accepted_total", sensorRole); got != n+m {
		t.Errorf("accepted during the outage: %v, want %d", got, n+m)
	}

	// Kafka is back: the breaker closes and the backlog drains.
	d.kafka.RefuseProduce(false)
	testenv.EventuallyState(t, "bridge.kafka closed with the backlog drained", func() (bool, string) {
		s := d.scrape()
		relayed := s.Value("sensorhub_bridge_events_total", labels("role", "bridge", "result", "successful"))
		return breaker("closed") == 1 && breaker("open") == 0 && backlog(s) == 0 && relayed == n+m,
			fmt.Sprintf("closed %v, open %v, backlog %v, relayed %v", breaker("closed"), breaker("open"), backlog(s), relayed)
	})

	// A chaos panic of the sensor role's intake, asked for by admin over
	// NATS, is one restart by the role supervisor.
	restarts := func() float64 {
		return d.scrape().Value("sensorhub_supervisor_restarts_total", labels("role", "sensor", "actor", "sensor/intake", "directive", "restart"))
	}
	if got := restarts(); got != 0 {
		t.Fatalf("restarts of sensor/intake before the panic: %v", got)
	}
	admin, err := nats.Connect(d.addrs.NATS, nats.UserInfo("admin", DefaultPassword),
		nats.CustomInboxPrefix(messages.InboxPrefix("admin")), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect as admin: %v", err)
	}
	defer admin.Close()
	rctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	var cr messages.ChaosReply
	if _, err := natsx.Request(rctx, admin, messages.DefaultSubjects().ChaosPanic(), messages.ChaosPanic{Actor: "sensor"}, nil, &cr); err != nil || !cr.Panicked {
		t.Fatalf("chaos panic: %+v, %v", cr, err)
	}
	testenv.EventuallyState(t, "one restart of sensor/intake counted", func() (bool, string) {
		r := restarts()
		return r == 1, fmt.Sprintf("restarts %v", r)
	})

	// Both endpoints serve the same registry, and promtool passes it.
	body := metricstest.Fetch(t, t.Context(), "http://"+d.addrs.Metrics+"/metrics")
	if !bytes.Contains(body, []byte(`sensorhub_tests_accepted_total{role="sensor"}`)) {
		t.Errorf("--metrics-listen serves no sensor metrics")
	}
	metricstest.Promtool(t, t.Context(), "dev", metricstest.Fetch(t, t.Context(), "http://"+d.addrs.HTTP+"/metrics"))
}

// findName reports whether any sample of name is present.
func findName(s metricstest.Samples, name string) (string, bool) {
	for k := range s {
		if k == name || len(k) > len(name) && k[:len(name)] == name && k[len(name)] == '{' {
			return k, true
		}
	}
	return "", false
}

// Every role, run as its own process would be with --metrics-listen,
// serves its own metrics (its role label only) that promtool passes; the
// edge serves its own at GET /metrics on its HTTP port too.
func TestEveryRoleServesMetrics(t *testing.T) {
	testenv.SkipIfShort(t)
	srv := testenv.NATS(t)
	db := testenv.Postgres(t)
	addUsers(t, db)
	kafka := testenv.Kafka(t, messages.DefaultKafkaTopic)
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	listen := map[string]string{}
	for _, role := range []string{messages.RoleAuth, messages.RoleSensor, messages.RoleBridge, messages.RoleEdge} {
		listen[role] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	common := func(role string) Common {
		return Common{NATSURL: srv.URL(), SubjectPrefix: messages.DefaultPrefix, NATSCreds: srv.Creds(role), MetricsListen: listen[role]}
	}
	ctx, cancel := context.WithCancel(context.Background())
	runs := []func() error{
		func() error {
			return RunAuth(ctx, AuthConfig{Common: common(messages.RoleAuth), DatabaseURL: db, KeyFile: filepath.Join(dir, "jwt.pem"),
				Issuer: "sensorhub", Audience: "sensorhub",
				CalloutIssuerFile: filepath.Join(srv.KeyDir, natsauth.IssuerFile), CalloutXKeyFile: filepath.Join(srv.KeyDir, natsauth.XKeyFile),
				AllowDefaultPassword: true}, discardLogger())
		},
		func() error {
			return RunSensor(ctx, SensorConfig{Common: common(messages.RoleSensor), DatabaseURL: db, Issuer: "sensorhub", Audience: "sensorhub",
				MaxOutboxBacklog: 1000}, discardLogger())
		},
		func() error {
			return RunBridge(ctx, BridgeConfig{Common: common(messages.RoleBridge), KafkaBrokers: kafka.Addr(), KafkaTopic: messages.DefaultKafkaTopic}, discardLogger())
		},
		func() error {
			return RunEdge(ctx, EdgeConfig{Common: common(messages.RoleEdge), HTTP: httpAddr}, discardLogger())
		},
	}
	runRoles(t, cancel, runs...)
	d := &devUnderTest{t: t, addrs: DevAddrs{HTTP: httpAddr}}
	waitEdgeHealthy(t, "http://"+httpAddr)
	d.submit(d.login(), 3)
	testenv.EventuallyState(t, "the 3 tests relayed", func() (bool, string) {
		s := metricstest.Scrape(t, t.Context(), "http://"+listen[messages.RoleBridge]+"/metrics")
		v := s.Value("sensorhub_bridge_events_total", labels("role", "bridge", "result", "successful"))
		return v == 3, fmt.Sprintf("relayed %v", v)
	})

	// What each role must show, beside the process and runtime metrics.
	want := map[string][]string{
		messages.RoleAuth:   {`sensorhub_circuit_breaker_state{breaker="auth.database",role="auth",state="closed"} 1`, `sensorhub_store_call_duration_seconds_count{operation="get_user",role="auth"}`},
		messages.RoleSensor: {`sensorhub_tests_accepted_total{role="sensor"} 3`, `sensorhub_tests_completed_total{role="sensor"} 3`, `sensorhub_outbox_backlog{role="sensor"}`, `sensorhub_nats_requests_total{outcome="ok",role="sensor",subject="sensorhub.auth.validate"}`},
		messages.RoleBridge: {`sensorhub_bridge_events_total{result="successful",role="bridge"} 3`, `sensorhub_bridge_consumer_pending{role="bridge"} 0`, `sensorhub_circuit_breaker_state{breaker="bridge.kafka",role="bridge",state="closed"} 1`},
		messages.RoleEdge:   {`sensorhub_http_requests_total{code="202",role="edge",route="POST /test/sensor/{sensor_type}"} 3`, `sensorhub_nats_requests_total{outcome="ok",role="edge",subject="sensorhub.sensor.submit"} 3`, `sensorhub_edge_submit_limit{role="edge"} 2048`},
	}
	for role, addr := range listen {
		body := metricstest.Fetch(t, t.Context(), "http://"+addr+"/metrics")
		for _, w := range append(want[role], "sensorhub_build_info{", "process_cpu_seconds_total ", "go_goroutines ") {
			if !bytes.Contains(body, []byte(w)) {
				t.Errorf("%s's metrics lack %s", role, w)
			}
		}
		for _, other := range []string{messages.RoleAuth, messages.RoleSensor, messages.RoleBridge, messages.RoleEdge} {
			if other != role && bytes.Contains(body, []byte(`role="`+other+`"`)) {
				t.Errorf("%s's metrics carry role=%q", role, other)
			}
		}
		metricstest.Promtool(t, t.Context(), role, body)
	}
	edgeOwn := metricstest.Fetch(t, t.Context(), "http://"+httpAddr+"/metrics")
	if !bytes.Contains(edgeOwn, []byte(`sensorhub_http_requests_total{code="202",role="edge",route="POST /test/sensor/{sensor_type}"} 3`)) {
		t.Errorf("the edge's GET /metrics lacks its submissions")
	}
}

// dev --metrics=false keeps none (GET /metrics is 404) and serves as
// before: the same binary measures what the metrics cost.
func TestDevWithoutMetrics(t *testing.T) {
	d := startDevForMetrics(t, func(c *DevConfig) { c.NoMetrics = true; c.MetricsListen = "" })
	d.submit(d.login(), 3)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+d.addrs.HTTP+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics with --metrics=false: %d, want 404", resp.StatusCode)
	}
}
