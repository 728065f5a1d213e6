package auth

import (
	"strings"
	"sync"
	"time"

	"sensorhub/internal/ratelimit"
)

// LoginLimits are the login rate limits of the auth role, where passwords
// are checked: one limit for HTTP (through the edge), `nats req` and NATS
// connects alike. Every attempt takes a token before its password check;
// a successful one gives it back, so the limits count failures (a person
// running one `nats` command after another is never slowed) while a burst
// of parallel guesses is bounded before any of them is answered.
type LoginLimits struct {
	// PerUserAddr bounds the attempts on one user from one address
	// (default burst 5, then one per 12 s).
	PerUserAddr ratelimit.Limit
	// PerAddr bounds the attempts from one address on any user: password
	// spraying (default burst 30, then one per 2 s).
	PerAddr ratelimit.Limit
	// PerUser bounds the attempts on one user from all addresses together
	// (default burst 30, then one per 2 s). It refuses only addresses that
	// have tried this user recently: an address with a clean record always
	// gets its attempt, so an attacker cannot lock a user out of logins
	// from elsewhere, while a brute force spread over many addresses still
	// gets one attempt per fresh address once the bucket is dry.
	PerUser ratelimit.Limit
	// MaxKeys bounds the buckets kept per limit (default
	// ratelimit.DefaultMaxKeys).
	MaxKeys int
}

// Default login limits.
var (
	DefaultLoginPerUserAddr = ratelimit.Limit{Every: 12 * time.Second, Burst: 5}
	DefaultLoginPerAddr     = ratelimit.Limit{Every: 2 * time.Second, Burst: 30}
	DefaultLoginPerUser     = ratelimit.Limit{Every: 2 * time.Second, Burst: 30}
)

func (l *LoginLimits) setDefaults() {
	if !l.PerUserAddr.Valid() {
		l.PerUserAddr = DefaultLoginPerUserAddr
	}
	if !l.PerAddr.Valid() {
		l.PerAddr = DefaultLoginPerAddr
	}
	if !l.PerUser.Valid() {
		l.PerUser = DefaultLoginPerUser
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = ratelimit.DefaultMaxKeys
	}
}

// loginLimiter applies LoginLimits. An attempt takes a token from each
// bucket that applies or from none, so a refused attempt drains nothing.
type loginLimiter struct {
	mu       sync.Mutex
	byPair   *ratelimit.Buckets
	byAddr   *ratelimit.Buckets
	byUser   *ratelimit.Buckets
	pairFull ratelimit.Limit
}

func newLoginLimiter(l LoginLimits) *loginLimiter {
	return &loginLimiter{
		byPair:   ratelimit.New(l.PerUserAddr, l.MaxKeys),
		byAddr:   ratelimit.New(l.PerAddr, l.MaxKeys),
		byUser:   ratelimit.New(l.PerUser, l.MaxKeys),
		pairFull: l.PerUserAddr,
	}
}

// allow takes a token for an attempt on user from addr at now, or says how
// long to wait. Usernames are compared without case, as logins are. After
// a successful attempt, call refund: it returns the tokens taken.
func (l *loginLimiter) allow(user, addr string, now time.Time) (refund func(), retryAfter time.Duration, ok bool) {
	user = strings.ToLower(user)
	l.mu.Lock()
	defer l.mu.Unlock()
	pair := l.byPair.Get(user+"\x00"+addr, now)
	a := l.byAddr.Get(addr, now)
	u := l.byUser.Get(user, now)
	wait := max(l.byPair.Wait(pair), l.byAddr.Wait(a))
	// The per-user bucket binds only addresses that tried this user lately.
	fresh := pair.Full(l.pairFull)
	if !fresh {
		wait = max(wait, l.byUser.Wait(u))
	}
	if wait > 0 {
		return nil, wait, false
	}
	l.byPair.Take(pair)
	l.byAddr.Take(a)
	tookUser := l.byUser.Wait(u) == 0
	if tookUser {
		l.byUser.Take(u)
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.byPair.Give(pair)
		l.byAddr.Give(a)
		if tookUser {
			l.byUser.Give(u)
		}
	}, 0, true
}
