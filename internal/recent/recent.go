// Package recent keeps the latest values of a kind in a bounded ring: the
// supervision events and breaker transitions that the health stats, the
// dashboard and `sensorhub status` show, newest first.
package recent

import (
	"cmp"
	"sync"
)

// DefaultSize is how many values a Ring keeps when its Size is 0.
const DefaultSize = 32

// Ring keeps the latest Size values added; older ones are overwritten.
// Safe for concurrent use; the zero value keeps DefaultSize.
type Ring[T any] struct {
	// Size is how many values it keeps (DefaultSize when 0). Set it
	// before the first Add.
	Size int

	mu   sync.Mutex
	buf  []T
	next int // where the next value goes
	kept int // how many it holds
}

// Add keeps v, dropping the oldest value once the ring is full.
func (r *Ring[T]) Add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buf == nil {
		r.buf = make([]T, cmp.Or(r.Size, DefaultSize))
	}
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	r.kept = min(r.kept+1, len(r.buf))
}

// Newest is the values kept, newest first.
func (r *Ring[T]) Newest() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]T, 0, r.kept)
	for i := 1; i <= r.kept; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}
