package drills

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/internal/natsauth"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// TestDrillNATSClusterNodeLost is issue 14's scale-out drill: sensorhub on a
// 3-node NATS cluster (nats-server processes on the configurations
// `sensorhub nats-config --cluster-name` writes, SENSOR_EVENTS and the
// JWKS bucket at 3 replicas), two copies of every role, each given the
// three URLs in its own order. While a client submits through both edges,
// the node leading SENSOR_EVENTS is killed (SIGKILL). Every accepted test
// must complete exactly once, every event reach Kafka, and every role
// process stay up and connected to a surviving node, with nothing
// restarted by hand. The pause around the kill is measured and logged.
func TestDrillNATSClusterNodeLost(t *testing.T) {
	c := newCluster(t, clusterOptions{
		copies:    2,
		natsNodes: 3,
		env: []string{
			"SENSORHUB_STREAM_REPLICAS=3", "SENSORHUB_JWKS_REPLICAS=3",
			// An ack lost in the election is redelivered after AckWait:
			// shorter than the default so that the check does not wait
			// half a minute for it (twice the Kafka breaker timeout).
			"SENSORHUB_ACK_WAIT=10s",
		},
	})
	for _, role := range []string{roleAuth, roleSensor, roleBridge, roleEdge} {
		if n := len(c.copiesOf(role)); n != 2 {
			t.Fatalf("%d %s processes, want 2", n, role)
		}
	}
	ops := c.nodes.person(t, c, c.nodes.urls())
	js, err := jetstream.New(ops)
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []string{messages.StreamEvents, "KV_" + messages.BucketKeys} {
		info := c.nodes.streamInfo(t, js, stream)
		if info.Config.Replicas != 3 {
			t.Errorf("stream %s has %d replicas, want 3", stream, info.Config.Replicas)
		}
	}
	// People log in through the auth callout on every node, though auth's
	// callout subscriptions sit on one or two of them.
	for _, n := range c.nodes.nodes {
		c.nodes.personOn(t, c, n)
	}

	l := newLedger()
	token := c.token(t)
	l.setPhase("before_kill")
	load := startLoad(t, c, token, l)
	c.waitAccepted(t, l, "before_kill", loadPerPhase)

	// nats.go shuffles each process's server list, so which processes sit
	// on a node is chance: the victim is the node most role processes are
	// connected to (never none), made the SENSOR_EVENTS leader by a
	// step-down with that node preferred, as an operator would move it.
	victim := c.nodes.busiest(c.all())
	c.nodes.moveLeader(t, ops, js, messages.StreamEvents, victim)
	var onVictim []string
	for _, p := range c.all() {
		if p.connectedURL() == victim.url {
			onVictim = append(onVictim, p.name)
		}
	}
	if len(onVictim) == 0 {
		t.Fatalf("no role process is connected to %s, the busiest node", victim.name)
	}
	l.setPhase("after_kill")
	killedAt := time.Now()
	victim.kill(t)
	t.Logf("killed %s (%s), the SENSOR_EVENTS leader, after %d accepted submissions; role processes connected to it: %v",
		victim.name, victim.url, len(l.acceptTimes()), onVictim)

	var newLeader string
	err = poll(testenv.Wait(t), pollInterval, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
		defer cancel()
		s, err := js.Stream(ctx, messages.StreamEvents)
		if err != nil {
			return err
		}
		if cl := s.CachedInfo().Cluster; cl == nil || cl.Leader == "" || cl.Leader == victim.name {
			return fmt.Errorf("stream leader %+v", cl)
		}
		newLeader = s.CachedInfo().Cluster.Leader
		return nil
	})
	if err != nil {
		t.Fatalf("no new SENSOR_EVENTS leader: %v", err)
	}
	electedAfter := time.Since(killedAt)
	c.waitAccepted(t, l, "after_kill", loadPerPhase)
	if err := load.Stop(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	t.Logf("load client: %d requests sent, %d ticks skipped (too many in flight)", load.sent.Load(), load.skipped.Load())

	// The roles failed over by themselves: each process runs, and its last
	// connection is to a node that is still up.
	c.running(t, roleEdge, roleAuth, roleSensor, roleBridge)
	if err := c.ready(testenv.Wait(t), roleEdge, roleAuth, roleSensor, roleBridge); err != nil {
		t.Fatalf("not every role answers after the node was lost: %v", err)
	}
	for _, p := range c.all() {
		var url string
		err := poll(testenv.Wait(t), pollInterval, func() error {
			if p.exited() {
				return fmt.Errorf("exited: %v", p.err)
			}
			url = p.connectedURL()
			if url == "" || url == victim.url {
				return fmt.Errorf("last connected to %q", url)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s did not fail over from %s: %v\n%s", p.name, victim.url, err, p.tail(20))
		}
	}
	c.nodes.waitRoleConnections(t, map[string]int{roleAuth: 2, roleSensor: 2, roleBridge: 2, roleEdge: 2})
	for _, n := range c.nodes.nodes {
		if n != victim {
			c.nodes.personOn(t, c, n)
		}
	}

	c.verifyNoLoss(t, l)

	// The pause: the longest gap between accepted submissions, and between
	// events written to Kafka, from just before the kill to the end of load.
	from := killedAt.Add(-time.Second)
	acceptGap, acceptAt := longestGap(l.acceptTimes(), from, stoppedAt)
	msgs, err := testenv.ReadAllWithin(c.kafka.Addr(), messages.DefaultKafkaTopic, 1, testenv.Wait(t))
	if err != nil {
		t.Fatal(err)
	}
	times := make([]time.Time, len(msgs))
	for i, m := range msgs {
		times[i] = m.Time
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	kafkaGap, kafkaAt := longestGap(times, from, stoppedAt)
	t.Logf("cluster summary: 3 nodes, 2 copies of each role; killed %s (SENSOR_EVENTS leader, %d role processes on it failed over), new leader %s after %s; "+
		"longest pause in accepted submissions %s (from %s after the kill), in events reaching Kafka %s (from %s after the kill)",
		victim.name, len(onVictim), newLeader, electedAfter.Round(time.Millisecond),
		acceptGap.Round(time.Millisecond), acceptAt.Sub(killedAt).Round(time.Millisecond),
		kafkaGap.Round(time.Millisecond), kafkaAt.Sub(killedAt).Round(time.Millisecond))
}

// copiesOf returns the processes of role.
func (c *cluster) copiesOf(role string) []*proc {
	var out []*proc
	for _, p := range c.all() {
		if p.role == role {
			out = append(out, p)
		}
	}
	return out
}

// waitAccepted waits until the load client had n submissions accepted
// during phase.
func (c *cluster) waitAccepted(t *testing.T, l *ledger, phase string, n int) {
	t.Helper()
	err := poll(testenv.Wait(t), pollInterval, func() error {
		if got := l.phaseAccepted(phase); got < n {
			return fmt.Errorf("%d submissions accepted during %s, want %d%s", got, phase, n, l.phaseSummary())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
}

// connectedURL is the server the process last (re)connected to, from its
// "nats connected" and "nats reconnected" log lines.
func (p *proc) connectedURL() string {
	url := ""
	for _, rec := range p.logLines() {
		if rec["msg"] == "nats connected" || rec["msg"] == "nats reconnected" {
			url, _ = rec["url"].(string)
		}
	}
	return url
}

// longestGap is the longest time between consecutive instants of sorted
// times within [from, to] (the edges of the window count as instants), and
// when it began.
func longestGap(sorted []time.Time, from, to time.Time) (time.Duration, time.Time) {
	prev := from
	var gap time.Duration
	at := from
	for _, ts := range append(slices.Clone(sorted), to) {
		if ts.Before(from) {
			continue
		}
		if ts.After(to) {
			ts = to
		}
		if d := ts.Sub(prev); d > gap {
			gap, at = d, prev
		}
		prev = ts
	}
	return gap, at
}

// natsNodes is a NATS cluster of nats-server processes on 127.0.0.1, each
// on the configuration `sensorhub nats-config` writes for its node (one
// identity directory shared by all: the same role keys, callout keys and
// route password).
type natsNodes struct {
	keyDir string
	nodes  []*natsNode
}

// natsNode is one nats-server process.
type natsNode struct {
	name    string
	url     string // nats://127.0.0.1:port
	monitor string // host:port of its HTTP monitoring
	cmd     *exec.Cmd
	out     *testenv.Buffer
	done    chan struct{}
}

// clusterName is the NATS cluster's name in the drills.
const clusterName = "sensorhub-drill"

// startNATSNodes writes n node configurations with the sensorhub binary
// and runs a nats-server process on each, JetStream in a temporary
// directory. It needs the nats-server binary named by SENSORHUB_NATS_SERVER
// (CI installs one); without it the test skips, or fails when
// SENSORHUB_REQUIRE_TOOLS=1.
func startNATSNodes(t *testing.T, n int) *natsNodes {
	t.Helper()
	bin := os.Getenv("SENSORHUB_NATS_SERVER")
	if bin == "" {
		if os.Getenv("SENSORHUB_REQUIRE_TOOLS") == "1" {
			t.Fatal("SENSORHUB_NATS_SERVER names no nats-server binary (SENSORHUB_REQUIRE_TOOLS=1)")
		}
		t.Skip("SENSORHUB_NATS_SERVER is not set: the NATS cluster drill needs a nats-server binary")
	}
	dir := t.TempDir()
	nn := &natsNodes{keyDir: filepath.Join(dir, "nats")}
	ports := freePorts(t, 3*n)
	var routes []string
	for i := range n {
		routes = append(routes, "127.0.0.1:"+strconv.Itoa(ports[3*i+1]))
	}
	for i := range n {
		node := &natsNode{
			name:    fmt.Sprintf("n%d", i+1),
			url:     "nats://127.0.0.1:" + strconv.Itoa(ports[3*i]),
			monitor: "127.0.0.1:" + strconv.Itoa(ports[3*i+2]),
			out:     &testenv.Buffer{},
			done:    make(chan struct{}),
		}
		ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
		cmd := exec.CommandContext(ctx, binPath, "nats-config", "--out", nn.keyDir,
			"--server-name", node.name, "--cluster-name", clusterName,
			"--listen", strings.TrimPrefix(node.url, "nats://"), "--cluster-listen", routes[i],
			"--routes", strings.Join(routes, ","), "--monitor", node.monitor,
			"--store-dir", filepath.Join(dir, "js-"+node.name), "--sync-always=false")
		cmd.Env = childEnv()
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("sensorhub nats-config for %s: %v\n%s", node.name, err, out)
		}
		conf := filepath.Join(nn.keyDir, "nats-server-"+node.name+".conf")
		node.cmd = exec.Command(bin, "-c", conf)
		node.cmd.Stdout, node.cmd.Stderr = node.out, node.out
		node.cmd.SysProcAttr = procAttr()
		if err := node.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		go func() { _ = node.cmd.Wait(); close(node.done) }()
		t.Cleanup(func() {
			node.kill(t)
			if t.Failed() {
				t.Logf("---- nats-server %s output:\n%s", node.name, tailOf(node.out.String(), 60))
			}
		})
		nn.nodes = append(nn.nodes, node)
	}
	// Ready: every node healthy with JetStream (which needs the meta
	// leader elected over the routes).
	hc := &http.Client{Timeout: httpTimeout}
	for _, node := range nn.nodes {
		err := poll(testenv.Wait(t), pollInterval, func() error {
			if node.exited() {
				return errors.New("exited")
			}
			resp, err := hc.Get("http://" + node.monitor + "/healthz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("/healthz: %s", resp.Status)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("nats-server %s not healthy: %v\n%s", node.name, err, tailOf(node.out.String(), 40))
		}
	}
	return nn
}

// urls is every node's client URL, in node order.
func (nn *natsNodes) urls() []string {
	out := make([]string, len(nn.nodes))
	for i, n := range nn.nodes {
		out[i] = n.url
	}
	return out
}

// conn connects the test as role (its nkey) to urls; closed by t.Cleanup.
func (nn *natsNodes) conn(t *testing.T, role string, urls []string) *nats.Conn {
	t.Helper()
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: strings.Join(urls, ","), Name: "test-" + role,
		Credentials:   natsx.Credentials{NkeyFile: filepath.Join(nn.keyDir, natsauth.RoleFile(role)), InboxPrefix: messages.InboxPrefix(role)},
		ReconnectWait: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("connect nats as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// person connects as the admin person "ops" (user and password, admitted
// by the auth role's callout) to urls; closed by t.Cleanup.
func (nn *natsNodes) person(t *testing.T, c *cluster, urls []string) *nats.Conn {
	t.Helper()
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: strings.Join(urls, ","), Name: opsUser,
		Credentials: natsx.Credentials{User: opsUser, Password: c.password}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	if err := natsx.WaitConnected(ctx, nc); err != nil {
		t.Fatalf("person %s through %v: %v", opsUser, urls, err)
	}
	return nc
}

// personOn checks that a person logs in through node n and is served
// there: connected to n, a request to the sensor role is answered.
func (nn *natsNodes) personOn(t *testing.T, c *cluster, n *natsNode) {
	t.Helper()
	nc := nn.person(t, c, []string{n.url})
	defer nc.Close()
	if got := nc.ConnectedUrl(); got != n.url {
		t.Errorf("person connected to %s, want %s", got, n.url)
	}
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	var types json.RawMessage
	if _, err := natsx.Request(ctx, nc, c.subj.SensorTypes(), nil, nil, &types); err != nil {
		t.Errorf("person on %s: sensor types: %v", n.name, err)
	}
}

// busiest is the node most of procs are connected to.
func (nn *natsNodes) busiest(procs []*proc) *natsNode {
	count := map[string]int{}
	for _, p := range procs {
		count[p.connectedURL()]++
	}
	best := nn.nodes[0]
	for _, n := range nn.nodes {
		if count[n.url] > count[best.url] {
			best = n
		}
	}
	return best
}

// moveLeader makes n the leader of stream: a leader step-down asking for
// n (admin may: natsauth.PersonPermissions), again until an election
// picks it (the preference is a request, not a guarantee).
func (nn *natsNodes) moveLeader(t *testing.T, admin *nats.Conn, js jetstream.JetStream, stream string, n *natsNode) {
	t.Helper()
	req := []byte(fmt.Sprintf(`{"placement":{"preferred":%q}}`, n.name))
	err := poll(testenv.Wait(t), pollInterval, func() error {
		if leader := nn.streamInfo(t, js, stream).Cluster.Leader; leader == n.name {
			return nil
		}
		msg, err := admin.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, requestTimeout)
		if err != nil {
			return fmt.Errorf("step down: %w", err)
		}
		var resp struct {
			Success bool `json:"success"`
			Error   *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return fmt.Errorf("step down answer %q: %w", msg.Data, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("step down: %s", resp.Error.Description)
		}
		return fmt.Errorf("asked %s to lead %s", n.name, stream)
	})
	if err != nil {
		t.Fatalf("move the %s leader to %s: %v", stream, n.name, err)
	}
}

// streamInfo is the stream's info, fetched fresh.
func (nn *natsNodes) streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	err := poll(testenv.Wait(t), pollInterval, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
		defer cancel()
		s, err := js.Stream(ctx, name)
		if err != nil {
			return err
		}
		info = s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("stream %s has no leader yet", name)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return info
}

// waitRoleConnections waits until the nodes still up hold want
// connections of each role (by connection name, sensorhub-<role>), as
// their /connz reports.
func (nn *natsNodes) waitRoleConnections(t *testing.T, want map[string]int) {
	t.Helper()
	hc := &http.Client{Timeout: httpTimeout}
	err := poll(testenv.Wait(t), pollInterval, func() error {
		got := map[string]int{}
		for _, n := range nn.nodes {
			if n.exited() {
				continue
			}
			resp, err := hc.Get("http://" + n.monitor + "/connz?limit=1024")
			if err != nil {
				return err
			}
			var connz struct {
				Connections []struct {
					Name string `json:"name"`
				} `json:"connections"`
			}
			err = json.NewDecoder(resp.Body).Decode(&connz)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("%s /connz: %w", n.name, err)
			}
			for _, cn := range connz.Connections {
				got[strings.TrimPrefix(cn.Name, "sensorhub-")]++
			}
		}
		for role, w := range want {
			if got[role] != w {
				return fmt.Errorf("surviving nodes hold %d %s connections, want %d (all: %v)", got[role], role, w, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("role connections: %v", err)
	}
}

func (n *natsNode) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (no clean shutdown, no leadership handed over) and
// waits for the process to be gone.
func (n *natsNode) kill(t testing.TB) {
	t.Helper()
	if n.exited() {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(exitTimeout):
		t.Fatalf("nats-server %s still running %s after SIGKILL", n.name, exitTimeout)
	}
}

// freePorts returns n distinct free ports on 127.0.0.1 (held together
// while picked, so none repeats).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
