package drills

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"sensorhub/internal/kafkadev"
	"sensorhub/internal/natsauth"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// binPath is the sensorhub binary TestMain built for this package run.
var (
	binPath       string
	buildDuration time.Duration
)

// TestMain builds the binary once for every test of the run (and every
// -count repetition). It is built without -race: the roles are the system
// under test, not the code whose races these tests look for, and a race
// build would make every process several times slower on a small machine.
func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "sensorhub-drills-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "drills: temp dir:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		binPath = filepath.Join(dir, "sensorhub")
		start := time.Now()
		// `go test` puts its own toolchain first in PATH.
		cmd := exec.Command("go", "build", "-o", binPath, "sensorhub/cmd/sensorhub")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "drills: go build ./cmd/sensorhub:", err)
			return 1
		}
		buildDuration = time.Since(start)
		fmt.Fprintf(os.Stderr, "drills: built sensorhub in %s\n", buildDuration.Round(time.Millisecond))
		return m.Run()
	}())
}

// Deadlines of the harness's polls. Every wait in this package has one.
const (
	pollInterval   = 50 * time.Millisecond
	httpTimeout    = 5 * time.Second
	requestTimeout = 2 * time.Second // one NATS request of the test itself
	exitTimeout    = 10 * time.Second
)

// Role names as the sensorhub subcommands spell them.
const (
	roleEdge   = messages.RoleEdge
	roleAuth   = messages.RoleAuth
	roleSensor = messages.RoleSensor
	roleBridge = messages.RoleBridge
)

// poll calls cond every interval until it returns nil or timeout passes,
// and returns cond's last error (wrapped with the time waited).
func poll(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		<-tick.C // polling with a deadline, not waiting for an actor
	}
}

// proc is one sensorhub process.
type proc struct {
	role string
	name string // role, or role-N for the N-th copy
	args []string
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		t.Fatalf("%s (pid %d) still running %s after SIGKILL", p.role, p.cmd.Process.Pid, exitTimeout)
	}
}

// logLines returns the JSON log records of the process (other lines skipped).
func (p *proc) logLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// findLog returns the first log record for which match is true.
func (p *proc) findLog(match func(map[string]any) bool) (map[string]any, bool) {
	for _, rec := range p.logLines() {
		if match(rec) {
			return rec, true
		}
	}
	return nil, false
}

// tail returns the last n lines of the process's output.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// cluster is one sensorhub deployment under test: the dependencies in this
// process and the roles as child processes.
type cluster struct {
	t      *testing.T
	nats   *testenv.NATSServer // the single server (nil on a NATS cluster)
	nodes  *natsNodes          // the NATS cluster's nodes (nil on a single server)
	keyDir string              // the roles' NATS identities (natsauth.LoadOrCreate)
	nc     *nats.Conn          // the test's own connection, as the edge (reconnects by itself)
	subj   messages.Subjects
	kafka  *kafkadev.Broker
	dbURL  string // the real database, for the test's own queries
	viaURL string // the database the roles are given: through the fault proxy, or dbURL itself (directDB)
	proxy  *testenv.Proxy
	dir    string // key file and other per-cluster files

	username, password string

	mu    sync.Mutex
	procs map[string]*proc // the current process of each role
	gone  []*proc          // processes killed by a drill

	http     *http.Client
	edgeAddr string // host:port the (first) edge listens on
	// edgeAddrs are every edge's address when a test runs several copies:
	// the test's HTTP requests go to each in turn.
	edgeAddrs []string
	nextEdge  atomic.Uint64
	env       []string // extra environment of every role
	stockArgs bool     // see clusterOptions.stockArgs
}

// clusterOptions selects what a test needs.
type clusterOptions struct {
	roles []string // started in this order (default: auth, sensor, bridge, edge)
	chaos bool     // --chaos on every role
	// copies of each role (default 1): the second copy of sensor is named
	// "sensor-2", and so on.
	copies int
	// roleCopies, by role, overrides copies for the roles it names (a
	// measurement that scales out the sensor role alone).
	roleCopies map[string]int
	// directDB gives the roles the database itself instead of the fault
	// proxy, which copies every byte through this process: a measurement
	// would count the proxy's work as the test process's. A drill that
	// cuts the database cannot set it (c.proxy is nil).
	directDB bool
	// stockArgs starts the roles on their default settings instead of the
	// drills' short breakers, lease and two processors: under a saturating
	// load a 2 s lease makes the sweeper retry tests still queued, work a
	// deployment would not do.
	stockArgs bool
	// natsNodes, when set, runs the roles on a NATS cluster of that many
	// nats-server processes instead of one embedded server; each copy of a
	// role is given every node's URL, in its own order.
	natsNodes int
	// env is extra environment of every role (SENSORHUB_* settings).
	env []string
}

// newCluster starts NATS, PostgreSQL (skipping the test without a server),
// the fault proxy and Kafka, creates a user, starts the roles and waits
// until each answers.
func newCluster(t *testing.T, opts clusterOptions) *cluster {
	testenv.SkipIfShort(t)
	t.Helper()
	start := time.Now()
	dbURL := testenv.Postgres(t) // skips (or fails) without a server
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("parse database url: %v", err)
	}
	viaURL, dbVia := dbURL, "directly"
	var proxy *testenv.Proxy
	if !opts.directDB {
		proxy = testenv.FaultProxy(t, u.Host)
		via := *u
		via.Host = proxy.Addr()
		viaURL, dbVia = via.String(), "via "+proxy.Addr()
	}

	c := &cluster{
		t:         t,
		subj:      messages.DefaultSubjects(),
		kafka:     testenv.Kafka(t),
		dbURL:     dbURL,
		viaURL:    viaURL,
		proxy:     proxy,
		dir:       t.TempDir(),
		username:  "drill",
		password:  "pw-" + randomHex(12),
		procs:     map[string]*proc{},
		env:       opts.env,
		stockArgs: opts.stockArgs,
	}
	if opts.natsNodes > 0 {
		c.nodes = startNATSNodes(t, opts.natsNodes)
		c.keyDir = c.nodes.keyDir
		c.nc = c.nodes.conn(t, messages.RoleEdge, c.nodes.urls())
	} else {
		c.nats = testenv.NATS(t)
		c.keyDir = c.nats.KeyDir
		c.nc = c.nats.Conn(t, messages.RoleEdge)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	c.http = &http.Client{Timeout: httpTimeout, Transport: transport}
	t.Cleanup(transport.CloseIdleConnections)

	c.addUser()
	roles := opts.roles
	if len(roles) == 0 {
		roles = []string{roleAuth, roleSensor, roleBridge, roleEdge}
	}
	// One role at a time, each ready before the next starts: auth first,
	// so that the others find its published keys at once, and the sensor
	// role's event stream ensured before the bridge ensures it again and
	// creates its consumer. nats-server v2.15.2 has a data race between a
	// stream update and a consumer create on the same stream (fileStore.
	// ConsumerStore reads fs.cfg.Name without the lock UpdateConfig holds),
	// which the race detector reports from this in-process server when the
	// two roles start at the same moment.
	copiesOf := func(role string) int {
		if n, ok := opts.roleCopies[role]; ok {
			return n
		}
		return max(opts.copies, 1)
	}
	most := 0
	for _, r := range roles {
		most = max(most, copiesOf(r))
	}
	for copy := range most {
		for _, r := range roles {
			if copy >= copiesOf(r) {
				continue
			}
			name := r
			if copy > 0 {
				name = fmt.Sprintf("%s-%d", r, copy+1)
			}
			c.startCopy(r, name, copy, opts.chaos)
			c.waitReady(r)
			if r == roleSensor {
				c.waitStreamEnsured()
			}
		}
	}
	t.Logf("cluster up in %s (binary built once in %s): nats %s, kafka %s, database %s",
		time.Since(start).Round(time.Millisecond), buildDuration.Round(time.Millisecond), c.natsURL(0), c.kafka.Addr(), dbVia)
	return c
}

// addUser creates the drill user with `sensorhub user add --password-stdin`.
// It also creates the admin "ops" (same password), the person who sends
// chaos requests over NATS.
func (c *cluster) addUser() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), testenv.Wait(c.t))
	defer cancel()
	for _, u := range []struct{ name, roles string }{{c.username, "user"}, {opsUser, messages.RoleAdmin}} {
		cmd := exec.CommandContext(ctx, binPath, "user", "add", "--username", u.name, "--password-stdin",
			"--roles", u.roles, "--database-url", c.viaURL, "--log-format", "json")
		cmd.Env = childEnv()
		cmd.Stdin = strings.NewReader(c.password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			c.t.Fatalf("sensorhub user add %s: %v\n%s", u.name, err, out)
		}
	}
}

// opsUser is the drills' admin person.
const opsUser = "ops"

// ops connects as the admin person, through the auth role's callout (so
// auth must be running); it reconnects by itself and is closed at the end.
func (c *cluster) ops() *nats.Conn {
	c.t.Helper()
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: c.natsURL(0), Name: opsUser,
		Credentials: natsx.Credentials{User: opsUser, Password: c.password}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	if err := natsx.WaitConnected(c.t.Context(), nc); err != nil {
		c.t.Fatal(err)
	}
	return nc
}

// childEnv is the environment of a role: this process's, without any
// SENSORHUB_* variable, so that only what the harness sets applies.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SENSORHUB_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// roleArgs are the flags of one role. Breakers are tuned short so that the
// drills see them open and close within seconds; the environment sets the
// settings every role shares (every flag has a SENSORHUB_* twin).
func (c *cluster) roleArgs(role string) []string {
	if c.stockArgs {
		return c.stockRoleArgs(role)
	}
	switch role {
	case roleEdge:
		return []string{"--http", "127.0.0.1:0",
			"--auth-breaker-timeout", "3s", "--auth-breaker-open-for", "1s",
			"--sensor-breaker-timeout", "3s", "--sensor-breaker-open-for", "1s",
			"--bridge-breaker-open-for", "1s"}
	case roleAuth:
		return []string{"--database-url", c.viaURL,
			"--callout-issuer-file", filepath.Join(c.keyDir, natsauth.IssuerFile),
			"--callout-xkey-file", filepath.Join(c.keyDir, natsauth.XKeyFile),
			"--jwt-key-file", filepath.Join(c.dir, "jwt-ed25519.pem"),
			"--database-breaker-open-for", "1s"}
	case roleSensor:
		return []string{"--database-url", c.viaURL, "--lease", "2s", "--workers", "2",
			"--database-breaker-open-for", "1s", "--auth-breaker-open-for", "1s",
			"--jetstream-breaker-open-for", "1s"}
	case roleBridge:
		return []string{"--kafka-brokers", c.kafka.Addr(),
			"--kafka-breaker-timeout", "4s", "--kafka-breaker-failures", "2", "--kafka-breaker-open-for", "1s"}
	}
	c.t.Fatalf("unknown role %q", role)
	return nil
}

// stockRoleArgs are the flags a role cannot do without here (where its
// dependencies and keys are); everything else is left at its default.
func (c *cluster) stockRoleArgs(role string) []string {
	switch role {
	case roleEdge:
		return []string{"--http", "127.0.0.1:0"}
	case roleAuth:
		return []string{"--database-url", c.viaURL,
			"--callout-issuer-file", filepath.Join(c.keyDir, natsauth.IssuerFile),
			"--callout-xkey-file", filepath.Join(c.keyDir, natsauth.XKeyFile),
			"--jwt-key-file", filepath.Join(c.dir, "jwt-ed25519.pem")}
	case roleSensor:
		return []string{"--database-url", c.viaURL}
	case roleBridge:
		return []string{"--kafka-brokers", c.kafka.Addr()}
	}
	c.t.Fatalf("unknown role %q", role)
	return nil
}

// natsURL is the NATS URL the copy-th copy of a role is given: the single
// server's, or every cluster node's, rotated by copy so that the copies
// spread over the nodes.
func (c *cluster) natsURL(copy int) string {
	if c.nodes == nil {
		return c.nats.URL()
	}
	urls := c.nodes.urls()
	k := copy % len(urls)
	return strings.Join(append(urls[k:], urls[:k]...), ",")
}

// start runs a role as a new process; t.Cleanup kills it and, when the test
// failed, dumps its output.
func (c *cluster) start(role string, chaos bool) *proc {
	c.t.Helper()
	return c.startCopy(role, role, 0, chaos)
}

// startCopy runs the copy-th copy of role as a new process named name (a
// process already named so is replaced).
func (c *cluster) startCopy(role, name string, copy int, chaos bool) *proc {
	c.t.Helper()
	args := append([]string{role}, c.roleArgs(role)...)
	out := &testenv.Buffer{}
	cmd := exec.Command(binPath, args...)
	cmd.Env = childEnv(append([]string{
		"SENSORHUB_NATS_URL=" + c.natsURL(copy),
		"SENSORHUB_NATS_NKEY_FILE=" + filepath.Join(c.keyDir, natsauth.RoleFile(role)), // each role as itself
		"SENSORHUB_LOG_FORMAT=json",
		"SENSORHUB_LOG_LEVEL=info",
		fmt.Sprintf("SENSORHUB_CHAOS=%t", chaos),
	}, c.env...)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", role, err)
	}
	p := &proc{role: role, name: name, args: args, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.t.Cleanup(func() {
		p.kill(c.t)
		if c.t.Failed() {
			c.t.Logf("---- %s (pid %d, %v) output:\n%s", name, cmd.Process.Pid, p.err, p.tail(150))
		}
	})
	c.mu.Lock()
	if old := c.procs[name]; old != nil {
		c.gone = append(c.gone, old)
	}
	c.procs[name] = p
	c.mu.Unlock()
	if role == roleEdge {
		addr := c.waitEdgeAddr(p)
		if name == role {
			c.edgeAddr = addr
		}
		c.mu.Lock()
		c.edgeAddrs = append(c.edgeAddrs, addr)
		c.mu.Unlock()
	}
	return p
}

// all returns every current process, by name.
func (c *cluster) all() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*proc, 0, len(c.procs))
	for _, p := range c.procs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// proc returns the current process of role.
func (c *cluster) proc(role string) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[role]
}

// waitEdgeAddr reads the address the edge bound (it listens on port 0, so
// no port is guessed) from its "edge listening" log line.
func (c *cluster) waitEdgeAddr(p *proc) string {
	c.t.Helper()
	var addr string
	err := poll(testenv.Wait(c.t), 20*time.Millisecond, func() error {
		if p.exited() {
			return fmt.Errorf("edge exited: %v", p.err)
		}
		rec, ok := p.findLog(func(r map[string]any) bool { return r["msg"] == "edge listening" })
		if !ok {
			return errors.New(`no "edge listening" log line yet`)
		}
		addr, _ = rec["addr"].(string)
		return nil
	})
	if err != nil || addr == "" {
		c.t.Fatalf("edge address: %v (addr %q)\n%s", err, addr, p.tail(50))
	}
	return addr
}

// waitReady waits until every role given answers: the edge's /readyz with
// 200, the others their sensorhub.<role>.health over NATS.
func (c *cluster) waitReady(roles ...string) {
	c.t.Helper()
	if err := c.ready(testenv.Wait(c.t), roles...); err != nil {
		c.t.Fatalf("readiness: %v", err)
	}
}

func (c *cluster) ready(timeout time.Duration, roles ...string) error {
	return poll(timeout, pollInterval, func() error {
		for _, role := range roles {
			if p := c.proc(role); p != nil && p.exited() {
				return fmt.Errorf("%s exited: %v\n%s", role, p.err, p.tail(30))
			}
			if role == roleEdge {
				if r := c.get("/readyz"); r.status != http.StatusOK {
					return fmt.Errorf("edge /readyz: %s", r)
				}
				continue
			}
			if _, err := c.health(role); err != nil {
				return err
			}
		}
		return nil
	})
}

// waitStreamEnsured waits until the sensor role reports JetStream up,
// which it does once it has ensured the event stream.
func (c *cluster) waitStreamEnsured() {
	c.t.Helper()
	err := poll(testenv.Wait(c.t), pollInterval, func() error {
		h, err := c.health(roleSensor)
		if err != nil {
			return err
		}
		if js := h.Dependencies["jetstream"]; js.Status != messages.HealthUp {
			return fmt.Errorf("sensor: jetstream %s (%s)", js.Status, js.LastError)
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("event stream: %v", err)
	}
}

// health asks a role for its health over NATS.
func (c *cluster) health(role string) (messages.HealthReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var h messages.HealthReply
	if _, err := natsx.Request(ctx, c.nc, c.subj.Health(role), nil, nil, &h); err != nil {
		return h, fmt.Errorf("%s health: %w", role, err)
	}
	return h, nil
}

// running fails the test unless every role given still has its process.
func (c *cluster) running(t testing.TB, roles ...string) {
	t.Helper()
	for _, role := range roles {
		if p := c.proc(role); p == nil || p.exited() {
			msg := "never started"
			if p != nil {
				msg = fmt.Sprintf("exited: %v\n%s", p.err, p.tail(40))
			}
			t.Errorf("%s process is not running: %s", role, msg)
		}
	}
}

// httpReply is one HTTP answer of the edge (or the transport error).
type httpReply struct {
	status  int
	body    []byte
	header  http.Header
	err     error
	elapsed time.Duration
}

func (r httpReply) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// errorBody decodes the error envelope of a failed reply.
func (r httpReply) errorBody() messages.Error {
	var e messages.Error
	_ = json.Unmarshal(r.body, &e)
	return e
}

func (c *cluster) do(req *http.Request) httpReply {
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return httpReply{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return httpReply{status: resp.StatusCode, body: body, header: resp.Header, err: err, elapsed: time.Since(start)}
}

// url is path on an edge: the only one, or each copy in turn.
func (c *cluster) url(path string) string {
	c.mu.Lock()
	addrs := c.edgeAddrs
	c.mu.Unlock()
	if len(addrs) <= 1 {
		return "http://" + c.edgeAddr + path
	}
	return "http://" + addrs[c.nextEdge.Add(1)%uint64(len(addrs))] + path
}

func (c *cluster) get(path string) httpReply {
	req, err := http.NewRequest(http.MethodGet, c.url(path), nil)
	if err != nil {
		return httpReply{err: err}
	}
	return c.do(req)
}

// login posts the drill user's credentials as a form, as the seed does.
func (c *cluster) login() httpReply {
	form := url.Values{"username": {c.username}, "password": {c.password}}
	req, err := http.NewRequest(http.MethodPost, c.url("/auth/token"), strings.NewReader(form.Encode()))
	if err != nil {
		return httpReply{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// token logs in and returns the access token, failing the test otherwise.
func (c *cluster) token(t testing.TB) string {
	t.Helper()
	r := c.login()
	if r.status != http.StatusOK {
		t.Fatalf("login: %s", r)
	}
	var tok messages.TokenReply
	if err := json.Unmarshal(r.body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("login reply %s: %v", r, err)
	}
	return tok.AccessToken
}

// submit posts a test with no body (the sensor role simulates the
// acquisition) and returns the reply and, on 202, the test id.
func (c *cluster) submit(token string) (httpReply, string) {
	req, err := http.NewRequest(http.MethodPost, c.url("/test/sensor/temperature"), nil)
	if err != nil {
		return httpReply{err: err}, ""
	}
	req.Header.Set("Authorization", "Bearer "+token)
	r := c.do(req)
	if r.status != http.StatusAccepted {
		return r, ""
	}
	var acc messages.TestAccepted
	if err := json.Unmarshal(r.body, &acc); err != nil {
		r.err = fmt.Errorf("decode 202 body: %w", err)
		return r, ""
	}
	return r, acc.TestID
}

// edgeHealth is GET /health, decoded.
func (c *cluster) edgeHealth() (messages.EdgeHealth, httpReply, error) {
	r := c.get("/health")
	var h messages.EdgeHealth
	if r.err != nil {
		return h, r, r.err
	}
	if r.status != http.StatusOK {
		return h, r, fmt.Errorf("/health: %s", r)
	}
	if err := json.Unmarshal(r.body, &h); err != nil {
		return h, r, fmt.Errorf("decode /health: %w", err)
	}
	return h, r, nil
}

// kafkaStats is GET /kafka/stats, decoded.
func (c *cluster) kafkaStats() (messages.BridgeStats, error) {
	r := c.get("/kafka/stats")
	var s messages.BridgeStats
	if r.status != http.StatusOK {
		return s, fmt.Errorf("/kafka/stats: %s", r)
	}
	if err := json.Unmarshal(r.body, &s); err != nil {
		return s, fmt.Errorf("decode /kafka/stats: %w", err)
	}
	return s, nil
}

// db opens a connection to the real database (not through the proxy), for
// the test's own checks; closed by t.Cleanup.
func (c *cluster) db(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dbURL)
	if err != nil {
		t.Fatalf("connect to the real database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
		defer cancel()
		_ = conn.Close(ctx)
	})
	return conn
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
