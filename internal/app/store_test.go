package app

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"sensorhub/internal/testenv"
)

// A role that starts before its database waits for it instead of exiting.
func TestOpenStoreWaitsForTheDatabase(t *testing.T) {
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.FaultProxy(t, u.Host)
	u.Host = proxy.Addr()
	proxy.Cut()

	logs := &testenv.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	type result struct {
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := openStoreWaiting(context.Background(), u.String(), logger)
		if err == nil {
			err = st.Ping(context.Background())
			_ = st.Close()
		}
		done <- result{err}
	}()
	testenv.EventuallyState(t, "the wait is logged", func() (bool, string) {
		return strings.Contains(logs.String(), "database unavailable at start"), logs.String()
	})
	select {
	case r := <-done:
		t.Fatalf("returned while the database is cut: %v", r.err)
	default:
	}
	proxy.Restore()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("after the database returned: %v", r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("still waiting a minute after the database returned")
	}

	// A bad URL is not an outage: no waiting.
	if _, err := openStoreWaiting(context.Background(), "mysql://nope", logger); err == nil {
		t.Fatal("bad URL accepted")
	}
	// A cancelled wait returns.
	proxy.Cut()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := openStoreWaiting(ctx, u.String(), logger); err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "wait for the database") {
		t.Fatalf("cancelled wait: %v", err)
	}
}
