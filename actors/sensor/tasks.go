package sensor

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// tasks are the role's goroutines (a store call, a token check, a backoff
// timer), each one Stop waits for, and their way back to the actors.
type tasks struct {
	system *actor.ActorSystem
	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup
}

// goTracked runs f on a goroutine that Stop waits for. It returns false
// (and does not run f) once the role is stopping.
func (t *tasks) goTracked(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// close refuses new goroutines; wait then waits for the running ones.
func (t *tasks) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

func (t *tasks) wait() { t.wg.Wait() }

// send delivers msg to pid from outside the actors (a goroutine's result).
func (t *tasks) send(pid *actor.PID, msg any) { t.system.Root.Send(pid, msg) }
