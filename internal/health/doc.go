// Package health is the one place where a sensorhub role keeps the state of
// its dependencies and decides what "degraded" means. Every role (auth,
// sensor, bridge, and the edge for its own entry and the aggregate of
// GET /health) reports through it, so that one rule and one log wording hold
// everywhere.
//
// A Tracker holds, per dependency, whether it is up or down, since when, and
// while it is down the last error seen. A dependency is down until it is
// first checked ("not checked yet"), so a report right after start never
// claims what nobody has looked at. Each change of state is one log line:
// "dependency lost" (warn, with the error) and "dependency regained" (info,
// with how long it was down); the first successful check of a dependency that
// was never checked is not news and logs nothing.
//
// The rule (Status): a role is "ok" when every dependency is up and no
// circuit breaker is open, and "degraded" otherwise. An open breaker counts
// even when a fresh check finds its dependency up again, because it still
// refuses calls: the role does not serve normally. A half-open breaker does
// not count by itself: it lets the next call through as its probe (and opens
// again if that fails), so a role without traffic is not held degraded by a
// breaker that nobody has had reason to close.
//
// Checks made for a health report go to the dependency directly, bounded by a
// deadline, never through its breaker, so that a report neither shows a
// dependency down only because its breaker is open nor moves a breaker's
// counts.
//
// The package makes no network call itself: roles check their dependencies
// and record the outcome here.
package health
