package edge

import (
	"bytes"
	"net/http"
	"testing"

	"sensorhub/messages"
)

func TestJWKSCachedWhileAuthIsDown(t *testing.T) {
	e := newEnv(t, testConfig())
	envelope(t, e.do(http.MethodGet, "/.well-known/jwks.json", ""), http.StatusServiceUnavailable, messages.CodeAuthUnavailable)

	set := messages.JWKS{Keys: []messages.JWK{{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", Kid: "k1", Alg: "EdDSA", Use: "sig"}}}
	st := e.stub(messages.RoleAuth, "jwks", replyJSON(set))
	fresh := e.do(http.MethodGet, "/.well-known/jwks.json", "")
	if fresh.Code != http.StatusOK || fresh.Header().Get("X-Cache") != "" {
		t.Fatalf("jwks = %d %v %s", fresh.Code, fresh.Header(), fresh.Body)
	}
	if got := decodeBody[messages.JWKS](t, fresh); len(got.Keys) != 1 || got.Keys[0].Kid != "k1" {
		t.Fatalf("jwks = %+v", got)
	}

	st.stop(t)
	stale := e.do(http.MethodGet, "/.well-known/jwks.json", "")
	if stale.Code != http.StatusOK || stale.Header().Get("X-Cache") != "stale" || stale.Header().Get("Age") == "" {
		t.Fatalf("jwks with auth down = %d %v", stale.Code, stale.Header())
	}
	if !bytes.Equal(stale.Body.Bytes(), fresh.Body.Bytes()) {
		t.Fatalf("stale body %s differs from the last good %s", stale.Body, fresh.Body)
	}
}
