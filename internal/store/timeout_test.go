package store

import (
	"context"
	"testing"
	"time"
)

func TestWithDefaultTimeout(t *testing.T) {
	cases := []struct {
		name     string
		parent   func() (context.Context, context.CancelFunc)
		wantNear time.Duration // remaining time expected, roughly
	}{
		{"no deadline gets the default", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, DefaultTimeout},
		{"a caller's deadline is kept", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		}, time.Minute},
		{"a shorter deadline is kept", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Second)
		}, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent, cancelParent := tc.parent()
			defer cancelParent()
			ctx, cancel := WithDefaultTimeout(parent)
			deadline, ok := ctx.Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			if left := time.Until(deadline); left > tc.wantNear || left < tc.wantNear-time.Second {
				t.Errorf("deadline in %v, want about %v", left, tc.wantNear)
			}
			cancel()
			if ctx.Err() == nil {
				t.Error("cancel did not cancel the derived context")
			}
			if parent.Err() != nil {
				t.Error("cancel canceled the parent")
			}
		})
	}
}
