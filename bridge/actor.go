package bridge

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/actors/supervise"
)

// relayActor owns the relay goroutine. The relay blocks on the network
// (fetches, Kafka writes) and so cannot run inside Receive; the actor gives
// it a supervised lifecycle instead: Started starts it, Stopping and
// Restarting stop it and wait for it, and a panic or an unexpected end of
// the goroutine comes back as a relayFailed message, which fails the actor
// so that the role supervisor logs it and restarts it.
type relayActor struct {
	b      *Bridge
	cancel context.CancelFunc
	done   chan struct{}
}

// relayFailed tells the actor that its goroutine died.
type relayFailed struct {
	reason error
}

func (a *relayActor) Receive(c actor.Context) {
	switch msg := c.Message().(type) {
	case *actor.Started:
		a.start(c.Self())
	case *actor.Stopping:
		a.stop()
	case *actor.Restarting:
		a.stop()
	case *relayFailed:
		panic(msg.reason)
	}
}

func (a *relayActor) start(self *actor.PID) {
	ctx, cancel := context.WithCancel(a.b.ctx)
	done := make(chan struct{})
	a.cancel, a.done = cancel, done
	system := a.b.system
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				// Keep the stack: the supervisor's log line is all an
				// operator gets.
				system.Root.Send(self, &relayFailed{reason: &supervise.Panic{Value: r, Stack: debug.Stack()}})
			}
		}()
		newRelay(a.b).run(ctx)
		if ctx.Err() == nil {
			system.Root.Send(self, &relayFailed{reason: fmt.Errorf("relay ended without being stopped")})
		}
	}()
}

// stop cancels the relay and waits for it, at most for its longest step.
func (a *relayActor) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	select {
	case <-a.done:
	case <-time.After(a.b.stopWait()):
		a.b.log.Error("relay did not stop in time; leaving it to finish on its own", "waited", a.b.stopWait())
	}
	a.cancel = nil
}
