package actortest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"sensorhub/internal/testenv"
)

// Record is one captured log record, attributes flattened to strings
// (groups join keys with dots).
type Record struct {
	Time    time.Time
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

// Attr returns the attribute's value ("" if absent).
func (r Record) Attr(key string) string { return r.Attrs[key] }

func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Message)
	for k, v := range r.Attrs {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// matches reports whether r has message msg ("" matches any) and every
// key/value pair of kv (values compared as fmt.Sprint strings).
func (r Record) matches(msg string, kv []any) bool {
	if msg != "" && r.Message != msg {
		return false
	}
	for i := 0; i+1 < len(kv); i += 2 {
		key := fmt.Sprint(kv[i])
		got, ok := r.Attrs[key]
		if !ok || got != fmt.Sprint(kv[i+1]) {
			return false
		}
	}
	return true
}

// LogBuffer holds the records a CaptureLogs logger wrote. It is safe for
// concurrent use.
type LogBuffer struct {
	mu      sync.Mutex
	records []Record
	changed chan struct{} // closed and replaced on every new record
}

// CaptureLogs returns a logger that keeps every record (DEBUG and up) in the
// returned buffer and also writes it to the test log.
func CaptureLogs(t testing.TB) (*slog.Logger, *LogBuffer) {
	t.Helper()
	buf := &LogBuffer{changed: make(chan struct{})}
	next := slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(&captureHandler{buf: buf, next: next}), buf
}

func (b *LogBuffer) add(r Record) {
	b.mu.Lock()
	b.records = append(b.records, r)
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// Records returns a copy of every record so far.
func (b *LogBuffer) Records() []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Record(nil), b.records...)
}

// Find returns the records with message msg ("" for any) that carry every
// key/value pair of kv, e.g. Find("actor supervision", "directive", "restart").
func (b *LogBuffer) Find(msg string, kv ...any) []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Record
	for _, r := range b.records {
		if r.matches(msg, kv) {
			out = append(out, r)
		}
	}
	return out
}

// Count is len(Find(msg, kv...)).
func (b *LogBuffer) Count(msg string, kv ...any) int { return len(b.Find(msg, kv...)) }

// WaitFor waits until a record matching msg and kv was logged and returns
// the first one; it fails the test when the test's own deadline comes first.
func (b *LogBuffer) WaitFor(t testing.TB, msg string, kv ...any) Record {
	t.Helper()
	return b.WaitForN(t, 1, msg, kv...)[0]
}

// WaitForN waits until n records match and returns them; it fails the test
// when the test's own deadline comes first.
func (b *LogBuffer) WaitForN(t testing.TB, n int, msg string, kv ...any) []Record {
	t.Helper()
	timeout := testenv.Wait(t)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		var found []Record
		for _, r := range b.records {
			if r.matches(msg, kv) {
				found = append(found, r)
			}
		}
		changed := b.changed
		b.mu.Unlock()
		if len(found) >= n {
			return found
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %d log records %q %v within %s; got %d matching of:\n%s", n, msg, kv, timeout, len(found), b.dump())
			return nil
		}
	}
}

func (b *LogBuffer) dump() string {
	var s strings.Builder
	for _, r := range b.Records() {
		s.WriteString("  " + r.String() + "\n")
	}
	return s.String()
}

// captureHandler records into buf and forwards to next.
type captureHandler struct {
	buf    *LogBuffer
	next   slog.Handler
	attrs  []slog.Attr // from WithAttrs, keys already prefixed by groups
	prefix string      // open groups, "a.b."
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	rec := Record{Time: r.Time, Level: r.Level, Message: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		flatten(rec.Attrs, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		flatten(rec.Attrs, h.prefix, a)
		return true
	})
	h.buf.add(rec)
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func flatten(into map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(into, p, g)
		}
		return
	}
	into[prefix+a.Key] = v.String()
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := *h
	out.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		out.attrs = append(out.attrs, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
	}
	if h.next != nil {
		out.next = h.next.WithAttrs(as)
	}
	return &out
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	out := *h
	out.prefix = h.prefix + name + "."
	if h.next != nil {
		out.next = h.next.WithGroup(name)
	}
	return &out
}
