package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/crypto/bcrypt"

	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// setMaxMessageBytes sets the Kafka topic's max.message.bytes on dev's
// embedded broker: below an event's size it refuses the event for good,
// which the bridge dead-letters; raising it again is the fix.
func setMaxMessageBytes(t *testing.T, addr string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Wait(t))
	defer cancel()
	transport := &kafka.Transport{DialTimeout: 2 * time.Second} // not the default one, which lives on
	defer transport.CloseIdleConnections()
	resp, err := (&kafka.Client{Addr: kafka.TCP(addr), Transport: transport}).IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: messages.DefaultKafkaTopic,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "max.message.bytes", Value: strconv.Itoa(n), ConfigOperation: kafka.ConfigOperationSet}},
		}},
	})
	if err == nil {
		for _, r := range resp.Resources {
			if r.Error != nil {
				err = r.Error
			}
		}
	}
	if err != nil {
		t.Fatalf("set max.message.bytes %d: %v", n, err)
	}
}

// The operator's round trip on dev: Kafka refuses two events as too large
// and the bridge dead-letters them; dlq ls and show tell why; a replay
// fails and changes nothing while the cause is there and while Kafka is
// down; once the limit is raised, replay puts the event in Kafka with its
// original event id and it leaves the DLQ; purge needs --yes; a user who
// is no admin is refused; bad input changes nothing.
func TestDLQCommandsOnDev(t *testing.T) {
	dir := t.TempDir()
	addrs := startDev(t, "--chaos", "--data-dir", dir)
	base := "http://" + addrs.HTTP
	pw := adminPasswordFile(t)
	ctx := t.Context()
	dlq := func(args ...string) (int, string, string) {
		t.Helper()
		return sensorhub(ctx, append(append([]string{"dlq"}, args...), "--nats-url", addrs.NATS, "--nats-user", "admin", "--nats-password-file", pw)...)
	}
	list := func() messages.DeadLetterPage {
		t.Helper()
		code, out, errs := dlq("ls", "--json")
		var p messages.DeadLetterPage
		if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
			t.Fatalf("dlq ls --json: exit %d: %s %s", code, out, errs)
		}
		return p
	}

	setMaxMessageBytes(t, addrs.Kafka, 100)
	tok := devLogin(t, base)
	var tests []string
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, base+"/test/sensor/humidity", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var acc messages.TestAccepted
		decode(t, resp, http.StatusAccepted, &acc)
		tests = append(tests, acc.TestID)
	}
	var page messages.DeadLetterPage
	testenv.Eventually(t, "two dead letters", func() bool {
		page = list()
		return len(page.DeadLetters) == 2
	})
	byTest := map[string]messages.DeadLetterSummary{}
	for _, d := range page.DeadLetters {
		byTest[d.TestID] = d
	}
	first, second := byTest[tests[0]], byTest[tests[1]]
	if first.EventID == "" || second.EventID == "" || !strings.Contains(first.Reason, "too large") ||
		!strings.HasPrefix(first.Subject, "sensorhub.events.humidity.") || first.Stream != messages.StreamEvents {
		t.Fatalf("dead letters: %+v", page)
	}
	seq := strconv.FormatUint(first.Sequence, 10)

	// ls as a table, show with headers and payload.
	code, out, errs := dlq("ls")
	if code != 0 || !strings.Contains(out, first.EventID) || !strings.Contains(out, "too large") || !strings.Contains(out, "2 shown, 2 dead letters") {
		t.Fatalf("dlq ls: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = dlq("show", seq)
	if code != 0 || !strings.Contains(out, "reason:    kafka refused the record as too large") ||
		!strings.Contains(out, messages.KafkaHeaderEventID+": "+first.EventID) || !strings.Contains(out, `"test_id":"`+tests[0]+`"`) {
		t.Fatalf("dlq show %s: exit %d\n%s%s", seq, code, out, errs)
	}
	code, _, errs = dlq("show", "99999")
	if code != 1 || !strings.Contains(errs, "not_found: no dead letter at sequence 99999") {
		t.Fatalf("dlq show 99999: exit %d, stderr %s", code, errs)
	}

	// Bad input: refused before anything is asked, nothing changes.
	for _, args := range [][]string{{"show", "x"}, {"show"}, {"replay"}, {"purge", seq}, {"purge"}, {"replay", seq, "--all"}, {"replay", seq, "--reason", "x"}, {"frobnicate"}} {
		if code, _, errs := dlq(args...); code != 2 || errs == "" {
			t.Errorf("dlq %v: exit %d, want 2 with a reason (stderr %q)", args, code, errs)
		}
	}

	// A user who is no admin is never answered, and changes nothing.
	// bcrypt's lowest cost: under the race detector the default cost takes
	// about a second per check, and each connect through the callout is one
	// (a check that outlasts the server's callout wait refuses her).
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-password-1"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(t, "sqlite:"+filepath.Join(dir, "sensorhub.db")).UpsertUser(ctx, store.User{Username: "alice", PasswordHash: hash, Roles: []string{"user"}}); err != nil {
		t.Fatal(err)
	}
	alicePW := filepath.Join(t.TempDir(), "alice.pw")
	if err := os.WriteFile(alicePW, []byte("alice-password-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ls"}, {"purge", "--all", "--yes"}, {"replay", seq}} {
		code, _, errs := sensorhub(ctx, append(append([]string{"dlq"}, args...), "--nats-url", addrs.NATS, "--nats-user", "alice",
			"--nats-password-file", alicePW, "--timeout", "1s")...)
		if code != 1 || !strings.Contains(errs, "only an admin may ask") {
			t.Errorf("alice: dlq %v: exit %d, stderr %s", args, code, errs)
		}
	}
	if p := list(); len(p.DeadLetters) != 2 {
		t.Fatalf("after alice: %+v", p)
	}

	// The cause is still there: the replay fails, the dead letter stays.
	code, out, errs = dlq("replay", seq)
	if code != 1 || !strings.Contains(out, "bad_request: still cannot be relayed") || !strings.Contains(errs, "1 of 1 dead letters failed") {
		t.Fatalf("replay before the fix: exit %d\n%s%s", code, out, errs)
	}
	// Fixed, but Kafka is down: it fails clearly, the dead letter stays.
	setMaxMessageBytes(t, addrs.Kafka, 1_000_000)
	admin := devAdmin(t, addrs.NATS)
	chaosKafka(t, admin, messages.ChaosActionStop)
	code, out, errs = dlq("replay", seq)
	if code != 1 || !strings.Contains(out, "unavailable") {
		t.Fatalf("replay with kafka down: exit %d\n%s%s", code, out, errs)
	}
	if p := list(); len(p.DeadLetters) != 2 {
		t.Fatalf("after a failed replay: %+v", p)
	}
	chaosKafka(t, admin, messages.ChaosActionStart)

	// Kafka back and the limit raised: the event reaches Kafka with its
	// own event id, and leaves the DLQ.
	testenv.Eventually(t, "the replay taken", func() bool {
		code, out, errs = dlq("replay", seq)
		return code == 0
	})
	if !strings.Contains(out, seq+"\t"+first.EventID+"\treplayed") {
		t.Fatalf("replay: %s%s", out, errs)
	}
	var rec kafka.Message
	testenv.Eventually(t, "the replayed record in kafka", func() bool {
		msgs, _ := testenv.ReadAllWithin(addrs.Kafka, messages.DefaultKafkaTopic, 0, testenv.Wait(t))
		for _, m := range msgs {
			if testenv.KafkaHeader(m, messages.KafkaHeaderEventID) == first.EventID {
				rec = m
				return true
			}
		}
		return false
	})
	var ev messages.TestCompleted
	if err := json.Unmarshal(rec.Value, &ev); err != nil || ev.EventID != first.EventID || ev.TestID != tests[0] ||
		testenv.KafkaHeader(rec, messages.KafkaHeaderCEID) != first.EventID ||
		testenv.KafkaHeader(rec, messages.KafkaHeaderSequence) != strconv.FormatUint(first.OriginalSequence, 10) {
		t.Fatalf("replayed record: %v %+v headers %v", err, ev, rec.Headers)
	}
	if p := list(); len(p.DeadLetters) != 1 || p.DeadLetters[0].EventID != second.EventID {
		t.Fatalf("after the replay: %+v", p)
	}

	// purge --all --yes deletes the rest.
	code, out, errs = dlq("purge", "--all", "--yes")
	if code != 0 || !strings.Contains(out, second.EventID+"\tpurged") || !strings.Contains(out, "1 done, 0 failed") {
		t.Fatalf("purge --all --yes: exit %d\n%s%s", code, out, errs)
	}
	if p := list(); len(p.DeadLetters) != 0 || p.Total != 0 {
		t.Fatalf("after the purge: %+v", p)
	}
}
