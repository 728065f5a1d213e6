package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/actors/supervise"
	"sensorhub/internal/breaker"
	"sensorhub/internal/health"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/token"
	"sensorhub/messages"
)

// Names of the role's actors (children of the role supervisor "auth").
// The pools are numbered from 0: "login-0", "login-1", ... "validate-0", ...
const (
	ActorLogin    = "login"
	ActorValidate = "validate"
	ActorJWKS     = "jwks"
	ActorHealth   = "health"
)

// BreakerDatabase is the name of the auth -> database breaker.
const BreakerDatabase = "auth.database"

// HeaderUserCheck, on a validate reply, says whether the user was found
// enabled in the database ("ok") or the database could not be asked and
// the answer rests on the signature alone ("skipped").
const HeaderUserCheck = "Sensorhub-User-Check"

// Service is the running auth role.
type Service struct {
	cfg      Config
	nc       *nats.Conn
	system   *actor.ActorSystem
	log      *slog.Logger
	signer   *token.Signer
	verifier *token.Verifier
	db       *breaker.Breaker
	breakers breaker.Set
	health   *health.Tracker
	dummies  dummies
	limiter  *loginLimiter
	// callout is the subscription answering the NATS auth callout (nil
	// without Config.Callout).
	callout *nats.Subscription

	role      *supervise.Role
	svc       micro.Service
	instance  atomic.Value // string: the micro service instance id, for health
	logins    pool
	validates pool

	// calls bounds the actors' store calls; cancelled once the role stopped.
	calls       context.Context
	cancelCalls context.CancelFunc
	// background runs the JWKS publisher; cancelled by Stop or Start's ctx.
	cancelBackground context.CancelFunc
	wg               sync.WaitGroup

	stopOnce sync.Once
	stopErr  error
}

// pool is a set of equal actors fed round-robin, with a bound on the
// requests queued or running in them.
type pool struct {
	pids    []*actor.PID
	next    atomic.Uint64
	pending atomic.Int64
	max     int64
}

func (p *pool) acquire() bool {
	if p.pending.Add(1) > p.max {
		p.pending.Add(-1)
		return false
	}
	return true
}

func (p *pool) release() { p.pending.Add(-1) }

func (p *pool) pick() *actor.PID { return p.pids[p.next.Add(1)%uint64(len(p.pids))] }

// request is a micro request handed to an actor (detached: see
// natsx.Detach); done must run once it is answered.
type request struct {
	req  micro.Request
	done func()
}

type (
	// loginRequest is a login; forwarded says it came on the subject only
	// the edge may publish (so its client address is believed).
	loginRequest struct {
		request
		forwarded bool
	}
	validateRequest struct{ request }
	jwksRequest     struct{ request }
	healthRequest   struct{ request }
)

// Start loads (or creates) the signing key, spawns the role's actors under
// the role supervisor "auth" in system, and registers the micro service
// sensorhub-auth with the endpoints token, validate, jwks and health. It
// publishes the JWKS to JetStream KV in the background, retrying until it
// succeeds or ctx ends (and again after every reconnect); ctx bounds only
// that background work: the service runs until Stop.
func Start(ctx context.Context, nc *nats.Conn, system *actor.ActorSystem, cfg Config) (*Service, error) {
	if nc == nil || system == nil {
		return nil, errors.New("start auth: nil NATS connection or actor system")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("start auth: %w", err)
	}
	log := cfg.Logger.With("role", messages.RoleAuth)
	key, created, err := token.LoadOrCreateKey(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("start auth: %w", err)
	}
	signer, err := token.NewSigner(key, token.SignerConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.TokenTTL})
	if err != nil {
		return nil, fmt.Errorf("start auth: %w", err)
	}
	if created {
		log.Info("created a new token signing key", "file", cfg.KeyFile, "kid", signer.KeyID())
	}
	verifier, err := token.NewVerifier(signer.JWKS(), token.VerifierConfig{Issuer: cfg.Issuer, Audience: cfg.Audience})
	if err != nil {
		return nil, fmt.Errorf("start auth: %w", err)
	}
	s := &Service{cfg: cfg, nc: nc, system: system, log: log, signer: signer, verifier: verifier, limiter: newLoginLimiter(cfg.Limits)}
	s.db = s.breakers.Add(breaker.New(BreakerDatabase, cfg.DatabaseBreaker, databaseFailed, cfg.Logger))
	s.health = health.New(messages.RoleAuth, log, &s.breakers)
	s.calls, s.cancelCalls = context.WithCancel(context.Background())
	s.logins.max = int64(cfg.MaxPendingLogins)
	s.validates.max = int64(cfg.MaxPendingValidations)

	role, err := supervise.Spawn(system, supervise.RoleConfig{
		Role:      messages.RoleAuth,
		Children:  s.children(),
		Logger:    cfg.Logger,
		LogStacks: cfg.LogStacks,
		OnGiveUp:  cfg.OnGiveUp,
	})
	if err != nil {
		s.cancelCalls()
		return nil, fmt.Errorf("start auth: %w", err)
	}
	s.role = role
	for i := range cfg.LoginWorkers {
		s.logins.pids = append(s.logins.pids, role.Child(poolName(ActorLogin, i)))
	}
	for i := range cfg.ValidateWorkers {
		s.validates.pids = append(s.validates.pids, role.Child(poolName(ActorValidate, i)))
	}

	s.svc, err = natsx.AddService(nc, cfg.Subjects, messages.RoleAuth, "sensorhub auth: logins, token validation, JWKS",
		natsx.Endpoint{Name: "token", Handler: s.handleToken},
		natsx.Endpoint{Name: "token-forwarded", Subject: cfg.Subjects.AuthTokenForwarded(), Handler: s.handleTokenForwarded},
		natsx.Endpoint{Name: "validate", Handler: s.handleValidate},
		natsx.Endpoint{Name: "jwks", Handler: s.handleJWKS},
		natsx.Endpoint{Name: "health", Handler: s.handleHealth, Stats: s.healthStats},
	)
	if err != nil {
		_ = role.Stop(time.Second)
		s.cancelCalls()
		return nil, fmt.Errorf("start auth: %w", err)
	}

	s.instance.Store(s.svc.Info().ID)
	if cfg.Callout != nil {
		if s.callout, err = s.subscribeCallout(); err != nil {
			_ = s.svc.Stop()
			_ = role.Stop(time.Second)
			s.cancelCalls()
			return nil, fmt.Errorf("start auth: %w", err)
		}
	}

	bg, cancel := context.WithCancel(ctx)
	s.cancelBackground = cancel
	s.wg.Add(2)
	go s.publishKeys(bg)
	go func() { defer s.wg.Done(); s.primeDummy(bg) }()
	log.Info("auth role started", "kid", signer.KeyID(), "login_workers", cfg.LoginWorkers, "validate_workers", cfg.ValidateWorkers)
	return s, nil
}

// primeDummy makes the dummy hash of unknown-user logins now rather than on
// the first one (which would then take two bcrypt rounds, and past the NATS
// server's wait for a callout answer on a slow machine), at the cost of a
// stored user's hash: an unknown user's login then costs the same bcrypt
// round as a real user's wrong password from the start, not only after the
// first real login. Where no user can be read (yet), bcrypt's default.
func (s *Service) primeDummy(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	users, err := s.cfg.Store.ListUsers(ctx)
	cancel()
	if err == nil {
		for _, u := range users {
			if len(u.PasswordHash) > 0 {
				s.dummies.seen(u.PasswordHash)
				break
			}
		}
	}
	s.dummies.hash(s.dummies.cost())
}

func poolName(base string, i int) string { return base + "-" + strconv.Itoa(i) }

// children are the role's actors. Each restarts on a failure (a fresh actor:
// they keep no state); ten failures within ten seconds mean something is
// badly wrong, and the role gives up so that the process is restarted.
func (s *Service) children() []supervise.Child {
	policy := supervise.Policy{Directive: actor.RestartDirective, MaxRestarts: 10, Window: 10 * time.Second, Critical: true}
	var out []supervise.Child
	for i := range s.cfg.LoginWorkers {
		out = append(out, supervise.Child{Name: poolName(ActorLogin, i), Props: supervise.Props(func() actor.Actor { return &loginActor{s: s} }), Policy: policy})
	}
	for i := range s.cfg.ValidateWorkers {
		out = append(out, supervise.Child{Name: poolName(ActorValidate, i), Props: supervise.Props(func() actor.Actor { return &validateActor{s: s} }), Policy: policy})
	}
	out = append(out,
		supervise.Child{Name: ActorJWKS, Props: supervise.Props(func() actor.Actor { return &jwksActor{s: s} }), Policy: policy},
		supervise.Child{Name: ActorHealth, Props: supervise.Props(func() actor.Actor { return &healthActor{s: s} }), Policy: policy},
	)
	return out
}

// The handlers run on the micro service's subscription goroutines: they
// only hand the request to an actor (or refuse it when too many wait).

func (s *Service) handleToken(req micro.Request) { s.handleLogin(req, false) }

func (s *Service) handleTokenForwarded(req micro.Request) { s.handleLogin(req, true) }

func (s *Service) handleLogin(req micro.Request, forwarded bool) {
	if !s.logins.acquire() {
		s.reply(req, nil, errLoginsPending)
		return
	}
	s.system.Root.Send(s.logins.pick(), &loginRequest{request: request{req: natsx.Detach(s.nc, req), done: s.logins.release}, forwarded: forwarded})
}

func (s *Service) handleValidate(req micro.Request) {
	if !s.validates.acquire() {
		s.reply(req, nil, errChecksPending)
		return
	}
	s.system.Root.Send(s.validates.pick(), &validateRequest{request{req: natsx.Detach(s.nc, req), done: s.validates.release}})
}

func (s *Service) handleJWKS(req micro.Request) {
	s.system.Root.Send(s.role.Child(ActorJWKS), &jwksRequest{request{req: natsx.Detach(s.nc, req), done: func() {}}})
}

// healthStats is the health endpoint's data in the service's stats
// (`nats micro stats`): the breakers, the latest supervision events and
// breaker transitions, from memory.
func (s *Service) healthStats() any {
	st := messages.HealthStats{CircuitBreakers: s.breakers.Health(), BreakerTransitions: s.breakers.Recent()}
	if role := s.role; role != nil {
		st.Supervision = role.Recent()
	}
	return st
}

func (s *Service) handleHealth(req micro.Request) {
	s.system.Root.Send(s.role.Child(ActorHealth), &healthRequest{request{req: natsx.Detach(s.nc, req), done: func() {}}})
}

// reply answers req with v, or with err when it is not nil.
func (s *Service) reply(req micro.Request, v any, err error, headers ...micro.Headers) {
	var rerr error
	if err != nil {
		rerr = natsx.ReplyError(req, err)
	} else {
		rerr = natsx.ReplyJSON(req, v, headers...)
	}
	if rerr != nil {
		s.log.Debug("reply failed", "subject", req.Subject(), "err", rerr)
	}
}

// replyInternal is what every actor defers through supervise.ReplyOnPanic.
func (s *Service) replyInternal(req micro.Request) func(any) {
	return func(any) { s.reply(req, nil, errInternal) }
}

// Role is the role supervisor. Its children are "login-<i>" (i from 0 to
// LoginWorkers-1), "validate-<i>", "jwks" and "health" (see the Actor*
// constants); the chaos switch and tests send them a *supervise.Crash.
func (s *Service) Role() *supervise.Role { return s.role }

// Breakers are the role's circuit breakers (BreakerDatabase).
func (s *Service) Breakers() *breaker.Set { return &s.breakers }

// JWKS is the key set that verifies the tokens this service issues.
func (s *Service) JWKS() messages.JWKS { return s.signer.JWKS() }

// Stop stops the micro service first (no new requests; the handlers in
// flight finish), then poisons the role supervisor so that the actors
// answer what they hold before they stop, then ends the background work.
// It waits up to timeout in all and is safe to call more than once.
func (s *Service) Stop(timeout time.Duration) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(timeout) })
	return s.stopErr
}

func (s *Service) stop(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var errs []error
	s.cancelBackground()
	if s.callout != nil {
		if err := s.callout.Drain(); err != nil {
			errs = append(errs, fmt.Errorf("stop auth callout: %w", err))
		}
	}
	if err := s.svc.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stop auth micro service: %w", err))
	}
	// Once Stop returns the server knows: another connection's request
	// gets "no responders" at once instead of waiting for a reply.
	if s.nc.IsConnected() {
		_ = s.nc.FlushTimeout(max(time.Until(deadline), 10*time.Millisecond))
	}
	if err := s.role.Stop(max(time.Until(deadline), 10*time.Millisecond)); err != nil {
		errs = append(errs, err)
	}
	s.cancelCalls()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(max(time.Until(deadline), 10*time.Millisecond)):
		errs = append(errs, errors.New("stop auth: JWKS publisher still running"))
	}
	return errors.Join(errs...)
}

// databaseFailed says which store errors count against the database
// breaker: an outage or a deadline, not a missing user.
func databaseFailed(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// databaseDown says whether err means "the database could not answer".
func databaseDown(err error) bool {
	return errors.Is(err, breaker.ErrOpen) || databaseFailed(err) || errors.Is(err, context.Canceled)
}
