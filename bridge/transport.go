package bridge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"sensorhub/internal/natsx"
)

// TLSConfig configures TLS to the Kafka brokers. The zero value is plain
// TCP.
type TLSConfig struct {
	// Enabled turns TLS on, verifying the brokers with the system's root
	// CAs unless CAFile is set. Setting any file turns TLS on as well.
	Enabled bool
	// CAFile is a PEM bundle of the CAs that verify the brokers (default:
	// the system's roots).
	CAFile string
	// CertFile and KeyFile are the bridge's client certificate and its
	// private key (PEM), for brokers that require mutual TLS
	// (ssl.client.auth=required). Both or neither.
	CertFile string
	KeyFile  string
}

// On reports whether TLS is on.
func (c TLSConfig) On() bool { return c.Enabled || c.files().Enabled() }

// files is the same loader the NATS connections use, so both hops read
// certificates one way (TLS 1.2 at least, files read at start).
func (c TLSConfig) files() natsx.TLSFiles {
	return natsx.TLSFiles{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile}
}

// SASL mechanisms, the values of SASLConfig.Mechanism.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// SASLConfig authenticates the bridge to the Kafka brokers. The zero value
// is no SASL.
type SASLConfig struct {
	// Mechanism is SASLPlain, SASLScramSHA256 or SASLScramSHA512 (in any
	// case; stored lower case). Empty turns SASL off. PLAIN sends the
	// password as it is: use it over TLS only.
	Mechanism string
	// Username is the SASL user; required with a mechanism.
	Username string
	// Password is the user's secret; required with a mechanism. The bridge
	// never logs it. (cmd/sensorhub reads it from a file or from
	// SENSORHUB_KAFKA_SASL_PASSWORD, never from a flag, which ps would show.)
	Password string
}

// On reports whether SASL is on.
func (c SASLConfig) On() bool { return c.mech() != "" }

// String leaves the password out of any log line or %v.
func (c SASLConfig) String() string {
	if !c.On() {
		return "none"
	}
	return c.mech() + " as " + c.Username
}

func (c *SASLConfig) setDefaults() { c.Mechanism = c.mech() }

// mech is the mechanism as the constants spell it.
func (c SASLConfig) mech() string { return strings.ToLower(strings.TrimSpace(c.Mechanism)) }

// validate reports the cross-field mistakes of c.
func (c SASLConfig) validate() []error {
	var errs []error
	switch c.mech() {
	case "":
		if c.Username != "" || c.Password != "" {
			errs = append(errs, errors.New("kafka SASL user or password without a mechanism"))
		}
		return errs
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		errs = append(errs, fmt.Errorf("unknown kafka SASL mechanism %q (want %s, %s or %s)", c.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512))
	}
	if c.Username == "" {
		errs = append(errs, fmt.Errorf("kafka SASL mechanism %s without a user", c.mech()))
	}
	if c.Password == "" {
		errs = append(errs, fmt.Errorf("kafka SASL mechanism %s without a password", c.mech()))
	}
	return errs
}

// mechanism builds kafka-go's SASL mechanism, or nil when SASL is off.
func (c SASLConfig) mechanism() (sasl.Mechanism, error) {
	switch c.mech() {
	case "":
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: c.Username, Password: c.Password}, nil
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if c.mech() == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, c.Username, c.Password)
		if err != nil {
			return nil, fmt.Errorf("kafka SASL %s: %w", c.Mechanism, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("unknown kafka SASL mechanism %q", c.Mechanism)
}

// kafkaAuth is TLS and SASL as built once at start, shared by the writer's
// transport and the probe's dialer: both reach the brokers the same way, so
// a probe cannot report a broker reachable that the writer cannot use.
type kafkaAuth struct {
	tls  *tls.Config
	sasl sasl.Mechanism
}

// newKafkaAuth reads the TLS files and builds the SASL mechanism. A bad
// file is an error here, at start, not a breaker that never closes.
func newKafkaAuth(cfg *Config) (kafkaAuth, error) {
	var a kafkaAuth
	if cfg.TLS.On() {
		tc, err := cfg.TLS.files().ClientConfig()
		if err != nil {
			return a, fmt.Errorf("kafka %w", err)
		}
		if tc == nil { // Enabled without files: the system's roots
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		a.tls = tc
	}
	m, err := cfg.SASL.mechanism()
	if err != nil {
		return a, err
	}
	a.sasl = m
	return a, nil
}

// dialer is the probe's dialer: a fresh connection per probe.
func (a kafkaAuth) dialer() *kafka.Dialer {
	return &kafka.Dialer{
		Timeout:       2 * time.Second,
		ClientID:      "sensorhub-bridge-probe",
		TLS:           a.tls,
		SASLMechanism: a.sasl,
	}
}
