package edge

import (
	"container/list"
	"math"
	"sync"
	"time"
)

// maxLimiterKeys caps the buckets kept per limiter: about 100 bytes each, so
// a flood of fresh usernames or addresses costs at most a few MiB.
const maxLimiterKeys = 50_000

// bucket is one key's token bucket.
type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// buckets keeps one token bucket per key in least-recently-used order.
// Idle buckets (full again, so dropping them forgets nothing) are evicted
// from the cold end as new keys arrive; past maxKeys the coldest bucket is
// dropped even if not yet full, which at worst grants that key a fresh
// burst: bounded memory wins over perfect accounting under a flood.
type buckets struct {
	limit   RateLimit
	maxKeys int
	lru     *list.List // of *bucket, most recent first
	byKey   map[string]*list.Element
}

func newBuckets(limit RateLimit, maxKeys int) *buckets {
	return &buckets{limit: limit, maxKeys: maxKeys, lru: list.New(), byKey: map[string]*list.Element{}}
}

// idleAfter is how long an untouched bucket takes to be full again.
func (b *buckets) idleAfter() time.Duration { return time.Duration(b.limit.Burst) * b.limit.Every }

// get returns key's bucket refilled up to now, creating it full.
func (b *buckets) get(key string, now time.Time) *bucket {
	b.evict(now)
	if el, ok := b.byKey[key]; ok {
		b.lru.MoveToFront(el)
		bk := el.Value.(*bucket)
		if elapsed := now.Sub(bk.last); elapsed > 0 {
			bk.tokens = math.Min(float64(b.limit.Burst), bk.tokens+float64(elapsed)/float64(b.limit.Every))
			bk.last = now
		}
		return bk
	}
	bk := &bucket{key: key, tokens: float64(b.limit.Burst), last: now}
	b.byKey[key] = b.lru.PushFront(bk)
	for b.lru.Len() > b.maxKeys {
		b.remove(b.lru.Back())
	}
	return bk
}

func (b *buckets) evict(now time.Time) {
	idle := b.idleAfter()
	for el := b.lru.Back(); el != nil; el = b.lru.Back() {
		if now.Sub(el.Value.(*bucket).last) < idle {
			return
		}
		b.remove(el)
	}
}

func (b *buckets) remove(el *list.Element) {
	b.lru.Remove(el)
	delete(b.byKey, el.Value.(*bucket).key)
}

// wait is how long until bk holds a whole token (0 if it does).
func (b *buckets) wait(bk *bucket) time.Duration {
	if bk.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - bk.tokens) * float64(b.limit.Every))
}

func (b *buckets) len() int { return b.lru.Len() }

// loginLimiter rate-limits logins per username and per client address. An
// attempt takes a token from both buckets or from neither, so a refused
// attempt does not drain the other bucket.
type loginLimiter struct {
	mu     sync.Mutex
	byUser *buckets
	byAddr *buckets
}

func newLoginLimiter(perUser, perAddr RateLimit, maxKeys int) *loginLimiter {
	return &loginLimiter{byUser: newBuckets(perUser, maxKeys), byAddr: newBuckets(perAddr, maxKeys)}
}

// allow takes a token for user and addr at now, or reports how long to wait.
func (l *loginLimiter) allow(user, addr string, now time.Time) (retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.byUser.get(user, now)
	a := l.byAddr.get(addr, now)
	wait := max(l.byUser.wait(u), l.byAddr.wait(a))
	if wait > 0 {
		return wait, false
	}
	u.tokens--
	a.tokens--
	return 0, true
}
