package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sensorhub/internal/app"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

// startDev runs `sensorhub dev` in-process through the real command line
// (flags and all) on free ports and a temporary data dir, and returns the
// addresses it serves on. It stops when the test ends.
//
// dev writes its nats CLI context under XDG_CONFIG_HOME, which the test
// points at a temporary directory (so child processes that inherit the
// environment, the nats CLI among them, find it there).
func startDev(t *testing.T, extra ...string) app.DevAddrs {
	t.Helper()
	testenv.SkipIfShort(t)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	ready := make(chan app.DevAddrs, 1)
	devReady = ready
	t.Cleanup(func() { devReady = nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	args := append([]string{"dev", "--data-dir", t.TempDir(), "--http", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--log-level", "warn"}, extra...)
	var logs testenv.Buffer
	go func() { done <- run(ctx, args, strings.NewReader(""), &logs, &logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("dev exited %d on shutdown; logs:\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("dev did not shut down within 30s")
		}
	})
	select {
	case a := <-ready:
		return a
	case code := <-done:
		t.Fatalf("dev exited %d before it was up; logs:\n%s", code, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("dev not up within 60s; logs:\n%s", logs.String())
	}
	return app.DevAddrs{}
}

// readmeBlocks returns the ```sh blocks of the README section titled title.
func readmeBlocks(t *testing.T, title string) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("README has no section %q", title)
	}
	s = s[i+1:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	var blocks []string
	for {
		a := strings.Index(s, "```sh\n")
		if a < 0 {
			break
		}
		s = s[a+len("```sh\n"):]
		b := strings.Index(s, "```")
		blocks = append(blocks, s[:b])
		s = s[b+3:]
	}
	return blocks
}

// needTools skips (or, in CI, fails) when a command-line tool is missing.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("SENSORHUB_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s is not installed (SENSORHUB_REQUIRE_TOOLS=1)", tool)
			}
			t.Skipf("%s is not installed; skipping the README examples (CI installs it)", tool)
		}
	}
}

// The README's "Try it" commands, run as written against dev.
func TestReadmeExamplesWork(t *testing.T) {
	needTools(t, "bash", "curl", "jq", "nats")
	addrs := startDev(t)
	blocks := readmeBlocks(t, "Try it")
	if len(blocks) != 2 {
		t.Fatalf("want the curl block and the nats block, got %d blocks", len(blocks))
	}
	script := "set -euo pipefail\n" + strings.Join(blocks, "\n")
	script = strings.ReplaceAll(script, "localhost:8000", addrs.HTTP)
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "NATS_URL="+addrs.NATS, "NATS_CONTEXT=", "HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("README examples failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		`"access_token":"`, // curl login and nats req login
		`"status":"processing"`,
		`"status": "`, // jq of the verdict
		`["temperature","humidity","pressure","co2","vibration","light"]`,
		`"queued":`,
		`"edge.auth"`,
		`sensorhub-auth`, // nats micro ls, as a person
		`sensorhub-sensor`,
		`sensorhub-bridge`,
		// nats micro info sensorhub-sensor: the binary's version, the
		// endpoints' schemas and the breakers in the stats data.
		"Version: " + natsx.BuildVersion(),
		"asyncapi_operation: submitTest",
		"reply_schema: TestAccepted",
		"request_schema: SubmitTest",
		`"circuit_breakers"`,
		`"sensor.database"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("README output lacks %s\nstdout:\n%s\nstderr:\n%s", want, got, errb.String())
		}
	}
	if n := strings.Count(got, `"status":"processing"`); n < 2 {
		t.Errorf("want a processing answer over HTTP and over NATS, got %d", n)
	}
	// The catalogue over HTTP, then over NATS by password and by token.
	if n := strings.Count(got, `["temperature","humidity","pressure","co2","vibration","light"]`); n != 3 {
		t.Errorf("want the catalogue from curl, nats --user and nats --token, got it %d times\nstdout:\n%s\nstderr:\n%s", n, got, errb.String())
	}
}

// The seed's journey over HTTP: log in, submit with no body, and the test
// soon reads completed with a verdict.
func TestDevSubmitThenCompleted(t *testing.T) {
	addrs := startDev(t)
	base := "http://" + addrs.HTTP
	tok := struct{ AccessToken string }{devLogin(t, base)}

	// The token verifies with the public key the edge serves as JWKS.
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var jwks messages.JWKS
	decode(t, resp, http.StatusOK, &jwks)
	v, err := token.NewVerifier(jwks, token.VerifierConfig{Issuer: "sensorhub", Audience: "sensorhub"})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(tok.AccessToken, time.Now())
	if err != nil || claims.Subject != "admin" || claims.ID == "" {
		t.Fatalf("token from /auth/token does not verify with /.well-known/jwks.json: %+v %v", claims, err)
	}

	resp, err = http.Post(base+"/auth/token", "application/x-www-form-urlencoded", strings.NewReader("username=admin&password=nope"))
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Error, Code string }
	decode(t, resp, http.StatusUnauthorized, &e)
	if e.Code != "invalid_credentials" || e.Error == "" {
		t.Fatalf("wrong password: %+v", e)
	}

	req, _ := http.NewRequest(http.MethodPost, base+"/test/sensor/temperature", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var acc struct {
		TestID string `json:"test_id"`
		Status string `json:"status"`
	}
	decode(t, resp, http.StatusAccepted, &acc)
	if acc.TestID == "" || acc.Status != "processing" {
		t.Fatalf("submit answered %+v", acc)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/test/"+acc.TestID, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Status, Verdict, Source, Owner string
		}
		decode(t, resp, http.StatusOK, &rec)
		if rec.Status == "completed" {
			if rec.Verdict != "pass" && rec.Verdict != "fail" || rec.Source != "simulated" || rec.Owner != "admin" {
				t.Fatalf("completed record: %+v", rec)
			}
			return
		}
		if rec.Status != "processing" || time.Now().After(deadline) {
			t.Fatalf("test %s is %q", acc.TestID, rec.Status)
		}
		time.Sleep(20 * time.Millisecond) // polling a result, with a deadline
	}
}

func decode(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, buf.String())
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		t.Fatalf("decode %s: %v", buf.String(), err)
	}
}

// devLogin logs in as dev's admin and returns the token.
func devLogin(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Post(base+"/auth/token", "application/x-www-form-urlencoded", strings.NewReader("username=admin&password=admin123"))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	decode(t, resp, http.StatusOK, &tok)
	return tok.AccessToken
}

// The README's "Drills on demand" blocks against dev --chaos: the drill
// command as written (the addresses swapped for the test's, no --hold),
// then the chaos control examples run as written.
func TestReadmeDrillExamplesWork(t *testing.T) {
	needTools(t, "bash", "curl", "jq", "nats")
	addrs := startDev(t, "--chaos")
	blocks := readmeBlocks(t, "Drills on demand")
	if len(blocks) != 2 {
		t.Fatalf("want the drill block and the controls block, got %d blocks", len(blocks))
	}
	var drillArgs []string
	for _, line := range strings.Split(blocks[0], "\n") {
		cmdline, _, _ := strings.Cut(line, "#")
		if f := strings.Fields(cmdline); len(f) >= 4 && strings.Join(f[:3], " ") == "go run ./cmd/sensorhub" && f[3] == "drill" {
			drillArgs = f[3:]
		}
	}
	if drillArgs == nil {
		t.Fatalf("no `go run ./cmd/sensorhub drill` in the first block:\n%s", blocks[0])
	}
	wait := (testenv.Wait(t) / 3).String()
	args := append(drillArgs, "--url", "http://"+addrs.HTTP, "--nats-url", addrs.NATS, "--hold", "0", "--step-timeout", wait, "--wait", wait)
	if code, stdout, stderr := runCmd(t, "", nil, args...); code != 0 || !strings.Contains(stdout, "verdict: PASS") {
		t.Fatalf("README drill: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	script := "set -euo pipefail\n" + strings.ReplaceAll(blocks[1], "localhost:8000", addrs.HTTP)
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "NATS_URL="+addrs.NATS, "NATS_CONTEXT=", "HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("README chaos examples failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		`"database":"stopped"`,
		`"code":"database_unavailable"`,
		`"database":"running"`,
		`"sensor":"stopped"`,
		`"sensor":"running"`,
		`sensorhub-auth`, // nats micro ls
	} {
		if !strings.Contains(got, want) {
			t.Errorf("README chaos output lacks %s\nstdout:\n%s\nstderr:\n%s", want, got, errb.String())
		}
	}
}
