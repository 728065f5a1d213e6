package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/scram"

	"sensorhub/internal/kafkadev"
	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// background runs one command line until the test ends, with getenv as its
// environment, and checks that it then exits cleanly.
func background(t *testing.T, getenv func(string) string, args ...string) *testenv.Buffer {
	testenv.SkipIfShort(t)
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
		"SENSORHUB_NATS_NKEY_FILE": srv.Creds(messages.RoleBridge).NkeyFile,
		"SENSORHUB_NATS_TLS_CA":    pki.CAFile,
		"SENSORHUB_NATS_TLS_CERT":  pki.ClientCertFile,
		"SENSORHUB_NATS_TLS_KEY":   pki.ClientKeyFile,
	}
	logs := background(t, func(k string) string { return vars[k] },
		"bridge", "--nats-url", srv.URL(), "--kafka-brokers", kafka.Addr(), "--log-level", "warn")

	withCert := []string{"--role", messages.RoleBridge, "--nats-url", srv.URL(), "--nats-nkey-file", srv.Creds(messages.RoleBridge).NkeyFile,
		"--nats-tls-ca", pki.CAFile, "--nats-tls-cert", pki.ClientCertFile, "--nats-tls-key", pki.ClientKeyFile}
	h := waitHealth(t, nil, withCert...)
	if h.Dependencies["nats"].Status != messages.HealthUp {
		t.Fatalf("bridge health over TLS: %+v; logs:\n%s", h, logs.String())
	}

	code, _, errs := runCmd(t, "", nil, "health", "--timeout", "1s", "--role", messages.RoleBridge, "--nats-url", srv.URL(), "--nats-nkey-file", srv.Creds(messages.RoleBridge).NkeyFile, "--nats-tls-ca", pki.CAFile)
	if code != 1 {
		t.Fatalf("health without a client certificate: exit %d (%s), want 1", code, errs)
	}
	code, _, errs = runCmd(t, "", nil, "health", "--timeout", "1s", "--role", messages.RoleBridge, "--nats-url", srv.URL(), "--nats-nkey-file", srv.Creds(messages.RoleBridge).NkeyFile)
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

// The bridge's Kafka TLS and SASL flags reach its writer and its probe:
// with the password from the environment or from a file, Kafka is up and
// an event goes through; with a wrong one the bridge stays up, degraded.
func TestBridgeKafkaTLSAndSASLFlags(t *testing.T) {
	pki := testenv.Certs(t)
	// Each bridge has its own subject prefix, so each has its own stream;
	// permissions follow the prefix, so each prefix has its own server.
	servers := map[string]*testenv.NATSServer{}
	srvFor := func(prefix string) *testenv.NATSServer {
		if srv, ok := servers[prefix]; ok {
			return srv
		}
		subj, err := messages.NewSubjects(prefix)
		if err != nil {
			t.Fatal(err)
		}
		servers[prefix] = testenv.NATSWithPrefix(t, subj)
		return servers[prefix]
	}
	kafka := testenv.KafkaWith(t, kafkadev.Config{
		TLS:   pki.ServerConfig(t, false),
		Users: []kafkadev.User{{Mechanism: "SCRAM-SHA-256", Name: "bridge", Password: "from-a-secret-store"}},
	})
	dir := t.TempDir()
	passwordFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	baseFor := func(prefix string) []string {
		srv := srvFor(prefix)
		return []string{"bridge", "--nats-url", srv.URL(), "--nats-nkey-file", srv.Creds(messages.RoleBridge).NkeyFile,
			"--kafka-brokers", kafka.Addr(), "--log-level", "warn", "--subject-prefix", prefix,
			"--kafka-tls-ca", pki.CAFile, "--kafka-sasl-mechanism", "scram-sha-256", "--kafka-sasl-user", "bridge"}
	}
	base := baseFor(messages.DefaultPrefix)
	health := func(prefix string) messages.HealthReply {
		srv := srvFor(prefix)
		return waitHealth(t, nil, "--role", messages.RoleBridge, "--nats-url", srv.URL(),
			"--nats-nkey-file", srv.Creds(messages.RoleBridge).NkeyFile, "--subject-prefix", prefix)
	}
	kafkaDep := func(prefix string, cond func(messages.DependencyHealth) bool) messages.DependencyHealth {
		t.Helper()
		ctx := testenv.Deadline(t)
		for {
			d := health(prefix).Dependencies["kafka"]
			if cond(d) {
				return d
			}
			select {
			case <-ctx.Done():
				t.Fatalf("kafka dependency of bridge %s: %+v", prefix, d)
			case <-time.After(50 * time.Millisecond): // polling the bridge's health
			}
		}
	}
	up := func(d messages.DependencyHealth) bool { return d.Status == messages.HealthUp }
	checked := func(d messages.DependencyHealth) bool { return d.LastError != "" && d.LastError != "not checked yet" }

	t.Run("password from the environment", func(t *testing.T) {
		vars := map[string]string{"SENSORHUB_KAFKA_SASL_PASSWORD": "from-a-secret-store"}
		background(t, func(k string) string { return vars[k] }, baseFor("viaenv")...)
		kafkaDep("viaenv", up)

		subj, err := messages.NewSubjects("viaenv")
		if err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(srvFor("viaenv").Conn(t, messages.RoleSensor))
		if err != nil {
			t.Fatal(err)
		}
		ev := messages.TestCompleted{Schema: messages.EventSchema, EventID: "evt-tls-1", Type: messages.EventTypeCompleted,
			TestID: "test-tls-1", SensorType: "temperature", SensorID: "s-1", Owner: "admin", Status: messages.StatusCompleted,
			CompletedAt: time.Now().UTC()}
		data, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		// As the outbox relay publishes it: the bridge relays by the headers.
		msg := natsx.EventMsg(subj.Event(ev.SensorType, ev.Kind()),
			natsx.EventHeaders{EventID: ev.EventID, SensorID: ev.SensorID, TestID: ev.TestID, Time: ev.CompletedAt}, data)
		if _, err := js.PublishMsg(testenv.Deadline(t), msg); err != nil {
			t.Fatal(err)
		}
		recs := testenv.ReadAllAuth(t, kafka.Addr(), messages.DefaultKafkaTopic, 1, testenv.KafkaAuth{
			TLS: pki.ClientConfig(t, false), SASL: scramSHA256(t, "bridge", "from-a-secret-store")})
		if len(recs) != 1 || !strings.Contains(string(recs[0].Value), ev.EventID) {
			t.Fatalf("kafka holds %d records, want the one event", len(recs))
		}
	})
	t.Run("password from a file", func(t *testing.T) {
		background(t, nil, append(baseFor("viafile"),
			"--kafka-sasl-password-file", passwordFile("ok", "from-a-secret-store\n"))...)
		kafkaDep("viafile", up)
	})
	t.Run("wrong password", func(t *testing.T) {
		background(t, nil, append(baseFor("wrong"),
			"--kafka-sasl-password-file", passwordFile("wrong", "guess\n"))...)
		if d := kafkaDep("wrong", checked); d.Status != messages.HealthDown {
			t.Fatalf("kafka with a wrong password: %+v", d)
		}
	})

	bad := []struct {
		name   string
		args   []string
		getenv func(string) string
		want   string
	}{
		{"password from both", []string{"--kafka-sasl-password-file", passwordFile("both", "x\n")},
			func(k string) string {
				if k == "SENSORHUB_KAFKA_SASL_PASSWORD" {
					return "y"
				}
				return ""
			}, "not both"},
		{"no password", nil, nil, "without a password"},
		{"unreadable password file", []string{"--kafka-sasl-password-file", filepath.Join(dir, "missing")}, nil, "read the Kafka SASL password"},
		{"user without mechanism", []string{"--kafka-sasl-mechanism", ""}, func(k string) string {
			if k == "SENSORHUB_KAFKA_SASL_PASSWORD" {
				return "y"
			}
			return ""
		}, "without a mechanism"},
		{"unknown mechanism", []string{"--kafka-sasl-mechanism", "oauthbearer", "--kafka-sasl-password-file", passwordFile("u", "x")}, nil, "unknown kafka SASL mechanism"},
		{"client certificate without key", []string{"--kafka-tls-cert", pki.ClientCertFile, "--kafka-sasl-password-file", passwordFile("c", "x")}, nil, "needs its key"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, base...), tc.args...)
			code, _, errs := runCmd(t, "", tc.getenv, args...)
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 naming %q", code, errs, tc.want)
			}
		})
	}
}

func scramSHA256(t *testing.T, user, password string) sasl.Mechanism {
	t.Helper()
	m, err := scram.Mechanism(scram.SHA256, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The Kafka SASL password has no flag (ps would show it); --help says where
// it comes from instead.
func TestKafkaPasswordIsNoFlag(t *testing.T) {
	fs, _ := commands()["bridge"].flags()
	if fs.Lookup("kafka-sasl-password") != nil {
		t.Fatal("bridge has a --kafka-sasl-password flag")
	}
	code, _, errs := runCmd(t, "", nil, "bridge", "--help")
	if code != 0 || !strings.Contains(errs, "or set SENSORHUB_KAFKA_SASL_PASSWORD ") || !strings.Contains(errs, "--kafka-sasl-password-file [SENSORHUB_KAFKA_SASL_PASSWORD_FILE]") {
		t.Fatalf("bridge --help does not say where the password comes from:\n%s", errs)
	}
}
