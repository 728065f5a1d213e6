package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// baselineBody is what the bare handler answers: the shape of the edge's
// 202, so that the client does the same work reading it.
var baselineBody = []byte(`{"test_id":"00000000-0000-7000-8000-000000000000","status":"processing"}`)

// BaselineHandler answers every request 202 with a small JSON body after
// reading the request body: the least an HTTP server on this machine can
// do for a submission, so the load measured against it is the machine's
// ceiling.
func BaselineHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(baselineBody)
	})
}

// BaselineServer serves BaselineHandler on a loopback port in this process.
type BaselineServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// StartBaseline listens on 127.0.0.1 (a free port) and serves until Close.
func StartBaseline() (*BaselineServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("baseline listen: %w", err)
	}
	b := &BaselineServer{
		srv:  &http.Server{Handler: BaselineHandler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { b.done <- b.srv.Serve(ln) }()
	return b, nil
}

// URL is the server's base URL.
func (b *BaselineServer) URL() string { return "http://" + b.ln.Addr().String() }

// Close stops the server, dropping open connections.
func (b *BaselineServer) Close() error {
	err := b.srv.Close()
	if serr := <-b.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// runBaseline measures the bare handler: under the same load as the run
// (same shape, same requests), then at full speed for the ceiling.
func runBaseline(ctx context.Context, cfg Config, targets []vegeta.Target) (*BaselineStats, error) {
	b, err := StartBaseline()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	// The run's requests, sent to the bare handler instead.
	local := make([]vegeta.Target, len(targets))
	for i, t := range targets {
		local[i] = t
		local[i].URL = b.URL() + strings.TrimPrefix(t.URL, cfg.URL)
	}
	same := runLoad(ctx, local, load{Rate: cfg.Rate, Duration: cfg.Duration, Burst: cfg.Burst, Timeout: cfg.Timeout, Connections: cfg.Connections}, &counters{}, nil)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	ceil := runLoad(ctx, local, load{Concurrency: cfg.BaselineConcurrency, Duration: cfg.BaselineDuration, Timeout: cfg.Timeout, Connections: cfg.Connections}, &counters{}, nil)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("baseline ceiling: %w", err)
	}
	cs := ceil.stats()
	return &BaselineStats{
		SameLoad: same.stats(),
		Ceiling: CeilingStats{
			Rate:        cs.AchievedRate,
			Requests:    cs.Requests,
			Concurrency: cfg.BaselineConcurrency,
			DurationS:   cfg.BaselineDuration.Seconds(),
			Latency:     cs.Acceptance,
			Errors:      cs.Errors,
		},
	}, nil
}
