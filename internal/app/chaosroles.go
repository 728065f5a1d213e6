package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"sensorhub/actors/supervise"
	"sensorhub/internal/faultproxy"
	"sensorhub/internal/metrics"
)

// devRole is one role of dev in a lifecycle of its own (its NATS
// connection, actor system, metrics and shutdown steps), so that `dev
// --chaos` can take it away as a killed process would look from outside
// (its micro service, subscriptions and callout gone, its actors stopped)
// and start it again in the same process with the same identity, while
// the other roles go on. The store is dev's, shared, and stays open.
type devRole struct {
	name   string
	ctx    context.Context // dev's: a role's background work lives as long as dev
	parent *lifecycle
	reg    *metrics.Registry
	logger *slog.Logger
	// run starts the role in l (connect as the role, start its tree) and
	// returns its tree.
	run func(ctx context.Context, l *lifecycle, system *actor.ActorSystem) (*supervise.Role, error)

	mu   sync.Mutex
	l    *lifecycle // nil while stopped
	tree *supervise.Role
}

// newDevRole starts the role and registers its stop with dev's lifecycle.
func newDevRole(ctx context.Context, parent *lifecycle, reg *metrics.Registry, name string, logger *slog.Logger,
	run func(ctx context.Context, l *lifecycle, system *actor.ActorSystem) (*supervise.Role, error)) (*devRole, error) {
	r := &devRole{name: name, ctx: ctx, parent: parent, reg: reg, logger: logger, run: run}
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	parent.defer_("role "+name, func() { _ = r.stop(context.Background()) })
	return r, nil
}

// start starts the role unless it runs; the role's background work takes
// dev's context, not the caller's.
func (r *devRole) start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.l != nil {
		return nil
	}
	l := r.parent.child(r.logger)
	tree, err := r.run(r.ctx, l, supervise.NewSystem(r.logger))
	if err != nil {
		l.shutdown()
		r.unregister()
		return err
	}
	// Up means reachable: the server has seen its subscriptions.
	l.flush(5 * time.Second)
	r.l, r.tree = l, tree
	return nil
}

// stop stops the role unless it is stopped: its micro service and
// subscriptions first, then its actors, then its NATS connection (the
// role's own shutdown order). A sensor role's tests in flight stay in the
// store, leased: the next start's sweeper takes them over once the lease
// ends, and its outbox relay sends what the stopped one had not.
func (r *devRole) stop(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.l == nil {
		return nil
	}
	r.l.shutdown()
	r.unregister()
	r.l, r.tree = nil, nil
	return nil
}

func (r *devRole) unregister() {
	if r.reg != nil {
		r.reg.Unregister(r.name)
	}
}

func (r *devRole) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l != nil
}

// Role is the role's actor tree, nil while it is stopped.
func (r *devRole) Role() *supervise.Role {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tree
}

func (r *devRole) chaosSwitch() chaosSwitch {
	return chaosSwitch{stop: r.stop, start: r.start, running: r.running}
}

// proxyDatabase starts a fault proxy in front of the PostgreSQL server of
// dbURL and returns the URL through it. The proxy is closed at shutdown.
func proxyDatabase(l *lifecycle, dbURL string) (*faultproxy.Proxy, string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return nil, "", fmt.Errorf("database URL: %w", err)
	}
	host := u.Host
	if host == "" || strings.Contains(host, ",") || u.Query().Has("host") {
		return nil, "", fmt.Errorf("--chaos puts a fault proxy in front of one PostgreSQL host: give it as postgres://user@host:port/db (got %s)", redact(dbURL))
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "5432")
	}
	p, err := faultproxy.Start("127.0.0.1:0", host)
	if err != nil {
		return nil, "", err
	}
	l.defer_("database fault proxy", p.Close)
	u.Host = p.Addr()
	return p, u.String(), nil
}
