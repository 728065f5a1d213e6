package testenv_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"sensorhub/internal/testenv"
)

// The test PKI is what the TLS tests rely on: the server certificate
// verifies for every loopback name, the client certificate for client
// authentication, and a second PKI trusts neither.
func TestCertsMakeAWorkingPKI(t *testing.T) {
	pki := testenv.Certs(t)
	roots := pki.ClientConfig(t, false).RootCAs
	server, err := tls.LoadX509KeyPair(pki.ServerCertFile, pki.ServerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	client, err := tls.LoadX509KeyPair(pki.ClientCertFile, pki.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cleaf, err := x509.ParseCertificate(client.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cleaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	other := testenv.Certs(t).ClientConfig(t, false).RootCAs
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other, DNSName: "127.0.0.1"}); err == nil {
		t.Error("a second PKI trusts the first one's server certificate")
	}
}
