package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/internal/token"
)

// dialects opens a fresh, empty store of each kind.
// dialects are the two store kinds (testenv opens them).
var dialects = testenv.Stores

// countingCompare is bcrypt's comparison, counted.
type countingCompare struct{ n atomic.Int64 }

func (c *countingCompare) compare(hash, password []byte) error {
	c.n.Add(1)
	return bcrypt.CompareHashAndPassword(hash, password)
}

func flag(b bool) *bool { return &b }

// The production roles refuse to start while an enabled user has the
// seed's password. Users whose password was set with the flag cost no
// bcrypt round; users from before the flag cost one, at the first start
// only.
func TestRefuseDefaultPassword(t *testing.T) {
	secret, dflt := hash(t, "secret"), hash(t, DefaultPassword)
	cases := []struct {
		name  string
		users []store.User
		found []string // enabled users with the default password
		first int64    // bcrypt rounds at the first start; 0 at the second
	}{
		{"no users", nil, nil, 0},
		{"flags say none", []store.User{
			{Username: "alice", PasswordHash: secret, DefaultPassword: flag(false)},
			{Username: "old", PasswordHash: dflt, DefaultPassword: flag(true), Disabled: true},
		}, nil, 0},
		{"flag says default", []store.User{
			{Username: "alice", PasswordHash: secret, DefaultPassword: flag(false)},
			{Username: "admin", PasswordHash: dflt, DefaultPassword: flag(true)},
		}, []string{"admin"}, 0},
		{"rows from before the flag", []store.User{
			{Username: "alice", PasswordHash: secret, DefaultPassword: flag(false)},
			{Username: "legacy-secret", PasswordHash: secret},
			{Username: "legacy-admin", PasswordHash: dflt},
			{Username: "legacy-off", PasswordHash: dflt, Disabled: true},
		}, []string{"legacy-admin"}, 3},
		{"only secrets from before the flag", []store.User{
			{Username: "legacy-1", PasswordHash: secret},
			{Username: "legacy-2", PasswordHash: secret},
		}, nil, 2},
	}
	for _, d := range dialects {
		for _, tc := range cases {
			t.Run(d.Name+"/"+tc.name, func(t *testing.T) {
				st := d.Open(t)
				for _, u := range tc.users {
					if _, err := st.UpsertUser(t.Context(), u); err != nil {
						t.Fatal(err)
					}
				}
				for start, wantRounds := range []int64{tc.first, 0} {
					var c countingCompare
					err := refuseDefaultPassword(t.Context(), st, c.compare)
					if n := c.n.Load(); n != wantRounds {
						t.Errorf("start %d: %d bcrypt rounds, want %d", start+1, n, wantRounds)
					}
					wantRefused(t, err, tc.found)
				}
			})
		}
	}
}

// wantRefused checks that err refuses exactly the users found (nil: no
// error).
func wantRefused(t *testing.T, err error, found []string) {
	t.Helper()
	if len(found) == 0 {
		if err != nil {
			t.Fatalf("no enabled user has the default password: %v", err)
		}
		return
	}
	if !errors.Is(err, ErrDefaultPassword) {
		t.Fatalf("err = %v, want ErrDefaultPassword", err)
	}
	if !strings.Contains(err.Error(), ": "+strings.Join(found, ", ")+" (") {
		t.Fatalf("err = %q, want it to name exactly %q", err, found)
	}
}

// A password changed away from the default, or a user disabled, lifts the
// refusal; a database that does not answer is an error, not a pass.
func TestRefuseDefaultPasswordFollowsChanges(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			st := &flakyStore{Store: d.Open(t)}
			ctx := t.Context()
			for _, u := range []store.User{
				{Username: "admin", PasswordHash: hash(t, DefaultPassword)}, // from before the flag
				{Username: "root", PasswordHash: hash(t, DefaultPassword), DefaultPassword: flag(true)},
			} {
				if _, err := st.UpsertUser(ctx, u); err != nil {
					t.Fatal(err)
				}
			}
			wantRefused(t, RefuseDefaultPassword(ctx, st), []string{"admin", "root"})
			if _, err := st.UpsertUser(ctx, store.User{Username: "admin", PasswordHash: hash(t, "a long secret"), DefaultPassword: flag(false)}); err != nil {
				t.Fatal(err)
			}
			wantRefused(t, RefuseDefaultPassword(ctx, st), []string{"root"})
			if err := st.SetUserDisabled(ctx, "root", true); err != nil {
				t.Fatal(err)
			}
			wantRefused(t, RefuseDefaultPassword(ctx, st), nil)

			st.down.Store(true)
			if err := RefuseDefaultPassword(ctx, st); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("err = %v, want the store's error", err)
			}
		})
	}
}

// manyUsers is how many users the benchmark measures the start-up check
// with: the seed's check took a bcrypt round each, 16 minutes for this many.
// The test uses fewer (seeding them is what takes time, not the check): the
// number of bcrypt rounds it counts does not depend on it.
const (
	manyUsers     = 10_000
	manyUsersTest = 1_000
)

// seedUsers writes n users whose flags were recorded (none has the
// default password), from 8 writers.
func seedUsers(t testing.TB, st store.Store, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				name := fmt.Sprintf("user-%05d", i)
				if _, err := st.UpsertUser(ctx, store.User{Username: name, PasswordHash: []byte("h-" + name), Roles: []string{"user"}, DefaultPassword: flag(false)}); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("seed users: %v", err)
	}
}

// With many users the check costs no bcrypt round at all.
func TestRefuseDefaultPasswordWithManyUsersCostsNoBcrypt(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			st := d.Open(t)
			seedUsers(t, st, manyUsersTest)
			if _, err := st.UpsertUser(t.Context(), store.User{Username: "admin", PasswordHash: []byte("h"), DefaultPassword: flag(true)}); err != nil {
				t.Fatal(err)
			}
			var c countingCompare
			start := time.Now()
			err := refuseDefaultPassword(t.Context(), st, c.compare)
			elapsed := time.Since(start)
			wantRefused(t, err, []string{"admin"})
			if n := c.n.Load(); n != 0 {
				t.Fatalf("%d bcrypt rounds for %d users, want 0", n, manyUsersTest+1)
			}
			t.Logf("%s: start-up check over %d users in %s, no bcrypt", d.Name, manyUsersTest+1, elapsed)
		})
	}
}

// BenchmarkRefuseDefaultPassword times the start-up check over 10,000 users
// whose flags are recorded.
func BenchmarkRefuseDefaultPassword(b *testing.B) {
	for _, d := range dialects {
		b.Run(fmt.Sprintf("%s/users=%d", d.Name, manyUsers), func(b *testing.B) {
			st := d.Open(b)
			seedUsers(b, st, manyUsers)
			var c countingCompare
			for b.Loop() {
				if err := refuseDefaultPassword(b.Context(), st, c.compare); err != nil {
					b.Fatal(err)
				}
			}
			if n := c.n.Load(); n != 0 {
				b.Fatalf("%d bcrypt rounds", n)
			}
		})
	}
}

func newTestSigner(t testing.TB) *token.Signer {
	t.Helper()
	key, _, err := token.LoadOrCreateKey(t.TempDir() + "/k.pem")
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.NewSigner(key, token.SignerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// At start, before any login, the unknown-user dummy is made at the cost of
// a stored hash (here 5, neither bcrypt's minimum nor its default): from
// the first login on, an unknown user costs the same bcrypt round as a
// known one with a wrong password.
func TestDummyFollowsTheStoredCostFromTheStart(t *testing.T) {
	st := testenv.SQLite(t)
	h, err := bcrypt.GenerateFromPassword([]byte("secret"), 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertUser(t.Context(), store.User{Username: "carol", PasswordHash: h, Roles: []string{"user"}}); err != nil {
		t.Fatal(err)
	}
	s := &Service{cfg: Config{Store: st}}
	s.primeDummy(t.Context())
	if got := s.dummies.cost(); got != 5 {
		t.Fatalf("dummy cost %d after start, want the stored hash's 5", got)
	}
	if c, err := bcrypt.Cost(s.dummies.hash(5)); err != nil || c != 5 {
		t.Fatalf("dummy hash cost %d, %v", c, err)
	}
}
