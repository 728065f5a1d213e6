package edge

import (
	"sync"
	"time"

	"sensorhub/internal/ratelimit"
)

// loginLimiter rate-limits logins per client address at the edge.
type loginLimiter struct {
	mu     sync.Mutex
	byAddr *ratelimit.Buckets
}

func newLoginLimiter(perAddr RateLimit, maxKeys int) *loginLimiter {
	return &loginLimiter{byAddr: ratelimit.New(perAddr, maxKeys)}
}

// allow takes a token for addr at now, or reports how long to wait.
func (l *loginLimiter) allow(addr string, now time.Time) (retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.byAddr.Get(addr, now)
	if wait := l.byAddr.Wait(a); wait > 0 {
		return wait, false
	}
	l.byAddr.Take(a)
	return 0, true
}
