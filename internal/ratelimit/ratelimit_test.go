package ratelimit

import (
	"testing"
	"time"
)

func TestBucketsTakeGiveAndRefill(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := New(Limit{Every: time.Second, Burst: 2}, 10)
	k := b.Get("k", t0)
	if !k.Full(b.Limit) || b.Wait(k) != 0 {
		t.Fatal("a new bucket is not full")
	}
	b.Take(k)
	b.Take(k)
	if w := b.Wait(k); w != time.Second {
		t.Fatalf("empty bucket waits %v, want 1s", w)
	}
	b.Give(k)
	b.Give(k)
	b.Give(k) // never past the burst
	if !k.Full(b.Limit) || k.tokens != 2 {
		t.Fatalf("after giving back: %v tokens, want 2", k.tokens)
	}
	b.Take(k)
	b.Take(k)
	if k = b.Get("k", t0.Add(1500*time.Millisecond)); b.Wait(k) != 0 || k.tokens != 1.5 {
		t.Fatalf("after 1.5s: %v tokens, want 1.5", k.tokens)
	}
	if (Limit{}).Valid() || (Limit{Every: time.Second}).Valid() || !(Limit{Every: time.Second, Burst: 1}).Valid() {
		t.Fatal("Valid")
	}
}
