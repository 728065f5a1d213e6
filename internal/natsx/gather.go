package natsx

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// Gather publishes one request to subject and collects every reply until
// wait has passed, ctx ends, or no reply came for gap after the last one
// (the micro discovery subjects $SRV.PING|INFO|STATS are answered by every
// instance of a service). It returns nothing when nc is not connected.
func Gather(ctx context.Context, nc *nats.Conn, subject string, wait, gap time.Duration) [][]byte {
	if nc == nil || !nc.IsConnected() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	inbox := nc.NewRespInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, []byte("{}")); err != nil {
		return nil
	}
	var out [][]byte
	quiet := time.NewTimer(wait)
	defer quiet.Stop()
	for {
		select {
		case m := <-ch:
			out = append(out, m.Data)
			quiet.Reset(gap)
		case <-quiet.C:
			return out
		case <-ctx.Done():
			return out
		}
	}
}
