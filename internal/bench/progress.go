package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// progress prints one line every interval while the bench runs: on a
// terminal it rewrites the line in place, elsewhere it adds a line.
type progress struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	start    time.Time
	c        *counters
	t        *tracker
	phase    func() string
	stop     context.CancelFunc
	done     chan struct{}
}

func startProgress(w io.Writer, tty bool, interval time.Duration, c *counters, t *tracker, phase func() string) *progress {
	p := &progress{w: w, tty: tty, interval: interval, start: time.Now(), c: c, t: t, phase: phase, done: make(chan struct{})}
	if w == nil {
		close(p.done)
		p.stop = func() {}
		return p
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				p.print()
			}
		}
	}()
	return p
}

func (p *progress) print() {
	acc, done := p.c.accepted.Load(), p.t.finished.Load()
	line := fmt.Sprintf("bench %5.1fs %-9s sent %d  accepted %d  errors %d  completed %d  pending %d",
		time.Since(p.start).Seconds(), p.phase(), p.c.sent.Load(), acc, p.c.failed.Load(), done, acc-done)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// finish stops the line (and ends it on a terminal).
func (p *progress) finish() {
	p.stop()
	<-p.done
	if p.w != nil && p.tty {
		fmt.Fprintln(p.w)
	}
}
