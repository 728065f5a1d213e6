package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"sensorhub/internal/drill"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// `sensorhub drill` against `dev --chaos`, on PostgreSQL (through dev's
// fault proxy) and on the SQLite default (dev's switch at the store's
// boundary): it must print each step with what a user saw, end PASS with
// exit 0, and afterwards every test it reports accepted is completed (read
// from PostgreSQL itself, or as admin over HTTP for SQLite) and has its
// event in Kafka (read from the topic).
func TestDrillAgainstDev(t *testing.T) {
	for _, tc := range []struct {
		name     string
		postgres bool
	}{{"postgres", true}, {"sqlite", false}} {
		t.Run(tc.name, func(t *testing.T) {
			extra := []string{"--chaos"}
			var db string
			if tc.postgres {
				db = testenv.Postgres(t)
				extra = append(extra, "--database-url", db)
			}
			addrs := startDev(t, extra...)
			wait := testenv.Wait(t) / 2
			code, stdout, stderr := runCmd(t, "", nil, "drill", "--url", "http://"+addrs.HTTP, "--nats-url", addrs.NATS,
				"--hold", "0", "--step-timeout", wait.String(), "--wait", wait.String(), "--json")
			if code != 0 {
				t.Fatalf("drill exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			// --json: the steps on stderr, the report alone on stdout.
			steps := stderr
			t.Logf("drill:\n%s", steps)
			for _, want := range []string{
				"1. auth stopped",
				"POST /auth/token: 503 auth_unavailable",
				"with the token already held: 5 of 5 accepted (202), X-Auth-Mode",
				"auth started again: login 200",
				"2. Kafka stopped",
				"GET /kafka/stats after",
				"breaker open, queued",
				"3. database cut",
				"503 database_unavailable (\"" + messages.MsgDatabaseUnavailable + "\")",
				"GET /health: degraded; sensor's database down",
				"4. everything back",
				"202 again after",
				"verdict: PASS",
			} {
				if !strings.Contains(steps, want) {
					t.Errorf("drill output lacks %q", want)
				}
			}
			if strings.Contains(steps, "unexpected") {
				t.Errorf("drill saw something unexpected")
			}
			var rep drill.Report
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("report on stdout: %v\n%s", err, stdout)
			}
			// The first test, five with auth stopped, five with Kafka
			// stopped, at least one when back and five more.
			if !rep.Pass || len(rep.Accepted) < 17 || rep.Completed != len(rep.Accepted) {
				t.Fatalf("report: pass %v, %d accepted, %d completed", rep.Pass, len(rep.Accepted), rep.Completed)
			}

			// Completed, as the store has it.
			if tc.postgres {
				conn, err := pgx.Connect(t.Context(), db)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				var done int
				if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM tests WHERE id = ANY($1) AND status = 'completed'", rep.Accepted).Scan(&done); err != nil {
					t.Fatal(err)
				}
				if done != len(rep.Accepted) {
					t.Errorf("%d of the %d accepted tests completed in PostgreSQL", done, len(rep.Accepted))
				}
			} else {
				tok := devLogin(t, "http://"+addrs.HTTP)
				for _, id := range rep.Accepted {
					if st := devTestStatus(t, "http://"+addrs.HTTP, tok, id); st != messages.StatusCompleted {
						t.Errorf("test %s: %s, want completed", id, st)
					}
				}
			}

			// Every accepted test's event is in Kafka.
			msgs, err := testenv.ReadAllWithin(addrs.Kafka, messages.DefaultKafkaTopic, len(rep.Accepted), testenv.Wait(t))
			if err != nil {
				t.Fatalf("read Kafka: %v", err)
			}
			inKafka := map[string]bool{}
			for _, m := range msgs {
				if e, err := messages.DecodeEvent(m.Value); err == nil {
					inKafka[e.TestID] = true
				}
			}
			for _, id := range rep.Accepted {
				if !inKafka[id] {
					t.Errorf("test %s has no event in Kafka", id)
				}
			}
		})
	}
}

// Interrupted in the middle (as by SIGINT: its context ends), the drill
// brings back what it stopped before it returns.
func TestDrillInterruptedBringsEverythingBack(t *testing.T) {
	addrs := startDev(t, "--chaos")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &cancelOn{match: "(kafka stopped in", cancel: cancel}
	_, err := drill.Run(ctx, drill.Config{URL: "http://" + addrs.HTTP, NATSURL: addrs.NATS, Out: out,
		StepTimeout: testenv.Wait(t)})
	if err == nil || !strings.Contains(out.String(), "bringing back what the drill stopped: kafka") {
		t.Fatalf("interrupted drill: %v\n%s", err, out.String())
	}
	// Every target runs again, as admin's chaos control tells.
	nc, err := nats.Connect(addrs.NATS, nats.UserInfo("admin", "admin123"), nats.CustomInboxPrefix(messages.InboxPrefix("admin")), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rctx, rcancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer rcancel()
	var r messages.ChaosControlReply
	if _, err := natsx.Request(rctx, nc, messages.DefaultSubjects().ChaosControl(), messages.ChaosControl{Target: messages.ChaosTargetKafka, Action: messages.ChaosActionStatus}, nil, &r); err != nil {
		t.Fatal(err)
	}
	for target, state := range r.States {
		if state != messages.ChaosStateRunning {
			t.Errorf("after the interrupted drill %s is %s", target, state)
		}
	}
	if len(r.States) < 5 {
		t.Errorf("chaos targets: %v", r.States)
	}
}

// cancelOn is an io.Writer that cancels once match was written.
type cancelOn struct {
	testenv.Buffer
	match  string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	n, err := c.Buffer.Write(p)
	if strings.Contains(c.Buffer.String(), c.match) {
		c.cancel()
	}
	return n, err
}

func devTestStatus(t *testing.T, base, tok, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/test/"+id, nil)
	req.Header.Set(messages.HeaderAuthorization, "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rec messages.TestRecord
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
		t.Fatalf("GET /test/%s: %d %v", id, resp.StatusCode, err)
	}
	return fmt.Sprint(rec.Status)
}

// Against dev without --chaos, or with a wrong password, the drill says
// why it cannot run and exits 1, having changed nothing.
func TestDrillRefusesWithoutChaos(t *testing.T) {
	addrs := startDev(t)
	code, stdout, stderr := runCmd(t, "", nil, "drill", "--url", "http://"+addrs.HTTP, "--nats-url", addrs.NATS, "--timeout", "2s")
	if code != 1 || !strings.Contains(stderr, "--chaos") || strings.Contains(stdout, "1. auth stopped") {
		t.Errorf("drill without --chaos: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, _, stderr = runCmd(t, "", nil, "drill", "--url", "http://"+addrs.HTTP, "--nats-url", addrs.NATS, "--password", "wrong")
	if code != 1 || !strings.Contains(stderr, "connect to NATS") {
		t.Errorf("drill with a wrong password: exit %d, stderr %q", code, stderr)
	}
}
