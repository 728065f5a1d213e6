// Package supervise holds what every sensorhub actor tree shares: the actor
// system with slog logging, the role supervisor that owns a role's actors
// and decides per child what a failure means, the one-line supervision log,
// panic capture (with an optional stack), and the reply-before-restart rule
// for actors that answer requests.
//
// It must not know any role's messages or dependencies.
package supervise
