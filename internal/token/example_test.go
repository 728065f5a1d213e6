package token_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"sensorhub/internal/token"
)

func ExampleSigner_Issue() {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := token.NewSigner(key, token.SignerConfig{TTL: time.Hour})
	now := time.Now()
	tok, _, _ := signer.Issue("alice", []string{"admin"}, now)

	// A verifier needs only the published key set.
	verifier, _ := token.NewVerifier(signer.JWKS(), token.VerifierConfig{})
	claims, err := verifier.Verify(tok, now.Add(time.Minute))
	fmt.Println(claims.Subject, claims.Roles, err)

	_, err = verifier.Verify(tok, now.Add(2*time.Hour))
	fmt.Println(err != nil)
	// Output:
	// alice [admin] <nil>
	// true
}
