// Package natsauth owns who may say what on the NATS bus: the identities of
// the roles (one nkey per role), the auth callout's keys (the account key
// that signs people's user claims, and the curve key that seals the
// callout's traffic), the permission table of every role and of every
// person by sensorhub role, and the nats-server configuration built from
// them, which `dev`, the tests and `sensorhub nats-config` share.
//
// It decides permissions; it checks no password. The auth role answers the
// callout (actors/auth) and uses this package to build the claims.
package natsauth
