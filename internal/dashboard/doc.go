// Package dashboard owns the edge's live health page (GET /ui/): the
// collector that samples the system over NATS once a second while at
// least one browser watches (and not at all otherwise), the bounded
// history the page's charts draw, the server-sent event stream that fans
// one sample out to every viewer, and the page itself (embedded static
// HTML, CSS and JavaScript: no build step, nothing fetched from elsewhere).
//
// It shows the health picture only: roles, instances, breakers, the flow,
// supervision events and latencies. It must not show anything a user owns
// (no test ids, no user names), so it needs no login; and it must never
// make one NATS round per viewer, nor wait for a slow viewer.
package dashboard
