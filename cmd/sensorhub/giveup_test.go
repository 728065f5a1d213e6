package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sensorhub/internal/natsauth"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// When a role supervisor gives up (a critical actor failed more often than
// its limit), the process logs why and exits non-zero, so that its
// orchestrator restarts it.
func TestRoleThatGivesUpExitsNonZero(t *testing.T) {
	testenv.SkipIfShort(t)
	srv := testenv.NATS(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "auth.db")
	if code, _, errs := runCmd(t, "not-the-default\n", nil, "user", "add", "--username", "carol", "--password-stdin", "--roles", "admin", "--database-url", db); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	var logs testenv.Buffer
	done := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- run(ctx, []string{"auth", "--database-url", db, "--nats-url", srv.URL(), "--chaos",
			"--nats-nkey-file", srv.Creds(messages.RoleAuth).NkeyFile,
			"--callout-issuer-file", filepath.Join(srv.KeyDir, natsauth.IssuerFile), "--callout-xkey-file", filepath.Join(srv.KeyDir, natsauth.XKeyFile),
			"--jwt-key-file", filepath.Join(t.TempDir(), "k.pem"), "--log-format", "json"}, strings.NewReader(""), &logs, &logs)
	}()

	// Chaos is an admin's to ask for: carol connects as herself, through
	// the auth process's callout, once it is up.
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Name: "carol", Credentials: natsx.Credentials{User: "carol", Password: "not-the-default"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := natsx.WaitConnected(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
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
