package natsx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TLSFiles are the PEM files of a client's TLS. All empty means no TLS.
// The files are read once, when the connection is made: a renewed
// certificate takes effect when the process restarts.
type TLSFiles struct {
	// CAFile holds the CA certificates that verify the server. Empty: the
	// system's roots (TLS is still on when a client certificate is set).
	CAFile string
	// CertFile and KeyFile are the client's own certificate and private
	// key, for servers that require mutual TLS. Optional, but both or
	// neither.
	CertFile string
	KeyFile  string
}

// Enabled reports whether any file is set, that is whether TLS is on.
func (f TLSFiles) Enabled() bool {
	return f.CAFile != "" || f.CertFile != "" || f.KeyFile != ""
}

// Validate reports a half-given client certificate. It does not read the
// files; ClientConfig does.
func (f TLSFiles) Validate() error {
	switch {
	case f.CertFile != "" && f.KeyFile == "":
		return errors.New("tls: a client certificate needs its key file")
	case f.KeyFile != "" && f.CertFile == "":
		return errors.New("tls: a key file needs its client certificate")
	}
	return nil
}

// ClientConfig reads the files and returns the client TLS configuration
// (TLS 1.2 at least), or nil when no file is set. A missing, unreadable or
// malformed file is an error here, at start-up, rather than a connection
// that keeps failing later.
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pool, err := loadCAs(f.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Option returns the nats.Option that turns TLS on with the files (one
// that changes nothing when no file is set), or the error of ClientConfig.
func (f TLSFiles) Option() (nats.Option, error) {
	cfg, err := f.ClientConfig()
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return func(*nats.Options) error { return nil }, nil
	}
	return nats.Secure(cfg), nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// EmbeddedTLS makes an embedded server require TLS. Empty means plain TCP.
type EmbeddedTLS struct {
	// CertFile and KeyFile are the server's certificate and private key
	// (PEM); both are required to turn TLS on.
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, also requires every client to present a
	// certificate signed by one of these CAs (mutual TLS).
	ClientCAFile string
}

func (e EmbeddedTLS) enabled() bool {
	return e.CertFile != "" || e.KeyFile != "" || e.ClientCAFile != ""
}

// apply turns TLS on in opts.
func (e EmbeddedTLS) apply(opts *server.Options) error {
	if !e.enabled() {
		return nil
	}
	if e.CertFile == "" || e.KeyFile == "" {
		return errors.New("embedded nats tls: needs both a certificate and a key file")
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: e.CertFile,
		KeyFile:  e.KeyFile,
		CaFile:   e.ClientCAFile,
		Verify:   e.ClientCAFile != "",
	})
	if err != nil {
		return fmt.Errorf("embedded nats tls: %w", err)
	}
	opts.TLSConfig = tc
	opts.TLS = true
	opts.TLSVerify = e.ClientCAFile != ""
	opts.TLSTimeout = 2
	return nil
}
