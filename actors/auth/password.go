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
// user that can log in (not disabled) still has DefaultPassword.
//
// It costs no bcrypt round for a user whose password was set since the
// store kept the DefaultPassword flag: whoever hashed the password knew it
// and recorded whether it is the default, so the check is one query on the
// flags, whatever the number of users. A user whose flag is unknown (a row
// from before the flag existed) is compared with bcrypt here, once, and the
// answer recorded, so that the next start costs nothing for it either.
func RefuseDefaultPassword(ctx context.Context, st store.Store) error {
	return refuseDefaultPassword(ctx, st, bcrypt.CompareHashAndPassword)
}

// refuseDefaultPassword is RefuseDefaultPassword with the hash comparison
// as a seam, so that tests can count the bcrypt rounds.
func refuseDefaultPassword(ctx context.Context, st store.Store, compare func(hash, password []byte) error) error {
	unchecked, err := st.ListUncheckedPasswords(ctx)
	if err != nil {
		return fmt.Errorf("check default passwords: %w", err)
	}
	for _, u := range unchecked {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("check default passwords: %w", err)
		}
		isDefault := compare(u.PasswordHash, []byte(DefaultPassword)) == nil
		// Not recorded when the password changed meanwhile: its writer
		// recorded the new one's flag (or left it unknown for next time).
		if _, err := st.RecordDefaultPassword(ctx, u.Username, u.PasswordHash, isDefault); err != nil {
			return fmt.Errorf("check default passwords: %w", err)
		}
	}
	found, err := st.ListDefaultPasswordUsers(ctx)
	if err != nil {
		return fmt.Errorf("check default passwords: %w", err)
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: %s (set a new one with `sensorhub user add`, or `sensorhub user disable`)", ErrDefaultPassword, strings.Join(found, ", "))
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
