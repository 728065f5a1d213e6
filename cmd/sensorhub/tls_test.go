package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// background runs one command line until the test ends, with getenv as its
// environment, and checks that it then exits cleanly.
func background(t *testing.T, getenv func(string) string, args ...string) *testenv.Buffer {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- commands()[args[0]].run(ctx, args[1:], env{stdin: strings.NewReader(""), stdout: logs, stderr: logs, getenv: getenv})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exited with %v; logs:\n%s", args[0], err, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s", args[0])
		}
	})
	return logs
}

// waitHealth runs `sensorhub health` with args until it exits 0 and
// returns the health it printed.
func waitHealth(t *testing.T, getenv func(string) string, args ...string) messages.HealthReply {
	t.Helper()
	ctx := testenv.Deadline(t)
	for {
		code, out, errs := runCmd(t, "", getenv, append([]string{"health", "--timeout", "1s"}, args...)...)
		if code == 0 {
			var h messages.HealthReply
			if err := json.Unmarshal([]byte(out), &h); err != nil {
				t.Fatalf("health printed %q: %v", out, err)
			}
			return h
		}
		select {
		case <-ctx.Done():
			t.Fatalf("health never answered: exit %d, %s", code, errs)
		case <-time.After(50 * time.Millisecond): // polling a role that is starting
		}
	}
}

// A role started from its flags and environment talks to a NATS server
// that requires mutual TLS: `sensorhub health` reaches it over TLS with a
// client certificate, and is refused without one.
func TestRolesConnectOverMutualTLS(t *testing.T) {
	pki := testenv.Certs(t)
	srv := testenv.NATSWithTLS(t, natsx.EmbeddedTLS{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile})
	kafka := testenv.Kafka(t)
	// The bridge takes its TLS files from the environment, health from flags.
	vars := map[string]string{
		"SENSORHUB_NATS_TLS_CA":   pki.CAFile,
		"SENSORHUB_NATS_TLS_CERT": pki.ClientCertFile,
		"SENSORHUB_NATS_TLS_KEY":  pki.ClientKeyFile,
	}
	logs := background(t, func(k string) string { return vars[k] },
		"bridge", "--nats-url", srv.URL(), "--kafka-brokers", kafka.Addr(), "--log-level", "warn")

	withCert := []string{"--role", messages.RoleBridge, "--nats-url", srv.URL(),
		"--nats-tls-ca", pki.CAFile, "--nats-tls-cert", pki.ClientCertFile, "--nats-tls-key", pki.ClientKeyFile}
	h := waitHealth(t, nil, withCert...)
	if h.Dependencies["nats"].Status != messages.HealthUp {
		t.Fatalf("bridge health over TLS: %+v; logs:\n%s", h, logs.String())
	}

	code, _, errs := runCmd(t, "", nil, "health", "--timeout", "1s", "--role", messages.RoleBridge, "--nats-url", srv.URL(), "--nats-tls-ca", pki.CAFile)
	if code != 1 {
		t.Fatalf("health without a client certificate: exit %d (%s), want 1", code, errs)
	}
	code, _, errs = runCmd(t, "", nil, "health", "--timeout", "1s", "--role", messages.RoleBridge, "--nats-url", srv.URL())
	if code != 1 {
		t.Fatalf("health without TLS files: exit %d (%s), want 1", code, errs)
	}
}

// Bad TLS settings stop a role at start with the reason, instead of a
// process that retries a connection that can never work.
func TestBadNATSTLSFlagsStopTheRole(t *testing.T) {
	pki := testenv.Certs(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"certificate without key", []string{"edge", "--http", "127.0.0.1:0", "--nats-tls-cert", pki.ClientCertFile}, "needs its key"},
		{"missing CA file", []string{"edge", "--http", "127.0.0.1:0", "--nats-tls-ca", pki.CAFile + ".missing"}, "ca.pem.missing"},
		{"health with a key only", []string{"health", "--role", "auth", "--nats-tls-key", pki.ClientKeyFile}, "needs its client certificate"},
		{"dev with TLS to its embedded server", []string{"dev", "--data-dir", t.TempDir(), "--nats-tls-ca", pki.CAFile}, "embedded server has no TLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runCmd(t, "", nil, tc.args...)
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 naming %q", code, errs, tc.want)
			}
		})
	}
}

// Every command that connects to NATS takes the TLS files, from flags or
// from SENSORHUB_NATS_TLS_*.
func TestEveryNATSCommandHasTLSFlags(t *testing.T) {
	for _, name := range []string{"dev", "edge", "auth", "sensor", "bridge", "health", "bench"} {
		fs, _ := commands()[name].flags()
		for _, f := range []string{"nats-tls-ca", "nats-tls-cert", "nats-tls-key"} {
			if fs.Lookup(f) == nil {
				t.Errorf("sensorhub %s has no --%s", name, f)
			}
		}
	}
	if got := EnvName("nats-tls-ca"); got != "SENSORHUB_NATS_TLS_CA" {
		t.Fatalf("env of --nats-tls-ca is %s", got)
	}
}
