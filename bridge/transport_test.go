package bridge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"sensorhub/bridge"
	"sensorhub/internal/kafkadev"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

const (
	kafkaUser     = "bridge"
	kafkaPassword = "correct horse battery staple"
)

// saslFor is the test reader's own SASL mechanism (Kafka's name for it).
func saslFor(t *testing.T, kafkaName, user, password string) sasl.Mechanism {
	t.Helper()
	switch kafkaName {
	case "PLAIN":
		return plain.Mechanism{Username: user, Password: password}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		algo := scram.SHA256
		if kafkaName == "SCRAM-SHA-512" {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, user, password)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatalf("no mechanism %s", kafkaName)
	return nil
}

// newSecureEnv is newEnv with a broker that speaks TLS only (and requires
// a client certificate when mutual) and lets in only kafkaUser with
// kafkaPassword over the given SASL mechanism.
func newSecureEnv(t *testing.T, pki testenv.TLSCerts, mechanism string, mutual bool) *env {
	t.Helper()
	e := newEnvWith(t, kafkadev.Config{
		TLS:   pki.ServerConfig(t, mutual),
		Users: []kafkadev.User{{Mechanism: mechanism, Name: kafkaUser, Password: kafkaPassword}},
	})
	e.kafkaAuth = testenv.KafkaAuth{TLS: pki.ClientConfig(t, mutual), SASL: saslFor(t, mechanism, kafkaUser, kafkaPassword)}
	return e
}

// With TLS and SASL (each mechanism), the probe finds the broker reachable
// before any event exists, and every event reaches Kafka in order per
// sensor.
func TestRelayOverTLSAndSASL(t *testing.T) {
	pki := testenv.Certs(t)
	cases := []struct {
		name      string
		kafkaName string // the broker's name of the mechanism
		mechanism string // as the bridge is configured
		mutual    bool
	}{
		{"plain", "PLAIN", bridge.SASLPlain, false},
		{"scram-sha-256, mutual tls", "SCRAM-SHA-256", bridge.SASLScramSHA256, true},
		{"scram-sha-512, upper case", "SCRAM-SHA-512", "SCRAM-SHA-512", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSecureEnv(t, pki, tc.kafkaName, tc.mutual)
			cfg := e.config()
			cfg.TLS = bridge.TLSConfig{CAFile: pki.CAFile}
			if tc.mutual {
				cfg.TLS.CertFile, cfg.TLS.KeyFile = pki.ClientCertFile, pki.ClientKeyFile
			}
			cfg.SASL = bridge.SASLConfig{Mechanism: tc.mechanism, Username: kafkaUser, Password: kafkaPassword}
			b := e.start(t, cfg)

			// Nothing to write yet: only the probe's dialer can have
			// reached the broker.
			testenv.Eventually(t, "kafka reachable through the probe", func() bool { return stats(t, b).KafkaReachable })

			evs := events(300, 7)
			e.publish(t, evs)
			recs, got := kafkaEvents(t, e, len(evs))
			if len(recs) != len(evs) {
				t.Fatalf("kafka holds %d records, want %d", len(recs), len(evs))
			}
			checkOrderPerSensor(t, got)
			testenv.Eventually(t, "all acknowledged", func() bool {
				s := stats(t, b)
				return s.Successful == uint64(len(evs)) && s.Queued == 0
			})
			if s := stats(t, b); s.Failed != 0 || s.LastError != "" || s.Breaker != messages.BreakerClosed {
				t.Fatalf("stats after a clean run over TLS and SASL: %+v", s)
			}
		})
	}
}

// A bridge the broker does not let in writes nothing and acknowledges
// nothing: the breaker opens, the stats count the failures, and every
// event waits in JetStream.
func TestRelayRefusedByKafkaSecurity(t *testing.T) {
	testenv.SkipIfShort(t) // a failure drill: the full suite runs it
	pki := testenv.Certs(t)
	stranger := testenv.Certs(t)
	right := bridge.SASLConfig{Mechanism: bridge.SASLScramSHA256, Username: kafkaUser, Password: kafkaPassword}
	cases := []struct {
		name   string
		mutual bool
		tls    bridge.TLSConfig
		sasl   bridge.SASLConfig
	}{
		{name: "wrong password", tls: bridge.TLSConfig{CAFile: pki.CAFile},
			sasl: bridge.SASLConfig{Mechanism: bridge.SASLScramSHA256, Username: kafkaUser, Password: "wrong"}},
		{name: "unknown user", tls: bridge.TLSConfig{CAFile: pki.CAFile},
			sasl: bridge.SASLConfig{Mechanism: bridge.SASLScramSHA256, Username: "mallory", Password: kafkaPassword}},
		{name: "no sasl", tls: bridge.TLSConfig{CAFile: pki.CAFile}},
		{name: "no tls to a tls broker", sasl: right},
		{name: "tls trusting another CA", tls: bridge.TLSConfig{CAFile: stranger.CAFile}, sasl: right},
		{name: "tls with the system roots", tls: bridge.TLSConfig{Enabled: true}, sasl: right},
		{name: "mutual tls without a client certificate", mutual: true, tls: bridge.TLSConfig{CAFile: pki.CAFile}, sasl: right},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSecureEnv(t, pki, "SCRAM-SHA-256", tc.mutual)
			evs := events(150, 5)
			e.publish(t, evs) // before the bridge starts: it has a batch to write
			cfg := e.config()
			cfg.TLS, cfg.SASL = tc.tls, tc.sasl
			b := e.start(t, cfg)

			testenv.Eventually(t, "breaker open", func() bool { return stats(t, b).Breaker == messages.BreakerOpen })
			s := stats(t, b)
			t.Logf("refused: %s", s.LastError)
			if s.Successful != 0 || s.Failed == 0 || s.Queued != uint64(len(evs)) || s.KafkaReachable || s.LastError == "" {
				t.Fatalf("stats of a refused bridge: %+v", s)
			}
			if ci := consumerInfo(t, e); ci.AckFloor.Stream != 0 || ci.NumAckPending+int(ci.NumPending) != len(evs) {
				t.Fatalf("consumer of a refused bridge: ack floor %d, %d pending, %d unacknowledged; want nothing acknowledged",
					ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending)
			}
			if recs, _ := kafkaEvents(t, e, 0); len(recs) != 0 {
				t.Fatalf("kafka holds %d records written by a refused bridge", len(recs))
			}
			h := b.Health(context.Background())
			if h.Dependencies[bridge.DepKafka].Status != messages.HealthDown {
				t.Fatalf("health of a refused bridge: %+v", h)
			}
		})
	}
}

// The idle probe authenticates like the writer: with a wrong password and
// nothing to write, the bridge reports Kafka unreachable and why.
func TestProbeRefusedByKafkaSecurity(t *testing.T) {
	pki := testenv.Certs(t)
	e := newSecureEnv(t, pki, "SCRAM-SHA-512", false)
	cfg := e.config()
	cfg.TLS = bridge.TLSConfig{CAFile: pki.CAFile}
	cfg.SASL = bridge.SASLConfig{Mechanism: bridge.SASLScramSHA512, Username: kafkaUser, Password: "wrong"}
	b := e.start(t, cfg)
	testenv.Eventually(t, "a failed probe", func() bool { return stats(t, b).LastError != "" })
	if s := stats(t, b); s.KafkaReachable || s.Successful != 0 || !strings.Contains(s.LastError, "probe kafka") {
		t.Fatalf("stats after a refused probe: %+v", s)
	}
}

// Security settings that cannot work are refused by Start, all at once,
// before anything connects.
func TestStartRefusesBadKafkaSecurity(t *testing.T) {
	pki := testenv.Certs(t)
	cases := []struct {
		name string
		tls  bridge.TLSConfig
		sasl bridge.SASLConfig
		want []string
	}{
		{name: "mechanism without user", sasl: bridge.SASLConfig{Mechanism: "plain", Password: "p"}, want: []string{"plain without a user"}},
		{name: "mechanism without password", sasl: bridge.SASLConfig{Mechanism: "scram-sha-512", Username: "u"}, want: []string{"without a password"}},
		{name: "user without mechanism", sasl: bridge.SASLConfig{Username: "u", Password: "p"}, want: []string{"without a mechanism"}},
		{name: "unknown mechanism", sasl: bridge.SASLConfig{Mechanism: "gssapi", Username: "u", Password: "p"}, want: []string{`unknown kafka SASL mechanism "gssapi"`}},
		{name: "cert without key", tls: bridge.TLSConfig{CertFile: pki.ClientCertFile}, want: []string{"needs its key"}},
		{name: "key without cert", tls: bridge.TLSConfig{KeyFile: pki.ClientKeyFile}, want: []string{"needs its client certificate"}},
		{name: "unreadable CA file", tls: bridge.TLSConfig{CAFile: pki.CAFile + ".missing"}, want: []string{"ca.pem.missing"}},
		{name: "several at once", tls: bridge.TLSConfig{CertFile: pki.ClientCertFile},
			sasl: bridge.SASLConfig{Mechanism: "md5", Username: "u"},
			want: []string{"needs its key", `unknown kafka SASL mechanism "md5"`, "without a password"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bridge.Config{Brokers: []string{"127.0.0.1:1"}, TLS: tc.tls, SASL: tc.sasl}
			_, err := bridge.Start(context.Background(), nil, nil, cfg)
			if err == nil {
				t.Fatal("Start accepted the configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Start: %v; want it to say %q", err, w)
				}
			}
		})
	}
	if s := (bridge.SASLConfig{Mechanism: "plain", Username: "u", Password: "hunter2"}).String(); strings.Contains(s, "hunter2") {
		t.Fatalf("SASLConfig.String shows the password: %s", s)
	}
}
