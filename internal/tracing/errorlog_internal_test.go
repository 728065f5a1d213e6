package tracing

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// While a collector is down every export fails: one line says so, the
// next ones within errorLogEvery are not logged.
func TestExportErrorsAreLoggedOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	e := &errorLogger{log: slog.New(slog.NewTextHandler(&buf, nil))}
	for range 5 {
		e.Handle(errors.New("connection refused"))
	}
	if n := strings.Count(buf.String(), "spans not exported"); n != 1 {
		t.Fatalf("%d lines for 5 errors, want 1:\n%s", n, buf.String())
	}
	e.last.Add(-int64(errorLogEvery)) // as if the interval had passed
	e.Handle(errors.New("connection refused"))
	if n := strings.Count(buf.String(), "spans not exported"); n != 2 {
		t.Fatalf("%d lines after the interval, want 2", n)
	}
}
