package recent

import (
	"slices"
	"sync"
	"testing"
)

func TestRingKeepsTheNewestFirst(t *testing.T) {
	r := Ring[int]{Size: 3}
	if got := r.Newest(); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	r.Add(1)
	r.Add(2)
	if got := r.Newest(); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("two added: %v, want [2 1]", got)
	}
	for v := 3; v <= 7; v++ {
		r.Add(v)
	}
	if got := r.Newest(); !slices.Equal(got, []int{7, 6, 5}) {
		t.Fatalf("seven added to three: %v, want [7 6 5]", got)
	}
}

func TestZeroRingKeepsDefaultSize(t *testing.T) {
	var r Ring[int]
	for v := range DefaultSize + 5 {
		r.Add(v)
	}
	got := r.Newest()
	if len(got) != DefaultSize || got[0] != DefaultSize+4 || got[DefaultSize-1] != 5 {
		t.Fatalf("kept %d, newest %d, oldest %d; want %d from %d down to 5", len(got), got[0], got[len(got)-1], DefaultSize, DefaultSize+4)
	}
}

// Concurrent adds and reads (run with -race): every value is counted once.
func TestRingConcurrent(t *testing.T) {
	r := Ring[int]{Size: 1000}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 250 {
				r.Add(g*1000 + i)
				_ = r.Newest()
			}
		})
	}
	wg.Wait()
	got := r.Newest()
	slices.Sort(got)
	if len(slices.Compact(got)) != 1000 {
		t.Fatalf("kept %d distinct values, want 1000", len(slices.Compact(got)))
	}
}
