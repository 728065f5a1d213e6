package testenv

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsx"
)

// NATSServer is an embedded NATS server with JetStream on disk.
type NATSServer struct {
	t        testing.TB
	Srv      *server.Server
	StoreDir string
	port     int
	tls      natsx.EmbeddedTLS
}

// NATS starts an embedded NATS server with JetStream (file storage in a
// temporary directory) on a free 127.0.0.1 port, shut down by t.Cleanup.
func NATS(t testing.TB) *NATSServer {
	t.Helper()
	n := &NATSServer{t: t, StoreDir: t.TempDir()}
	n.start("127.0.0.1:0")
	t.Cleanup(n.Shutdown)
	return n
}

// NATSWithTLS is NATS with a server that accepts TLS clients only (and,
// with tls.ClientCAFile, only clients presenting a certificate). Its URL
// stays nats://: the client upgrades to TLS after the server's INFO.
func NATSWithTLS(t testing.TB, tls natsx.EmbeddedTLS) *NATSServer {
	t.Helper()
	n := &NATSServer{t: t, StoreDir: t.TempDir(), tls: tls}
	n.start("127.0.0.1:0")
	t.Cleanup(n.Shutdown)
	return n
}

func (n *NATSServer) start(listen string) {
	n.t.Helper()
	srv, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Listen: listen, StoreDir: n.StoreDir, TLS: n.tls, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		n.t.Fatalf("start embedded nats: %v", err)
	}
	n.Srv = srv
	addr := srv.Addr().(*net.TCPAddr)
	n.port = addr.Port
}

// URL is the client URL of the server.
func (n *NATSServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

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
		srv, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Listen: listen, StoreDir: n.StoreDir, TLS: n.tls, Logger: slog.New(slog.DiscardHandler)})
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

// Conn connects a client to the server, closed by t.Cleanup.
func (n *NATSServer) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
