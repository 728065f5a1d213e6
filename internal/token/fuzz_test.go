package token_test

import (
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and the
// only strings that verify are the exact tokens the signer issued.
func FuzzVerify(f *testing.F) {
	key := newKey(f)
	signer := newSigner(f, key)
	v := newVerifier(f, signer.JWKS())
	issued := map[string]bool{}
	for _, sub := range []string{"alice", "bob"} {
		tok, _, err := signer.Issue(sub, []string{"user"}, t0)
		if err != nil {
			f.Fatal(err)
		}
		issued[tok] = true
		f.Add(tok)
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJFZERTQSIsImtpZCI6IngifQ.e30.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := v.Verify(tok, t0.Add(time.Minute))
		if err != nil {
			return
		}
		if !issued[tok] {
			t.Fatalf("a token the signer never issued verified: %q (sub %q)", tok, claims.Subject)
		}
	})
}
