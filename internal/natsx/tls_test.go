package natsx_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/natsx"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

// connectTLS connects to srv as role (its real credentials) with files.
func connectTLS(t *testing.T, srv *testenv.NATSServer, role string, files natsx.TLSFiles) *nats.Conn {
	t.Helper()
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: srv.URL(), Name: "tls-test", Credentials: srv.Creds(role), TLS: files, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// A client with the right files reaches a service through a server that
// requires TLS (or mutual TLS); one without them never connects, and keeps
// failing for the TLS reason rather than falling back to plain text.
func TestConnectTLS(t *testing.T) {
	pki := testenv.Certs(t)
	stranger := testenv.Certs(t) // a CA the server's certificate is not from
	tlsOnly := natsx.EmbeddedTLS{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile}
	mutual := natsx.EmbeddedTLS{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile}
	full := natsx.TLSFiles{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}

	cases := []struct {
		name    string
		server  natsx.EmbeddedTLS
		client  natsx.TLSFiles
		wantErr string // "" = the request goes through
	}{
		{name: "tls, client trusts the CA", server: tlsOnly, client: natsx.TLSFiles{CAFile: pki.CAFile}},
		{name: "mutual tls, client certificate", server: mutual, client: full},
		// The server's refusal reaches the client as a TLS alert or as a
		// connection closed right after the handshake, depending on timing.
		{name: "mutual tls, no client certificate", server: mutual, client: natsx.TLSFiles{CAFile: pki.CAFile}, wantErr: "tls"},
		{name: "mutual tls, certificate of another CA", server: mutual,
			client: natsx.TLSFiles{CAFile: pki.CAFile, CertFile: stranger.ClientCertFile, KeyFile: stranger.ClientKeyFile}, wantErr: "tls"},
		{name: "tls, no files (system roots)", server: tlsOnly, client: natsx.TLSFiles{}, wantErr: "certificate"},
		{name: "tls, client trusts another CA", server: tlsOnly, client: natsx.TLSFiles{CAFile: stranger.CAFile}, wantErr: "certificate"},
		{name: "plain server, client wants tls", server: natsx.EmbeddedTLS{}, client: natsx.TLSFiles{CAFile: pki.CAFile}, wantErr: nats.ErrSecureConnWanted.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.NATSWithTLS(t, tc.server)
			nc := connectTLS(t, srv, messages.RoleEdge, tc.client)
			if tc.wantErr != "" {
				err := waitConnectError(t, nc)
				t.Logf("refused as expected: %v", err)
				if nc.IsConnected() || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("connected=%v, err=%v; want a refused connection naming %q", nc.IsConnected(), err, tc.wantErr)
				}
				return
			}
			// The responder itself needs whatever the server requires.
			responder := connectTLS(t, srv, messages.RoleAuth, full)
			if err := natsx.WaitConnected(testenv.Deadline(t), responder); err != nil {
				t.Fatal(err)
			}
			subj := messages.DefaultSubjects()
			svc, err := natsx.AddService(responder, subj, "auth", "tls test",
				natsx.Endpoint{Name: "jwks", Handler: func(req micro.Request) {
					_ = natsx.ReplyJSON(req, messages.TokenReply{AccessToken: "over-tls", TokenType: "bearer"})
				}},
			)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svc.Stop() })
			if err := responder.Flush(); err != nil { // the server knows the service before the request
				t.Fatal(err)
			}
			if err := natsx.WaitConnected(testenv.Deadline(t), nc); err != nil {
				t.Fatal(err)
			}
			if !nc.TLSRequired() {
				t.Fatal("connection is not using TLS")
			}
			var reply messages.TokenReply
			if _, err := natsx.Request(t.Context(), nc, subj.AuthJWKS(), nil, nil, &reply); err != nil || reply.AccessToken != "over-tls" {
				t.Fatalf("request over TLS: %+v, %v", reply, err)
			}
			state, err := nc.TLSConnectionState()
			if err != nil || state.Version < 0x0303 { // TLS 1.2
				t.Fatalf("tls state %+v, %v: want TLS 1.2 or later", state, err)
			}
		})
	}
}

// waitConnectError polls until the connection reports why it cannot
// connect (it retries forever in the background).
func waitConnectError(t *testing.T, nc *nats.Conn) error {
	t.Helper()
	ctx := testenv.Deadline(t)
	for {
		if err := nc.LastError(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			t.Fatal("no connection error before the test's deadline")
		case <-time.After(10 * time.Millisecond): // polling the client's state
		}
	}
}

// Bad TLS files stop the start at once: Connect fails instead of returning
// a connection that retries forever.
func TestConnectRefusesBadTLSFiles(t *testing.T) {
	pki := testenv.Certs(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	cases := []struct {
		name  string
		files natsx.TLSFiles
		want  string
	}{
		{"cert without key", natsx.TLSFiles{CAFile: pki.CAFile, CertFile: pki.ClientCertFile}, "needs its key"},
		{"key without cert", natsx.TLSFiles{KeyFile: pki.ClientKeyFile}, "needs its client certificate"},
		{"missing CA file", natsx.TLSFiles{CAFile: missing}, "missing.pem"},
		{"CA file without PEM", natsx.TLSFiles{CAFile: notPEM}, "no PEM certificate"},
		{"unreadable client certificate", natsx.TLSFiles{CertFile: missing, KeyFile: pki.ClientKeyFile}, "missing.pem"},
		{"key of another certificate", natsx.TLSFiles{CertFile: pki.ClientCertFile, KeyFile: pki.ServerKeyFile}, "client certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := natsx.Connect(natsx.ConnectConfig{URL: "nats://127.0.0.1:1", TLS: tc.files, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				nc.Close()
				t.Fatal("connect with bad TLS files succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
	if (natsx.TLSFiles{}).Enabled() {
		t.Fatal("no files, yet TLS enabled")
	}
}

func TestEmbeddedTLSNeedsCertAndKey(t *testing.T) {
	pki := testenv.Certs(t)
	_, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Listen: "127.0.0.1:0", TLS: natsx.EmbeddedTLS{ClientCAFile: pki.CAFile}})
	if err == nil || !strings.Contains(err.Error(), "certificate and a key") {
		t.Fatalf("err = %v, want a refusal naming the missing certificate and key", err)
	}
	_, err = natsx.StartEmbedded(natsx.EmbeddedConfig{Listen: "127.0.0.1:0", TLS: natsx.EmbeddedTLS{CertFile: pki.ServerCertFile, KeyFile: pki.CAFile}})
	if err == nil {
		t.Fatal("a key file that holds a certificate was accepted")
	}
}
