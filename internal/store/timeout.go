package store

import "context"

// WithDefaultTimeout returns ctx bounded by DefaultTimeout when it has no
// deadline of its own, so that no store call can wait forever. A context that
// already has a deadline is returned as it is (with a cancel func to release
// the derived context).
func WithDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}
