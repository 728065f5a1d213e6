// Package faultproxy is a TCP proxy between a client and a dependency
// (PostgreSQL, NATS, Kafka) that can be cut, restored or slowed down, for
// the failure drills: `dev --chaos` puts one in front of PostgreSQL, and
// the tests' testenv.FaultProxy is a thin wrapper around it. It is
// Toxiproxy used as a library: no toxiproxy server or HTTP API.
//
// It must not know what it proxies.
package faultproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxy forwards the connections it accepts on Addr to its upstream until
// Cut, and again after Restore. Its methods are safe for concurrent use.
type Proxy struct {
	mu    sync.Mutex
	proxy *toxiproxy.Proxy
	addr  string
	cut   bool
	// hold keeps addr taken while the proxy is cut (see holdAddr);
	// holdDone is closed when its accept loop has ended.
	hold     net.Listener
	holdDone chan struct{}
}

// latencyToxic names the toxic Latency adds.
const latencyToxic = "sensorhub_latency"

// rebindFor bounds the retries of binding the proxy's own address again
// (after Cut, after Restore): the kernel may hold it for a moment.
const rebindFor = 5 * time.Second

// Start starts a proxy on listen ("127.0.0.1:0" for a free port) that
// forwards to upstream ("host:port"). Close stops it.
func Start(listen, upstream string) (*Proxy, error) {
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	var b [4]byte
	_, _ = rand.Read(b[:])
	tp := toxiproxy.NewProxy(server, "sensorhub_"+hex.EncodeToString(b[:]), listen, upstream)
	if err := tp.Start(); err != nil {
		return nil, fmt.Errorf("start fault proxy to %s: %w", upstream, err)
	}
	return &Proxy{proxy: tp, addr: tp.Listen}, nil
}

// Addr is the proxy's "host:port" for the client to dial; it does not change
// across Cut and Restore.
func (p *Proxy) Addr() string { return p.addr }

// IsCut reports whether the proxy is cut.
func (p *Proxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Cut takes the dependency away: every open connection is closed, and a
// new connection is reset as soon as it is accepted (the client sees
// "connection reset" or EOF, never the dependency). Calling it twice is
// harmless.
func (p *Proxy) Cut() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return nil
	}
	p.proxy.Stop()
	p.cut = true
	return p.holdAddr()
}

// holdAddr listens on the proxy's address while it is cut and resets every
// connection it accepts. Leaving the port free instead made Restore fail:
// a client that keeps redialling a free loopback port in the ephemeral
// range eventually connects to itself (TCP simultaneous open); Go's dialer
// closes such a connection, which leaves a TIME_WAIT socket on that port
// without SO_REUSEADDR, and no listener can bind it for 60 s. Another
// process may also bind a free port.
func (p *Proxy) holdAddr() error {
	var (
		ln  net.Listener
		err error
	)
	// The proxy's listener has just closed; retry briefly in case the
	// kernel still holds the port.
	for deadline := time.Now().Add(rebindFor); ; {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hold fault proxy address %s while cut: %w", p.addr, err)
		}
		<-time.After(20 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // reset, not a graceful close
			}
			_ = c.Close()
		}
	}()
	p.hold, p.holdDone = ln, done
	return nil
}

// release frees the address held while cut.
func (p *Proxy) release() {
	if p.hold == nil {
		return
	}
	_ = p.hold.Close()
	<-p.holdDone
	p.hold, p.holdDone = nil, nil
}

// Restore brings the dependency back on the same address after Cut.
// Calling it when not cut is harmless.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cut {
		return nil
	}
	p.release()
	// The port was free a moment ago; retry briefly in case the kernel
	// still holds it.
	var err error
	for deadline := time.Now().Add(rebindFor); time.Now().Before(deadline); {
		if err = p.proxy.Start(); err == nil {
			p.cut = false
			return nil
		}
		<-time.After(50 * time.Millisecond)
	}
	// Hold the address again, so that the proxy stays cut rather than
	// leaving its port to whoever binds it.
	if herr := p.holdAddr(); herr != nil {
		return fmt.Errorf("restore fault proxy on %s: %w (and %w)", p.addr, err, herr)
	}
	return fmt.Errorf("restore fault proxy on %s: %w", p.addr, err)
}

// Latency delays every chunk sent back from the upstream by d, on open and
// new connections; Latency(0) removes the delay. A long enough delay
// behaves like a black-holed network for a client with a deadline.
func (p *Proxy) Latency(d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	toxics := p.proxy.Toxics
	if toxics.GetToxic(latencyToxic) != nil {
		if err := toxics.RemoveToxic(context.Background(), latencyToxic); err != nil {
			return fmt.Errorf("remove latency toxic: %w", err)
		}
	}
	if d <= 0 {
		return nil
	}
	body := fmt.Sprintf(`{"name":%q,"type":"latency","stream":"downstream","attributes":{"latency":%d}}`,
		latencyToxic, d.Milliseconds())
	if _, err := toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		return fmt.Errorf("add latency toxic: %w", err)
	}
	return nil
}

// Close stops the proxy (cut or not) and frees its address.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.proxy.Stop()
	p.release()
}
