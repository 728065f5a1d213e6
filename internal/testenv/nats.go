package testenv

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsauth"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// NATSServer is an embedded NATS server with JetStream on disk, locked as
// production is: the roles' nkeys and permissions from natsauth, and the
// auth callout for people (answered only where a test runs the auth role).
type NATSServer struct {
	t        testing.TB
	Srv      *server.Server
	StoreDir string
	// KeyDir holds the identities (natsauth.LoadOrCreate).
	KeyDir     string
	Identities *natsauth.Identities
	config     string
	port       int
	tls        natsx.EmbeddedTLS
}

// NATS starts a locked embedded NATS server with JetStream (file storage in
// a temporary directory) on a free 127.0.0.1 port, for the default subject
// prefix; shut down by t.Cleanup.
func NATS(t testing.TB) *NATSServer {
	t.Helper()
	return NATSWithPrefix(t, messages.DefaultSubjects())
}

// NATSWithPrefix is NATS with the permissions of subj's prefix.
func NATSWithPrefix(t testing.TB, subj messages.Subjects) *NATSServer {
	t.Helper()
	n := newLockedNATS(t, subj)
	n.start("127.0.0.1:0")
	t.Cleanup(n.Shutdown)
	return n
}

func newLockedNATS(t testing.TB, subj messages.Subjects) *NATSServer {
	t.Helper()
	n := &NATSServer{t: t, StoreDir: t.TempDir(), KeyDir: filepath.Join(t.TempDir(), "keys")}
	ids, _, err := natsauth.LoadOrCreate(n.KeyDir)
	if err != nil {
		t.Fatalf("nats identities: %v", err)
	}
	n.Identities = ids
	n.config = natsauth.ServerConfig{Subjects: subj, Keys: ids.Public(), AuthTimeout: AuthTimeout}.Render()
	return n
}

// AuthTimeout is how long the test servers wait for the auth callout's
// answer before refusing a connecting person. Production keeps
// natsauth.DefaultAuthTimeout (2 s); a test machine busy with other suites
// under -race has been seen taking longer to answer even a garbage token,
// and a refusal then looks like a protocol error instead of an
// authorization violation. Connect timeouts of people in tests exceed it.
const AuthTimeout = 10 * time.Second

func (n *NATSServer) embedded(listen string) natsx.EmbeddedConfig {
	return natsx.EmbeddedConfig{Listen: listen, StoreDir: n.StoreDir, Config: n.config, TLS: n.tls, Logger: slog.New(slog.DiscardHandler)}
}

// NATSWithTLS is NATS with a server that accepts TLS clients only (and,
// with tls.ClientCAFile, only clients presenting a certificate). Its URL
// stays nats://: the client upgrades to TLS after the server's INFO.
func NATSWithTLS(t testing.TB, tls natsx.EmbeddedTLS) *NATSServer {
	t.Helper()
	n := newLockedNATS(t, messages.DefaultSubjects())
	n.tls = tls
	n.start("127.0.0.1:0")
	t.Cleanup(n.Shutdown)
	return n
}

func (n *NATSServer) start(listen string) {
	n.t.Helper()
	srv, err := natsx.StartEmbedded(n.embedded(listen))
	if err != nil {
		n.t.Fatalf("start embedded nats: %v", err)
	}
	n.Srv = srv
	addr := srv.Addr().(*net.TCPAddr)
	n.port = addr.Port
}

// URL is the client URL of the server.
func (n *NATSServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// Creds are role's real credentials: its nkey seed file and inbox prefix.
func (n *NATSServer) Creds(role string) natsx.Credentials {
	return natsx.Credentials{NkeyFile: filepath.Join(n.KeyDir, natsauth.RoleFile(role)), InboxPrefix: messages.InboxPrefix(role)}
}

// Shutdown stops the server (idempotent).
func (n *NATSServer) Shutdown() {
	if n.Srv != nil {
		natsx.ShutdownEmbedded(n.Srv)
		n.Srv = nil
	}
}

// Restart stops the server and starts it again on the same port and store
// directory, as an operator restarting NATS would. Clients reconnect.
func (n *NATSServer) Restart() {
	n.t.Helper()
	n.Shutdown()
	n.Start()
}

// Start starts a stopped server again on the same port and store directory.
// The port may briefly be in TIME_WAIT; Start retries for a few seconds.
func (n *NATSServer) Start() {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	listen := fmt.Sprintf("127.0.0.1:%d", n.port)
	for {
		srv, err := natsx.StartEmbedded(n.embedded(listen))
		if err == nil {
			n.Srv = srv
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("restart embedded nats on %s: %v", listen, err)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the OS to free the port, not for an actor
	}
}

// Conn connects a client as role (its real nkey and inbox prefix), closed
// by t.Cleanup.
func (n *NATSServer) Conn(t testing.TB, role string) *nats.Conn {
	t.Helper()
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: n.URL(), Name: "test-" + role, Credentials: n.Creds(role),
		ReconnectWait: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("connect nats as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	return nc
}
