package app

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"sensorhub/internal/testenv"
)

// PostgreSQL TLS lives in --database-url (README, Transport security): pgx
// honours sslmode and sslrootcert, so a role verifies the server against
// the given CA and refuses a server it cannot verify instead of talking in
// clear. It needs a test server with ssl on and a self-signed certificate
// for a loopback name that the test can read (the Debian package's
// default); elsewhere it skips.
func TestPostgresTLSFromTheURL(t *testing.T) {
	dbURL := testenv.Postgres(t)
	ctx := testenv.Deadline(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ssl, certFile string
	if err := conn.QueryRow(ctx, "SHOW ssl").Scan(&ssl); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SHOW ssl_cert_file").Scan(&certFile); err != nil {
		t.Fatal(err)
	}
	if ssl != "on" {
		t.Skip("the test PostgreSQL server has ssl off")
	}
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Skipf("cannot read the server certificate to trust it: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Skipf("%s holds no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Skipf("parse %s: %v", certFile, err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(u.Host)
	// The host under which trusting the certificate file itself verifies
	// the server (a self-signed certificate is its own CA).
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	host := ""
	for _, h := range []string{"127.0.0.1", "localhost"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: h}); err == nil {
			host = h
			break
		}
	}
	if host == "" {
		t.Skipf("trusting %s does not verify the server under a loopback name", certFile)
	}
	withCA := func(ca string) string {
		v := *u
		v.Host = net.JoinHostPort(host, port)
		q := v.Query()
		q.Set("sslmode", "verify-full")
		q.Set("sslrootcert", ca)
		v.RawQuery = q.Encode()
		return v.String()
	}

	st, err := OpenStore(ctx, withCA(certFile), discardLogger())
	if err != nil {
		t.Fatalf("open with sslmode=verify-full and the server's CA: %v", err)
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var encrypted int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
		WHERE a.datname = current_database() AND a.application_name = 'sensorhub' AND s.ssl`).Scan(&encrypted)
	if err != nil || encrypted == 0 {
		t.Fatalf("the store's connections are not encrypted: %d, %v", encrypted, err)
	}

	_, err = OpenStore(ctx, withCA(testenv.Certs(t).CAFile), discardLogger())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("open with a CA that did not sign the server: %v, want a certificate error", err)
	}
}
