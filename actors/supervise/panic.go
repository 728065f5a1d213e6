package supervise

import (
	"fmt"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"
)

// Panic is the failure reason of an actor that panicked: the panic value and
// the stack where it happened (the mailbox's own recover loses the stack).
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) Error() string { return fmt.Sprint(p.Value) }

// Crash makes an actor built with Props panic on purpose (the chaos switch
// and tests use it to show a supervised restart).
type Crash struct {
	Reason string
}

// capturePanics is a receiver middleware: it turns a panic into a *Panic
// carrying the stack and panics again, so the supervisor logs both; and it
// panics on *Crash.
func capturePanics(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
		defer func() {
			if r := recover(); r != nil {
				if p, ok := r.(*Panic); ok {
					panic(p)
				}
				panic(&Panic{Value: r, Stack: debug.Stack()})
			}
		}()
		if crash, ok := env.Message.(*Crash); ok {
			panic("chaos: " + crash.Reason)
		}
		next(c, env)
	}
}

// Props builds props for a supervised actor: a fresh actor from producer on
// every (re)start, and panic capture. More options (a mailbox, a supervisor
// for its own children) may follow.
func Props(producer actor.Producer, opts ...actor.PropsOption) *actor.Props {
	opts = append([]actor.PropsOption{actor.WithReceiverMiddleware(capturePanics)}, opts...)
	return actor.PropsFromProducer(producer, opts...)
}

// ReplyOnPanic must be deferred directly (`defer supervise.ReplyOnPanic(f)`)
// by an actor that answers a request: if the handler panics, reply runs with
// the panic value first, so the caller gets an error at once instead of a
// timeout, and then the panic goes on to the supervisor.
func ReplyOnPanic(reply func(reason any)) {
	if r := recover(); r != nil {
		func() {
			// A failing reply must not hide the original panic.
			defer func() { _ = recover() }()
			reply(r)
		}()
		panic(r)
	}
}
