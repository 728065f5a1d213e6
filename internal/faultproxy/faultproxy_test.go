package faultproxy_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"sensorhub/internal/faultproxy"
	"sensorhub/internal/testenv"
)

// echo serves one line back per connection until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line through addr and reports whether it came back.
func roundTrip(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testenv.Wait(t))
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testenv.Wait(t)))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

// Cut resets open connections and every new one on the same address;
// Restore forwards again there; both are harmless twice.
func TestCutAndRestore(t *testing.T) {
	p, err := faultproxy.Start("127.0.0.1:0", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !roundTrip(t, p.Addr()) || p.IsCut() {
		t.Fatal("no round trip through a new proxy")
	}
	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	for range 2 {
		if err := p.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	if !p.IsCut() || roundTrip(t, p.Addr()) {
		t.Fatal("a round trip through a cut proxy")
	}
	_ = open.SetReadDeadline(time.Now().Add(testenv.Wait(t)))
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection open before the cut still reads")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a connection open before the cut was left hanging, not closed")
	}
	for range 2 {
		if err := p.Restore(); err != nil {
			t.Fatal(err)
		}
	}
	if p.IsCut() || !roundTrip(t, p.Addr()) {
		t.Fatal("no round trip after Restore")
	}
}
