package testenv

import (
	"net"
	"testing"
	"time"

	"sensorhub/internal/faultproxy"
)

// Proxy is a TCP proxy between a client under test and a dependency
// (PostgreSQL, NATS, Kafka) that a test can cut, restore or slow down: a
// faultproxy.Proxy whose failures fail the test.
type Proxy struct {
	t testing.TB
	p *faultproxy.Proxy
}

// FaultProxy starts a proxy on 127.0.0.1 (a free port) that forwards to
// upstream ("host:port"); t.Cleanup stops it.
func FaultProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := faultproxy.Start("127.0.0.1:0", upstream)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(p.Close)
	return &Proxy{t: t, p: p}
}

// Addr is the proxy's "host:port" for the client to dial; it does not change
// across Cut and Restore.
func (p *Proxy) Addr() string { return p.p.Addr() }

// Host and Port split Addr, for URLs and configs that want them apart.
func (p *Proxy) Host() string { h, _, _ := net.SplitHostPort(p.Addr()); return h }

// Port is the proxy's port as a string.
func (p *Proxy) Port() string { _, port, _ := net.SplitHostPort(p.Addr()); return port }

// Cut takes the dependency away (faultproxy.Proxy.Cut). Calling it twice is
// harmless.
func (p *Proxy) Cut() {
	p.t.Helper()
	if err := p.p.Cut(); err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
}

// Restore brings the dependency back on the same address after Cut.
// Calling it when not cut is harmless.
func (p *Proxy) Restore() {
	p.t.Helper()
	if err := p.p.Restore(); err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
}

// Latency delays every chunk sent back from the upstream by d
// (faultproxy.Proxy.Latency); Latency(0) removes the delay.
func (p *Proxy) Latency(d time.Duration) {
	p.t.Helper()
	if err := p.p.Latency(d); err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
}
