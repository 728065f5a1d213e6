package kafkadev

import (
	"net"
	"sync"
)

// virtualListener is the listener kfake accepts from. It owns no socket:
// the Broker's accept loop hands it connections from whichever real
// listener is current, and it reports the advertised address, which kfake
// puts in its metadata answers.
type virtualListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newVirtualListener(addr net.Addr) *virtualListener {
	return &virtualListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to kfake; false once the listener is closed.
func (l *virtualListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *virtualListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *virtualListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *virtualListener) Addr() net.Addr { return l.addr }
