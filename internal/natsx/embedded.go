package natsx

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process NATS server.
type EmbeddedConfig struct {
	// Listen is host:port; port 0 picks a free port. Default 127.0.0.1:4222.
	Listen string
	// FallbackFreePort picks a free port when Listen's port is busy.
	FallbackFreePort bool
	// StoreDir enables JetStream with file storage there ("" disables JetStream).
	StoreDir string
	// SyncAlways fsyncs every JetStream write (slower, survives power loss).
	SyncAlways bool
	// Config is nats-server configuration text (natsauth.ServerConfig's
	// Render: accounts, users, the auth callout), processed before the
	// fields above, which win over it.
	Config string
	// TLS, when its files are set, makes the server accept TLS clients
	// only (and, with a client CA, only clients with a certificate).
	TLS    EmbeddedTLS
	Logger *slog.Logger
}

// StartEmbedded starts a NATS server in this process and waits until it
// accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4222"
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("parse nats listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("parse nats listen port %q: %w", portStr, err)
	}
	if port != 0 && !portFree(host, port) {
		// Checked up front: a server that cannot listen only logs and never
		// becomes ready, which would cost the full readiness wait.
		if !cfg.FallbackFreePort {
			return nil, fmt.Errorf("nats listen address %s is busy", cfg.Listen)
		}
		if cfg.Logger != nil {
			cfg.Logger.Warn("nats listen port busy, using a free port instead", "wanted", cfg.Listen)
		}
		port = server.RANDOM_PORT
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{}
	if cfg.Config != "" {
		if err := opts.ProcessConfigString(cfg.Config); err != nil {
			return nil, fmt.Errorf("embedded nats configuration: %w", err)
		}
	}
	opts.ServerName = "sensorhub-embedded"
	opts.Host = host
	opts.Port = port
	opts.NoSigs = true
	opts.MaxPayload = 8 << 20
	if cfg.StoreDir != "" {
		opts.JetStream = true
		opts.StoreDir = cfg.StoreDir
		if cfg.SyncAlways {
			opts.SyncAlways = true
		}
	}
	if err := cfg.TLS.apply(opts); err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats not ready within 10s")
	}
	return ns, nil
}

func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// ShutdownEmbedded stops the server and waits for it.
func ShutdownEmbedded(ns *server.Server) {
	if ns == nil {
		return
	}
	ns.Shutdown()
	ns.WaitForShutdown()
}
