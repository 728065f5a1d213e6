// Package kafkadev runs an in-process Kafka-protocol broker (franz-go's
// kfake) for `sensorhub dev` and for tests, with switches that make it
// misbehave on purpose: refuse every produce request, or stop listening and
// cut every connection while keeping its data, then listen again on the same
// address.
//
// It is a development and test tool, never a production broker: one node,
// no replication, and the data lives in memory unless DataDir is set.
package kafkadev

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultListen is the address Start listens on when none is configured.
const DefaultListen = "127.0.0.1:9092"

// ErrClosed is returned by Start (the method) once the broker is closed.
var ErrClosed = errors.New("kafkadev: broker closed")

// Config configures the broker. Zero fields take the defaults.
type Config struct {
	// Listen is host:port (default 127.0.0.1:9092; port 0 picks a free port).
	Listen string
	// FallbackFreePort listens on a free port of the same host when
	// Listen's port is busy (logged), instead of failing.
	FallbackFreePort bool
	// Advertise is the host:port clients are told to connect to (default:
	// the bound address, with 127.0.0.1 for an unspecified host). Kafka
	// clients dial what the broker advertises, not what they bootstrapped
	// with, so this matters when the broker listens on 0.0.0.0.
	Advertise string
	// Topics are created at start with Partitions partitions each. Other
	// topics are created on first use (dev convenience).
	Topics []string
	// Partitions per topic (default 3).
	Partitions int
	// DataDir, when set, persists the broker's state there so that a
	// restarted dev broker keeps its topics and records. Empty keeps
	// everything in memory: a restarted broker is empty.
	DataDir string
	// BrokerConfigs sets broker configs, e.g. "message.max.bytes" to make
	// the broker refuse records a client thinks are fine.
	BrokerConfigs map[string]string
	// TLS, when set, makes the broker speak TLS only, with this server
	// configuration (its certificate; ClientAuth for mutual TLS).
	TLS *tls.Config
	// Users, when any, turn SASL on: a connection must authenticate as one
	// of them before any request but ApiVersions. They bypass ACLs.
	Users  []User
	Logger *slog.Logger
}

// User is a SASL user of the broker.
type User struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's names).
	Mechanism string
	Name      string
	Password  string
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Partitions <= 0 {
		c.Partitions = 3
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Broker is a running in-process Kafka-protocol broker.
type Broker struct {
	cluster *kfake.Cluster
	virt    *virtualListener
	log     *slog.Logger
	bound   string // the address we listen on, kept across Stop/Start

	mu      sync.Mutex
	ln      net.Listener // nil while stopped
	conns   map[net.Conn]struct{}
	accepts sync.WaitGroup
	refuse  *kfake.FaultHandle
	closed  bool
}

// Start starts a broker and returns once it accepts connections.
func Start(cfg Config) (*Broker, error) {
	cfg.setDefaults()
	log := cfg.Logger.With("component", "kafkadev")
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		if !cfg.FallbackFreePort {
			return nil, fmt.Errorf("kafkadev: listen on %s: %w", cfg.Listen, err)
		}
		host, _, serr := net.SplitHostPort(cfg.Listen)
		if serr != nil {
			return nil, fmt.Errorf("kafkadev: parse listen address %q: %w", cfg.Listen, serr)
		}
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("kafkadev: listen on a free port of %s: %w", host, err)
		}
		log.Warn("kafka listen port busy, using a free port instead", "wanted", cfg.Listen, "addr", ln.Addr().String())
	}
	advertise, err := advertised(cfg.Advertise, ln.Addr().(*net.TCPAddr))
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	b := &Broker{
		virt:  newVirtualListener(advertise),
		log:   log,
		bound: ln.Addr().String(),
		ln:    ln,
		conns: map[net.Conn]struct{}{},
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("sensorhub-dev"),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.WithLogger(slogAdapter{log}),
		// kfake listens through us: we own the real socket, so that Stop
		// can refuse connections and Start can listen again on the same
		// address without restarting the cluster (and losing its data).
		kfake.ListenFn(func(string, string) (net.Listener, error) { return b.virt, nil }),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(cfg.Partitions), cfg.Topics...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if len(cfg.BrokerConfigs) > 0 {
		opts = append(opts, kfake.BrokerConfigs(cfg.BrokerConfigs))
	}
	if cfg.TLS != nil {
		// kfake wraps the listener we hand it, so Stop and Start keep
		// working: they act on the TCP connections underneath.
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if len(cfg.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range cfg.Users {
			opts = append(opts, kfake.Superuser(u.Mechanism, u.Name, u.Password))
		}
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("kafkadev: start kfake: %w", err)
	}
	b.cluster = cluster
	b.accepts.Add(1)
	go b.accept(ln)
	log.Info("kafka broker started", "addr", advertise.String(), "topics", cfg.Topics, "persistent", cfg.DataDir != "",
		"tls", cfg.TLS != nil, "sasl", len(cfg.Users) > 0)
	return b, nil
}

func advertised(adv string, bound *net.TCPAddr) (*net.TCPAddr, error) {
	if adv == "" {
		a := *bound
		if a.IP == nil || a.IP.IsUnspecified() {
			a.IP = net.IPv4(127, 0, 0, 1)
		}
		return &a, nil
	}
	a, err := net.ResolveTCPAddr("tcp", adv)
	if err != nil {
		return nil, fmt.Errorf("kafkadev: parse advertised address %q: %w", adv, err)
	}
	return a, nil
}

// Addr is the host:port clients bootstrap with (the advertised address).
func (b *Broker) Addr() string { return b.virt.Addr().String() }

// Cluster exposes the kfake cluster for finer fault injection in tests
// (kfake's Fault and ControlKey).
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// accept hands the connections of one listener to kfake until the listener
// is closed by Stop or Close.
func (b *Broker) accept(ln net.Listener) {
	defer b.accepts.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := &trackedConn{Conn: c, b: b}
		b.mu.Lock()
		if b.ln != ln {
			// Stopped between Accept and here.
			b.mu.Unlock()
			_ = c.Close()
			continue
		}
		b.conns[tc] = struct{}{}
		b.mu.Unlock()
		if !b.virt.deliver(tc) {
			_ = tc.Close()
		}
	}
}

// RefuseProduce makes the broker answer every produce request with the
// retriable error NOT_ENOUGH_REPLICAS (as a real cluster does when too few
// replicas are in sync), or stops doing so. Metadata and fetch requests
// keep working, so the broker looks reachable but refuses writes.
func (b *Broker) RefuseProduce(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case on && b.refuse == nil:
		b.refuse = b.cluster.Fault(kfake.Fault{
			Keys:  []kmsg.Key{kmsg.Produce},
			Err:   kerr.NotEnoughReplicas,
			Count: -1,
		})
		b.log.Info("kafka broker refuses produce requests")
	case !on && b.refuse != nil:
		b.refuse.Remove()
		b.refuse = nil
		b.log.Info("kafka broker accepts produce requests again")
	}
}

// Stop makes the broker unavailable: it stops listening (new connections are
// refused) and cuts every open connection. Data and topics are kept; Start
// listens again on the same address. Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	if b.stop() {
		b.log.Info("kafka broker stopped (unavailable)", "addr", b.bound)
	}
}

// stop closes the listener and the connections; false if already stopped.
func (b *Broker) stop() bool {
	b.mu.Lock()
	ln := b.ln
	b.ln = nil
	conns := b.conns
	b.conns = map[net.Conn]struct{}{}
	b.mu.Unlock()
	if ln == nil {
		return false
	}
	_ = ln.Close()
	for c := range conns {
		_ = c.Close()
	}
	b.accepts.Wait()
	return true
}

// Running reports whether the broker listens (not stopped, not closed).
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ln != nil && !b.closed
}

// Start listens again on the address of the first start, after Stop.
// Starting a running broker does nothing.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.ln != nil {
		return nil
	}
	// Go sets SO_REUSEADDR on listeners, so the port is free again at once
	// even with connections of the previous listener in TIME_WAIT.
	ln, err := net.Listen("tcp", b.bound)
	if err != nil {
		return fmt.Errorf("kafkadev: listen again on %s: %w", b.bound, err)
	}
	b.ln = ln
	b.accepts.Add(1)
	go b.accept(ln)
	b.log.Info("kafka broker available again", "addr", b.bound)
	return nil
}

// Close shuts the broker down for good (idempotent).
func (b *Broker) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	b.stop()
	b.cluster.Close()
	_ = b.virt.Close()
	b.log.Info("kafka broker closed")
}

type trackedConn struct {
	net.Conn
	b    *Broker
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.b.mu.Lock()
		delete(c.b.conns, c)
		c.b.mu.Unlock()
	})
	return c.Conn.Close()
}

// slogAdapter routes kfake's logs to slog. kfake's info level is one line
// per request, so it goes to debug.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Logf(l kfake.LogLevel, format string, args ...any) {
	var lvl slog.Level
	switch l {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelNone:
		return
	default:
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if !a.log.Enabled(ctx, lvl) {
		return
	}
	a.log.Log(ctx, lvl, fmt.Sprintf(format, args...))
}
