// Package token issues and verifies sensorhub's access tokens: Ed25519 JWTs
// (alg EdDSA) with a kid per key, the JWKS that publishes the public keys,
// the private key file, and the KeySource that keeps the JWKS published in
// JetStream KV at hand so that any role can verify a token while the auth
// role does not answer.
//
// Verification is strict on purpose: the algorithm is pinned to EdDSA, the
// key is looked up by kid (an unknown or missing kid is an invalid token),
// exp is required, issuer and audience are checked, base64 must be canonical
// and the leeway is small. It must not know about users, passwords or actors.
package token
