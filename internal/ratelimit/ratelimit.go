// Package ratelimit keeps keyed token buckets in bounded memory: one bucket
// per key (a username, an address), least recently used first out. It is
// not safe for concurrent use; callers hold their own lock, so that a
// decision over several buckets is atomic.
package ratelimit

import (
	"container/list"
	"math"
	"time"
)

// DefaultMaxKeys caps the buckets kept per Buckets: about 100 bytes each,
// so a flood of fresh keys costs at most a few MiB.
const DefaultMaxKeys = 50_000

// Limit is a token bucket: it holds at most Burst tokens and gains one
// every Every; each attempt takes one.
type Limit struct {
	Every time.Duration
	Burst int
}

// Valid says whether the limit can work.
func (l Limit) Valid() bool { return l.Every > 0 && l.Burst >= 1 }

// Bucket is one key's token bucket.
type Bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// Full says whether the bucket holds all its tokens (no recent attempt).
func (b *Bucket) Full(l Limit) bool { return b.tokens >= float64(l.Burst) }

// Buckets keeps one token bucket per key in least-recently-used order.
// Idle buckets (full again, so dropping them forgets nothing) are evicted
// from the cold end as new keys arrive; past maxKeys the coldest bucket is
// dropped even if not yet full, which at worst grants that key a fresh
// burst: bounded memory wins over perfect accounting under a flood.
type Buckets struct {
	Limit   Limit
	maxKeys int
	lru     *list.List // of *Bucket, most recent first
	byKey   map[string]*list.Element
}

// New returns empty buckets of limit, keeping at most maxKeys.
func New(limit Limit, maxKeys int) *Buckets {
	return &Buckets{Limit: limit, maxKeys: maxKeys, lru: list.New(), byKey: map[string]*list.Element{}}
}

// idleAfter is how long an untouched bucket takes to be full again.
func (b *Buckets) idleAfter() time.Duration { return time.Duration(b.Limit.Burst) * b.Limit.Every }

// Get returns key's bucket refilled up to now, creating it full.
func (b *Buckets) Get(key string, now time.Time) *Bucket {
	b.evict(now)
	if el, ok := b.byKey[key]; ok {
		b.lru.MoveToFront(el)
		bk := el.Value.(*Bucket)
		if elapsed := now.Sub(bk.last); elapsed > 0 {
			bk.tokens = math.Min(float64(b.Limit.Burst), bk.tokens+float64(elapsed)/float64(b.Limit.Every))
			bk.last = now
		}
		return bk
	}
	bk := &Bucket{key: key, tokens: float64(b.Limit.Burst), last: now}
	b.byKey[key] = b.lru.PushFront(bk)
	for b.lru.Len() > b.maxKeys {
		b.remove(b.lru.Back())
	}
	return bk
}

func (b *Buckets) evict(now time.Time) {
	idle := b.idleAfter()
	for el := b.lru.Back(); el != nil; el = b.lru.Back() {
		if now.Sub(el.Value.(*Bucket).last) < idle {
			return
		}
		b.remove(el)
	}
}

func (b *Buckets) remove(el *list.Element) {
	b.lru.Remove(el)
	delete(b.byKey, el.Value.(*Bucket).key)
}

// Wait is how long until bk holds a whole token (0 if it does).
func (b *Buckets) Wait(bk *Bucket) time.Duration {
	if bk.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - bk.tokens) * float64(b.Limit.Every))
}

// Take spends one token of bk (call only when Wait(bk) is 0).
func (b *Buckets) Take(bk *Bucket) { bk.tokens-- }

// Give returns one token to bk (never past its burst): for an attempt that
// turned out not to count. A bucket evicted meanwhile is simply full again.
func (b *Buckets) Give(bk *Bucket) { bk.tokens = math.Min(float64(b.Limit.Burst), bk.tokens+1) }

// Len is the number of buckets kept.
func (b *Buckets) Len() int { return b.lru.Len() }
