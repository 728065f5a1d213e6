package app

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"sensorhub/internal/tracing"
)

// NewLogger builds the process logger: format text or json, level debug,
// info, warn or error. A line logged with the context of a traced request
// carries its trace_id and span_id (tracing.LogHandler).
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "", "text":
		return slog.New(tracing.LogHandler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
