package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// When a role supervisor gives up (a critical actor failed more often than
// its limit), the process logs why and exits non-zero, so that its
// orchestrator restarts it.
func TestRoleThatGivesUpExitsNonZero(t *testing.T) {
	srv := testenv.NATS(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "auth.db")
	if code, _, errs := runCmd(t, "not-the-default\n", nil, "user", "add", "--username", "carol", "--password-stdin", "--database-url", db); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	var logs testenv.Buffer
	done := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- run(ctx, []string{"auth", "--database-url", db, "--nats-url", srv.URL(), "--chaos",
			"--jwt-key-file", filepath.Join(t.TempDir(), "k.pem"), "--log-format", "json"}, strings.NewReader(""), &logs, &logs)
	}()

	nc := srv.Conn(t)
	subj := messages.DefaultSubjects()
	deadline := time.Now().Add(30 * time.Second)
	crashes := 0
	for {
		select {
		case code := <-done:
			if code != 1 {
				t.Fatalf("auth exited %d after its supervisor gave up, want 1; logs:\n%s", code, logs.String())
			}
			if !strings.Contains(logs.String(), `"msg":"role supervisor gave up"`) ||
				!strings.Contains(logs.String(), "exiting so the orchestrator restarts the process") {
				t.Fatalf("the exit is not explained in the log:\n%s", logs.String())
			}
			if crashes <= 10 {
				t.Fatalf("gave up after %d crashes; the policy allows 10 restarts", crashes)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("auth still running after %d crashes; logs:\n%s", crashes, logs.String())
		}
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		var r messages.ChaosReply
		_, err := natsx.Request(rctx, nc, subj.ChaosPanic(), messages.ChaosPanic{Actor: "auth/login-0"}, nil, &r)
		rcancel()
		if err == nil && r.Panicked {
			crashes++
		}
	}
}
