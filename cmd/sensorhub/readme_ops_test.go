package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// The README's "Operating it" commands, run as written against dev by the
// sensorhub binary built from this tree, after two events were
// dead-lettered (a topic limit below their size, raised again after).
func TestReadmeOperatingItWorks(t *testing.T) {
	needTools(t, "bash", "jq")
	testenv.SkipIfShort(t)
	bin := filepath.Join(t.TempDir(), "sensorhub")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addrs := startDev(t)
	base := "http://" + addrs.HTTP

	setMaxMessageBytes(t, addrs.Kafka, 100)
	tok := devLogin(t, base)
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, base+"/test/sensor/co2", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		decode(t, resp, http.StatusAccepted, &messages.TestAccepted{})
	}
	pw := adminPasswordFile(t)
	testenv.Eventually(t, "two dead letters", func() bool {
		code, out, _ := sensorhub(t.Context(), "dlq", "ls", "--json", "--nats-url", addrs.NATS, "--nats-user", "admin", "--nats-password-file", pw)
		var p messages.DeadLetterPage
		return code == 0 && json.Unmarshal([]byte(out), &p) == nil && p.Total == 2
	})
	setMaxMessageBytes(t, addrs.Kafka, 1_000_000)
	testenv.Eventually(t, "dev healthy", func() bool {
		code, _, _ := sensorhub(t.Context(), "status", "--url", base)
		return code == 0
	})

	blocks := readmeBlocks(t, "Operating it")
	if len(blocks) != 1 {
		t.Fatalf("want one sh block in Operating it, got %d", len(blocks))
	}
	script := "set -euo pipefail\n" + blocks[0]
	script = strings.ReplaceAll(script, "nats://127.0.0.1:4222", addrs.NATS)
	script = strings.ReplaceAll(script, "sensorhub status\n", "sensorhub status --url "+base+"\n")
	script = strings.ReplaceAll(script, "sensorhub status ", "sensorhub status --url "+base+" ")
	for _, verb := range []string{"ls", "show", "replay", "purge"} {
		script = strings.ReplaceAll(script, "sensorhub dlq "+verb+" ", "sensorhub dlq "+verb+" --nats-url "+addrs.NATS+" ")
		script = strings.ReplaceAll(script, "sensorhub dlq "+verb+"\n", "sensorhub dlq "+verb+" --nats-url "+addrs.NATS+"\n")
	}
	cmd := exec.CommandContext(t.Context(), "bash", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("README examples failed: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", err, script, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"sensorhub OK", `{"status":"ok","queued":0,"dead_letters":2}`, "INSTANCES", "bridge  ok", // status, --json, --nats-url
		"SEQ", "2 shown, 2 dead letters in SENSOR_EVENTS_DLQ", // ls
		"reason:    kafka refused the record as too large", "payload (", // show
		"\treplayed", "1 done, 0 failed", // replay
		"\tpurged", // purge
	} {
		if !strings.Contains(got, want) {
			t.Errorf("README output lacks %q\nstdout:\n%s\nstderr:\n%s", want, got, errb.String())
		}
	}
}
