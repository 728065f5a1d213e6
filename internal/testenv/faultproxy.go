package testenv

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxy is a TCP proxy between a client under test and a dependency
// (PostgreSQL, NATS, Kafka) that a test can cut, restore or slow down. It is
// Toxiproxy used as a library: no toxiproxy server or HTTP API.
type Proxy struct {
	t     testing.TB
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

// FaultProxy starts a proxy on 127.0.0.1 (a free port) that forwards to
// upstream ("host:port"); t.Cleanup stops it.
func FaultProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	name := "sensorhub_" + randomHex(4)
	tp := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
	if err := tp.Start(); err != nil {
		t.Fatalf("testenv: start fault proxy to %s: %v", upstream, err)
	}
	p := &Proxy{t: t, proxy: tp, addr: tp.Listen}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		tp.Stop()
		p.release()
	})
	return p
}

// Addr is the proxy's "host:port" for the client to dial; it does not change
// across Cut and Restore.
func (p *Proxy) Addr() string { return p.addr }

// Host and Port split Addr, for URLs and configs that want them apart.
func (p *Proxy) Host() string { h, _, _ := net.SplitHostPort(p.addr); return h }

// Port is the proxy's port as a string.
func (p *Proxy) Port() string { _, port, _ := net.SplitHostPort(p.addr); return port }

// Cut takes the dependency away: every open connection is closed, and a
// new connection is reset as soon as it is accepted (the client sees
// "connection reset" or EOF, never the dependency). Calling it twice is
// harmless.
func (p *Proxy) Cut() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.proxy.Stop()
	p.cut = true
	p.holdAddr()
}

// holdAddr listens on the proxy's address while it is cut and resets every
// connection it accepts. Leaving the port free instead made Restore fail:
// a client that keeps redialling a free loopback port in the ephemeral
// range eventually connects to itself (TCP simultaneous open); Go's dialer
// closes such a connection, which leaves a TIME_WAIT socket on that port
// without SO_REUSEADDR, and no listener can bind it for 60 s. Another
// process may also bind a free port.
func (p *Proxy) holdAddr() {
	var (
		ln  net.Listener
		err error
	)
	// The proxy's listener has just closed; retry briefly in case the
	// kernel still holds the port.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("testenv: hold fault proxy address %s while cut: %v", p.addr, err)
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
func (p *Proxy) Restore() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cut {
		return
	}
	p.release()
	// The port was free a moment ago; retry briefly in case the kernel
	// still holds it.
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if err = p.proxy.Start(); err == nil {
			p.cut = false
			return
		}
		<-time.After(50 * time.Millisecond)
	}
	p.t.Fatalf("testenv: restore fault proxy on %s: %v", p.addr, err)
}

// Latency delays every chunk sent back from the upstream by d, on open and
// new connections; Latency(0) removes the delay. A long enough delay
// behaves like a black-holed network for a client with a deadline.
func (p *Proxy) Latency(d time.Duration) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	toxics := p.proxy.Toxics
	if toxics.GetToxic(latencyToxic) != nil {
		if err := toxics.RemoveToxic(context.Background(), latencyToxic); err != nil {
			p.t.Fatalf("testenv: remove latency toxic: %v", err)
		}
	}
	if d <= 0 {
		return
	}
	body := fmt.Sprintf(`{"name":%q,"type":"latency","stream":"downstream","attributes":{"latency":%d}}`,
		latencyToxic, d.Milliseconds())
	if _, err := toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		p.t.Fatalf("testenv: add latency toxic: %v", err)
	}
}
