package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"sensorhub/internal/store"
)

// DefaultPassword is the seed's password for admin, created by `dev` only.
const DefaultPassword = "admin123"

// RefuseDefaultPassword returns an error wrapping ErrDefaultPassword if any
// user that can log in (not disabled) still has DefaultPassword. It
// compares every user's bcrypt hash, so it takes a bcrypt round per user:
// call it once at start.
func RefuseDefaultPassword(ctx context.Context, st store.Store) error {
	users, err := st.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("check default passwords: %w", err)
	}
	var found []string
	for _, u := range users {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("check default passwords: %w", err)
		}
		if u.Disabled {
			continue
		}
		if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(DefaultPassword)) == nil {
			found = append(found, u.Username)
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: %s (set a new one with `sensorhub user add`)", ErrDefaultPassword, strings.Join(found, ", "))
	}
	return nil
}

// dummies holds one bcrypt hash of a random secret per cost. A login for
// an unknown user is compared against the one at the cost of the last real
// hash seen, so that it costs the same bcrypt round as a wrong password and
// the answer time tells nothing about which usernames exist.
type dummies struct {
	mu       sync.Mutex
	byCost   map[int][]byte
	lastCost int
}

// compare spends the bcrypt round of a password check that cannot succeed.
func (d *dummies) compare(password string) {
	_ = bcrypt.CompareHashAndPassword(d.hash(d.cost()), []byte(password))
}

// seen records the cost of a real hash.
func (d *dummies) seen(hash []byte) {
	c, err := bcrypt.Cost(hash)
	if err != nil {
		return
	}
	d.mu.Lock()
	d.lastCost = c
	d.mu.Unlock()
}

func (d *dummies) cost() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lastCost == 0 {
		return bcrypt.DefaultCost
	}
	return d.lastCost
}

// hash returns the dummy hash at cost, making it on first use (outside the
// lock: it takes as long as a login).
func (d *dummies) hash(cost int) []byte {
	d.mu.Lock()
	h, ok := d.byCost[cost]
	d.mu.Unlock()
	if ok {
		return h
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	h, err := bcrypt.GenerateFromPassword(secret, cost)
	if err != nil {
		panic(fmt.Sprintf("bcrypt dummy hash: %v", err)) // only on a broken RNG or bcrypt
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byCost == nil {
		d.byCost = map[int][]byte{}
	}
	if prev, ok := d.byCost[cost]; ok {
		return prev
	}
	d.byCost[cost] = h
	return h
}
