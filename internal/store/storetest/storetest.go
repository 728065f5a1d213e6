// Package storetest is the conformance suite every store.Store
// implementation must pass: one behaviour, checked the same way against
// PostgreSQL and SQLite. Implementations call Run from their own tests.
//
// It owns only assertions about the store.Store contract; it must not depend
// on an implementation, a dialect's SQL or a particular server.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"sensorhub/internal/store"
	"sensorhub/messages"
)

// Run runs the suite. open must return a new, empty, migrated store each
// time it is called and arrange its Close with t.Cleanup; Run calls it once
// per subtest, so subtests never see each other's rows.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Basics", testBasics},
		{"Users", testUsers},
		{"UserUpdateKeepsCreatedAt", testUserUpdate},
		{"ListUsers", testListUsers},
		{"UpsertUserReportsCreated", testUpsertCreated},
		{"UpsertUserConcurrent", testUpsertConcurrent},
		{"SetUserDisabled", testSetUserDisabled},
		{"DeleteUser", testDeleteUser},
		{"DefaultPasswordFlag", testDefaultPasswordFlag},
		{"RecordDefaultPassword", testRecordDefaultPassword},
		{"InsertAndGetTest", testInsertAndGet},
		{"InsertIdempotency", testInsertIdempotency},
		{"InsertIdempotencyConcurrent", testInsertConcurrent},
		{"InsertIdempotencyFingerprint", testInsertFingerprint},
		{"InsertIsOneTransaction", testInsertAtomic},
		{"InsertLargeBatch", testInsertLargeBatch},
		{"InsertLargeMixedBatch", testInsertLargeMixed},
		{"CompleteTests", testCompleteTests},
		{"CompleteTestsIsOneTransaction", testCompleteAtomic},
		{"CompleteTestsLargeBatch", testCompleteLargeBatch},
		{"ClaimExpired", testClaimExpired},
		{"ClaimExpiredLimit", testClaimLimit},
		{"ClaimExpiredConcurrent", testClaimConcurrent},
		{"BeginAttempts", testBeginAttempts},
		{"RenewLeases", testRenewLeases},
		{"RenewedLeaseIsNotClaimed", testRenewedNotClaimed},
		{"CountTests", testCountTests},
		{"Outbox", testOutbox},
		{"HostileStrings", testHostileStrings},
		{"Context", testContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
		})
	}
}

// now is a time both dialects round trip exactly (microseconds, UTC).
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("new uuid: %v", err)
	}
	return id.String()
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newTest returns a valid NewTest of owner with key and lease.
func newTest(t *testing.T, owner, key string, lease time.Time) store.NewTest {
	t.Helper()
	return store.NewTest{
		ID:             newID(t),
		Owner:          owner,
		SensorType:     "temperature",
		SensorID:       "sensor-1",
		Request:        []byte(`{"readings":[21.5,22]}`),
		IdempotencyKey: key,
		AuthMode:       "online",
		LeaseUntil:     lease,
	}
}

func insert(t *testing.T, s store.Store, tests ...store.NewTest) []store.InsertResult {
	t.Helper()
	res, err := s.InsertTests(ctxFor(t), tests)
	if err != nil {
		t.Fatalf("InsertTests: %v", err)
	}
	if len(res) != len(tests) {
		t.Fatalf("InsertTests returned %d results for %d tests", len(res), len(tests))
	}
	return res
}

func getTest(t *testing.T, s store.Store, id string) store.Test {
	t.Helper()
	got, err := s.GetTest(ctxFor(t), id)
	if err != nil {
		t.Fatalf("GetTest(%q): %v", id, err)
	}
	return got
}

func complete(t *testing.T, s store.Store, cs ...store.Completion) []bool {
	t.Helper()
	applied, err := s.CompleteTests(ctxFor(t), cs)
	if err != nil {
		t.Fatalf("CompleteTests: %v", err)
	}
	if len(applied) != len(cs) {
		t.Fatalf("CompleteTests returned %d results for %d completions", len(applied), len(cs))
	}
	return applied
}

// completion finishes testID as completed with a fresh event.
func completion(t *testing.T, testID string, at time.Time) store.Completion {
	t.Helper()
	eventID := newID(t)
	return store.Completion{
		TestID: testID,
		Status: messages.StatusCompleted,
		Result: []byte(`{"verdict":"pass","mean":21.75}`),
		Event: store.OutboxEvent{
			EventID: eventID,
			Subject: "sensorhub.events.temperature.completed",
			Payload: []byte(`{"event_id":"` + eventID + `","test_id":"` + testID + `"}`),
			// Distinct per event, so that a row given another's is seen.
			SensorID: "sensor-" + testID,
			// Likewise: the event id's hex digits as the trace id.
			Traceparent: "00-" + strings.ReplaceAll(eventID, "-", "") + "-00f067aa0ba902b7-01",
		},
		At: at,
	}
}

func backlog(t *testing.T, s store.Store) int64 {
	t.Helper()
	n, err := s.OutboxBacklog(ctxFor(t))
	if err != nil {
		t.Fatalf("OutboxBacklog: %v", err)
	}
	return n
}

func pending(t *testing.T, s store.Store, limit int) []store.OutboxRow {
	t.Helper()
	rows, err := s.OutboxPending(ctxFor(t), limit)
	if err != nil {
		t.Fatalf("OutboxPending: %v", err)
	}
	return rows
}

func counts(t *testing.T, s store.Store) map[string]int64 {
	t.Helper()
	c, err := s.CountTests(ctxFor(t))
	if err != nil {
		t.Fatalf("CountTests: %v", err)
	}
	return c
}

func wantNotFound(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: got error %v, want ErrNotFound", what, err)
	}
}

// assertNewTest checks that got holds exactly what in described, as a fresh
// processing test.
func assertNewTest(t *testing.T, got store.Test, in store.NewTest) {
	t.Helper()
	checks := []struct {
		field     string
		got, want any
	}{
		{"ID", got.ID, in.ID},
		{"Owner", got.Owner, in.Owner},
		{"SensorType", got.SensorType, in.SensorType},
		{"SensorID", got.SensorID, in.SensorID},
		{"Request", string(got.Request), string(in.Request)},
		{"IdempotencyKey", got.IdempotencyKey, in.IdempotencyKey},
		{"AuthMode", got.AuthMode, in.AuthMode},
		{"Status", got.Status, messages.StatusProcessing},
		{"Attempts", got.Attempts, 0},
		{"Result", got.Result == nil, true},
		{"Reason", got.Reason, ""},
		{"CompletedAt", got.CompletedAt == nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("test %s: %s = %#v, want %#v", in.ID, c.field, c.got, c.want)
		}
	}
	if !got.LeaseUntil.Equal(in.LeaseUntil) {
		t.Errorf("test %s: LeaseUntil = %v, want %v", in.ID, got.LeaseUntil, in.LeaseUntil)
	}
	if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		t.Errorf("test %s: CreatedAt %v / UpdatedAt %v not set", in.ID, got.CreatedAt, got.UpdatedAt)
	}
	if d := time.Since(got.CreatedAt); d < -time.Minute || d > time.Hour {
		t.Errorf("test %s: CreatedAt %v is not about now", in.ID, got.CreatedAt)
	}
}

func testBasics(t *testing.T, s store.Store) {
	if d := s.Dialect(); d != "postgres" && d != "sqlite" {
		t.Errorf("Dialect() = %q, want postgres or sqlite", d)
	}
	if err := s.Ping(ctxFor(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	users, err := s.ListUsers(ctxFor(t))
	if err != nil || len(users) != 0 {
		t.Fatalf("ListUsers on an empty store = %v, %v; want none", users, err)
	}
	for status, n := range counts(t, s) {
		if n != 0 {
			t.Errorf("empty store: CountTests()[%q] = %d", status, n)
		}
	}
	if n := backlog(t, s); n != 0 {
		t.Errorf("empty store: OutboxBacklog = %d", n)
	}
}

func testUsers(t *testing.T, s store.Store) {
	cases := []struct {
		name string
		user store.User
	}{
		{"roles", store.User{Username: "alice", PasswordHash: []byte("$2a$10$abcdefghijklmnopqrstuv"), Roles: []string{"admin", "user"}}},
		{"disabled no roles", store.User{Username: "bob", PasswordHash: []byte("$2a$10$x"), Disabled: true}},
		{"binary hash", store.User{Username: "carol", PasswordHash: []byte{0, 1, 2, 0xfe, 0xff, 0}, Roles: []string{"user"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.UpsertUser(ctxFor(t), tc.user); err != nil {
				t.Fatalf("UpsertUser: %v", err)
			}
			got, err := s.GetUser(ctxFor(t), tc.user.Username)
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			assertUser(t, got, tc.user)
			if got.CreatedAt.IsZero() || got.UpdatedAt.Before(got.CreatedAt) {
				t.Errorf("CreatedAt %v, UpdatedAt %v: want set and UpdatedAt >= CreatedAt", got.CreatedAt, got.UpdatedAt)
			}
		})
	}
	t.Run("not found", func(t *testing.T) {
		_, err := s.GetUser(ctxFor(t), "nobody")
		wantNotFound(t, err, "GetUser(nobody)")
		_, err = s.GetUser(ctxFor(t), "ALICE")
		wantNotFound(t, err, "GetUser(ALICE): usernames are case-sensitive")
	})
}

func assertUser(t *testing.T, got, want store.User) {
	t.Helper()
	if got.Username != want.Username {
		t.Errorf("Username = %q, want %q", got.Username, want.Username)
	}
	if !bytes.Equal(got.PasswordHash, want.PasswordHash) {
		t.Errorf("%s: PasswordHash = %q, want %q", want.Username, got.PasswordHash, want.PasswordHash)
	}
	if !slices.Equal(got.Roles, want.Roles) && (len(got.Roles) != 0 || len(want.Roles) != 0) {
		t.Errorf("%s: Roles = %q, want %q", want.Username, got.Roles, want.Roles)
	}
	if got.Disabled != want.Disabled {
		t.Errorf("%s: Disabled = %v, want %v", want.Username, got.Disabled, want.Disabled)
	}
	if flagString(got.DefaultPassword) != flagString(want.DefaultPassword) {
		t.Errorf("%s: DefaultPassword = %s, want %s", want.Username, flagString(got.DefaultPassword), flagString(want.DefaultPassword))
	}
}

// flagString shows a DefaultPassword flag: true, false or unknown (nil).
func flagString(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}

func flag(b bool) *bool { return &b }

func upsert(t *testing.T, s store.Store, u store.User) (created bool) {
	t.Helper()
	created, err := s.UpsertUser(ctxFor(t), u)
	if err != nil {
		t.Fatalf("UpsertUser(%q): %v", u.Username, err)
	}
	return created
}

func getUser(t *testing.T, s store.Store, name string) store.User {
	t.Helper()
	u, err := s.GetUser(ctxFor(t), name)
	if err != nil {
		t.Fatalf("GetUser(%q): %v", name, err)
	}
	return u
}

func testUserUpdate(t *testing.T, s store.Store) {
	first := store.User{Username: "dave", PasswordHash: []byte("old"), Roles: []string{"user"}}
	if _, err := s.UpsertUser(ctxFor(t), first); err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	before, err := s.GetUser(ctxFor(t), "dave")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	second := store.User{Username: "dave", PasswordHash: []byte("new"), Roles: []string{"admin"}, Disabled: true}
	if _, err := s.UpsertUser(ctxFor(t), second); err != nil {
		t.Fatalf("UpsertUser again: %v", err)
	}
	after, err := s.GetUser(ctxFor(t), "dave")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	assertUser(t, after, second)
	if !after.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("CreatedAt changed on update: %v -> %v", before.CreatedAt, after.CreatedAt)
	}
	if after.UpdatedAt.Before(before.UpdatedAt) {
		t.Errorf("UpdatedAt went back on update: %v -> %v", before.UpdatedAt, after.UpdatedAt)
	}
	users, err := s.ListUsers(ctxFor(t))
	if err != nil || len(users) != 1 {
		t.Fatalf("ListUsers after two upserts of one user = %d users, %v; want 1", len(users), err)
	}
}

func testListUsers(t *testing.T, s store.Store) {
	// Byte order: upper case before lower case, whatever the collation.
	names := []string{"bob", "Zed", "alice", "älg", "a_b"}
	for _, n := range names {
		if _, err := s.UpsertUser(ctxFor(t), store.User{Username: n, PasswordHash: []byte("h-" + n), Roles: []string{"r-" + n}}); err != nil {
			t.Fatalf("UpsertUser(%q): %v", n, err)
		}
	}
	users, err := s.ListUsers(ctxFor(t))
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.Username)
		if string(u.PasswordHash) != "h-"+u.Username || !slices.Equal(u.Roles, []string{"r-" + u.Username}) {
			t.Errorf("ListUsers: %q has hash %q roles %q", u.Username, u.PasswordHash, u.Roles)
		}
	}
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ListUsers order = %q, want %q", got, want)
	}
}

// UpsertUser tells a new user from an update, and an update keeps nothing
// of the old row but created_at.
func testUpsertCreated(t *testing.T, s store.Store) {
	steps := []struct {
		name        string
		user        store.User
		delete      bool // delete the user before this upsert
		wantCreated bool
	}{
		{"new user", store.User{Username: "erin", PasswordHash: []byte("h1"), Roles: []string{"user"}, DefaultPassword: flag(false)}, false, true},
		{"same name again", store.User{Username: "erin", PasswordHash: []byte("h2"), Roles: []string{"admin"}, Disabled: true, DefaultPassword: flag(true)}, false, false},
		{"update to unknown flag", store.User{Username: "erin", PasswordHash: []byte("h3")}, false, false},
		{"another name", store.User{Username: "Erin", PasswordHash: []byte("h4")}, false, true},
		{"after delete", store.User{Username: "erin", PasswordHash: []byte("h5"), DefaultPassword: flag(false)}, true, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.delete {
				if err := s.DeleteUser(ctxFor(t), st.user.Username); err != nil {
					t.Fatalf("DeleteUser: %v", err)
				}
			}
			if created := upsert(t, s, st.user); created != st.wantCreated {
				t.Errorf("UpsertUser(%q) created = %v, want %v", st.user.Username, created, st.wantCreated)
			}
			assertUser(t, getUser(t, s, st.user.Username), st.user)
		})
	}
}

// Of concurrent upserts of one new name, exactly one creates it.
func testUpsertConcurrent(t *testing.T, s store.Store) {
	const n = 8
	results := make(chan bool, n)
	errs := make(chan error, n)
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created, err := s.UpsertUser(ctx, store.User{Username: "race", PasswordHash: []byte(fmt.Sprint("h", i))})
			if err != nil {
				errs <- err
				return
			}
			results <- created
		}()
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Errorf("concurrent UpsertUser: %v", err)
	}
	createdCount := 0
	for c := range results {
		if c {
			createdCount++
		}
	}
	if createdCount != 1 {
		t.Errorf("%d of %d concurrent upserts of one new name reported created, want 1", createdCount, n)
	}
	users, err := s.ListUsers(ctxFor(t))
	if err != nil || len(users) != 1 {
		t.Fatalf("ListUsers = %d users, %v; want 1", len(users), err)
	}
}

func testSetUserDisabled(t *testing.T, s store.Store) {
	u := store.User{Username: "frank", PasswordHash: []byte("h"), Roles: []string{"user"}, DefaultPassword: flag(false)}
	upsert(t, s, u)
	before := getUser(t, s, "frank")
	for _, disabled := range []bool{true, true, false, false, true} {
		if err := s.SetUserDisabled(ctxFor(t), "frank", disabled); err != nil {
			t.Fatalf("SetUserDisabled(%v): %v", disabled, err)
		}
		got := getUser(t, s, "frank")
		want := u
		want.Disabled = disabled
		assertUser(t, got, want)
		if !got.CreatedAt.Equal(before.CreatedAt) || got.UpdatedAt.Before(before.UpdatedAt) {
			t.Errorf("SetUserDisabled(%v): CreatedAt %v -> %v, UpdatedAt %v -> %v", disabled, before.CreatedAt, got.CreatedAt, before.UpdatedAt, got.UpdatedAt)
		}
		before = got
	}
	wantNotFound(t, s.SetUserDisabled(ctxFor(t), "nobody", true), "SetUserDisabled(nobody)")
	wantNotFound(t, s.SetUserDisabled(ctxFor(t), "FRANK", false), "SetUserDisabled(FRANK): usernames are case-sensitive")
	if !getUser(t, s, "frank").Disabled {
		t.Error("SetUserDisabled of another name changed frank")
	}
}

func testDeleteUser(t *testing.T, s store.Store) {
	for _, n := range []string{"gina", "hank"} {
		upsert(t, s, store.User{Username: n, PasswordHash: []byte("h-" + n)})
	}
	nt := newTest(t, "gina", "", now().Add(time.Minute))
	insert(t, s, nt)
	if err := s.DeleteUser(ctxFor(t), "gina"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := s.GetUser(ctxFor(t), "gina")
	wantNotFound(t, err, "GetUser after DeleteUser")
	wantNotFound(t, s.DeleteUser(ctxFor(t), "gina"), "DeleteUser twice")
	wantNotFound(t, s.DeleteUser(ctxFor(t), "nobody"), "DeleteUser(nobody)")
	users, err := s.ListUsers(ctxFor(t))
	if err != nil || len(users) != 1 || users[0].Username != "hank" {
		t.Fatalf("ListUsers after deleting gina = %v, %v; want hank only", users, err)
	}
	if got := getTest(t, s, nt.ID); got.Owner != "gina" {
		t.Errorf("the deleted user's test lost its owner: %q", got.Owner)
	}
}

// The DefaultPassword flag round trips as true, false or unknown, and the
// two start-up queries select on it.
func testDefaultPasswordFlag(t *testing.T, s store.Store) {
	users := []store.User{
		{Username: "admin", PasswordHash: []byte("d1"), DefaultPassword: flag(true)},
		{Username: "Boss", PasswordHash: []byte("d2"), DefaultPassword: flag(true)},
		{Username: "dormant", PasswordHash: []byte("d3"), DefaultPassword: flag(true), Disabled: true},
		{Username: "ivy", PasswordHash: []byte("s1"), DefaultPassword: flag(false)},
		{Username: "legacy", PasswordHash: []byte("l1")},
		{Username: "legacy-off", PasswordHash: []byte("l2"), Disabled: true},
	}
	for _, u := range users {
		upsert(t, s, u)
	}
	for _, u := range users {
		assertUser(t, getUser(t, s, u.Username), u)
	}
	wantLists(t, s, []string{"Boss", "admin"}, []string{"legacy", "legacy-off"})

	// ListUsers carries the flags too.
	listed, err := s.ListUsers(ctxFor(t))
	if err != nil || len(listed) != len(users) {
		t.Fatalf("ListUsers = %d, %v", len(listed), err)
	}
	byName := map[string]store.User{}
	for _, u := range listed {
		byName[u.Username] = u
	}
	for _, u := range users {
		assertUser(t, byName[u.Username], u)
	}

	// A new password clears the flag; disabling hides a flagged user,
	// enabling shows it again.
	upsert(t, s, store.User{Username: "admin", PasswordHash: []byte("new"), DefaultPassword: flag(false)})
	if err := s.SetUserDisabled(ctxFor(t), "Boss", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserDisabled(ctxFor(t), "dormant", false); err != nil {
		t.Fatal(err)
	}
	wantLists(t, s, []string{"dormant"}, []string{"legacy", "legacy-off"})
	if err := s.DeleteUser(ctxFor(t), "dormant"); err != nil {
		t.Fatal(err)
	}
	wantLists(t, s, []string{}, []string{"legacy", "legacy-off"})
}

// wantLists checks ListDefaultPasswordUsers and the names of
// ListUncheckedPasswords.
func wantLists(t *testing.T, s store.Store, wantDefault, wantUnchecked []string) {
	t.Helper()
	names, err := s.ListDefaultPasswordUsers(ctxFor(t))
	if err != nil {
		t.Fatalf("ListDefaultPasswordUsers: %v", err)
	}
	if names == nil || !slices.Equal(names, wantDefault) {
		t.Errorf("ListDefaultPasswordUsers = %#v, want %q", names, wantDefault)
	}
	unchecked, err := s.ListUncheckedPasswords(ctxFor(t))
	if err != nil {
		t.Fatalf("ListUncheckedPasswords: %v", err)
	}
	got := []string{}
	for _, u := range unchecked {
		got = append(got, u.Username)
		if u.DefaultPassword != nil || len(u.PasswordHash) == 0 {
			t.Errorf("ListUncheckedPasswords: %q has flag %s, hash %q", u.Username, flagString(u.DefaultPassword), u.PasswordHash)
		}
	}
	if !slices.Equal(got, wantUnchecked) {
		t.Errorf("ListUncheckedPasswords = %q, want %q", got, wantUnchecked)
	}
}

// RecordDefaultPassword sets the flag of a hash that is still current, and
// only then.
func testRecordDefaultPassword(t *testing.T, s store.Store) {
	for _, n := range []string{"old-default", "old-secret", "changed"} {
		upsert(t, s, store.User{Username: n, PasswordHash: []byte("h-" + n), Roles: []string{"user"}})
	}
	before := getUser(t, s, "old-default")
	// "changed" got a new password after its hash was read for the check.
	upsert(t, s, store.User{Username: "changed", PasswordHash: []byte("h-new"), DefaultPassword: flag(false)})

	cases := []struct {
		user, hash   string
		isDefault    bool
		wantRecorded bool
	}{
		{"old-default", "h-old-default", true, true},
		{"old-secret", "h-old-secret", false, true},
		{"changed", "h-changed", true, false},
		{"nobody", "h", true, false},
		{"old-secret", "h-other", true, false},
	}
	for _, tc := range cases {
		recorded, err := s.RecordDefaultPassword(ctxFor(t), tc.user, []byte(tc.hash), tc.isDefault)
		if err != nil || recorded != tc.wantRecorded {
			t.Errorf("RecordDefaultPassword(%q, %q, %v) = %v, %v; want %v", tc.user, tc.hash, tc.isDefault, recorded, err, tc.wantRecorded)
		}
	}
	after := getUser(t, s, "old-default")
	assertUser(t, after, store.User{Username: "old-default", PasswordHash: []byte("h-old-default"), Roles: []string{"user"}, DefaultPassword: flag(true)})
	if !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("RecordDefaultPassword changed updated_at: %v -> %v", before.UpdatedAt, after.UpdatedAt)
	}
	assertUser(t, getUser(t, s, "old-secret"), store.User{Username: "old-secret", PasswordHash: []byte("h-old-secret"), Roles: []string{"user"}, DefaultPassword: flag(false)})
	assertUser(t, getUser(t, s, "changed"), store.User{Username: "changed", PasswordHash: []byte("h-new"), DefaultPassword: flag(false)})
	wantLists(t, s, []string{"old-default"}, []string{})
}

func testInsertAndGet(t *testing.T, s store.Store) {
	lease := now().Add(time.Minute)
	withKey := newTest(t, "alice", "key-1", lease)
	// Key order and spacing must survive: the request is stored as given.
	withKey.Request = []byte(`{"z": 1,  "a":[3, 2,1], "u":"ünïcødé \"q\" \\ \u00e9"}`)
	noKey := newTest(t, "alice", "", lease.Add(time.Second))
	noKey.AuthMode = "fallback"
	noKey.Request = nil

	res := insert(t, s, withKey, noKey)
	for i, in := range []store.NewTest{withKey, noKey} {
		if res[i].ID != in.ID || res[i].Duplicate {
			t.Errorf("result %d = %+v, want {ID:%s Duplicate:false}", i, res[i], in.ID)
		}
		assertNewTest(t, getTest(t, s, in.ID), in)
	}

	_, err := s.GetTest(ctxFor(t), newID(t))
	wantNotFound(t, err, "GetTest(unknown uuid)")
	_, err = s.GetTest(ctxFor(t), "not-a-uuid")
	wantNotFound(t, err, "GetTest(not-a-uuid)")

	empty, err := s.InsertTests(ctxFor(t), nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("InsertTests(nil) = %v, %v; want no results, no error", empty, err)
	}
}

func testInsertIdempotency(t *testing.T, s store.Store) {
	type spec struct{ label, owner, key string }
	type want struct {
		dup  bool
		idOf string // label of the test whose id the result carries
	}
	cases := []struct {
		name     string
		existing []spec
		batch    []spec
		want     []want
	}{
		{
			name:     "duplicate of a stored test",
			existing: []spec{{"x", "alice", "k1"}},
			batch:    []spec{{"a", "alice", "k1"}, {"b", "alice", "k2"}, {"c", "bob", "k1"}, {"d", "alice", ""}},
			want:     []want{{true, "x"}, {false, "b"}, {false, "c"}, {false, "d"}},
		},
		{
			name:  "duplicates within the batch",
			batch: []spec{{"a", "carol", "k"}, {"b", "carol", "k"}, {"c", "carol", ""}, {"d", "carol", ""}, {"e", "dave", "k"}, {"f", "carol", "k"}},
			want:  []want{{false, "a"}, {true, "a"}, {false, "c"}, {false, "d"}, {false, "e"}, {true, "a"}},
		},
		{
			name:     "stored and repeated in the batch",
			existing: []spec{{"x", "erin", "k"}},
			batch:    []spec{{"a", "erin", "k"}, {"b", "erin", "k"}, {"c", "frank", "k"}, {"d", "frank", "k"}},
			want:     []want{{true, "x"}, {true, "x"}, {false, "c"}, {true, "c"}},
		},
		{
			name:     "keys differ only in case",
			existing: []spec{{"x", "gina", "Key"}},
			batch:    []spec{{"a", "gina", "key"}, {"b", "Gina", "Key"}},
			want:     []want{{false, "a"}, {false, "b"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lease := now().Add(time.Minute)
			ids := map[string]string{}
			build := func(specs []spec) []store.NewTest {
				var out []store.NewTest
				for _, sp := range specs {
					nt := newTest(t, sp.owner, sp.key, lease)
					ids[sp.label] = nt.ID
					out = append(out, nt)
				}
				return out
			}
			if len(tc.existing) > 0 {
				insert(t, s, build(tc.existing)...)
			}
			before := counts(t, s)[messages.StatusProcessing]
			batch := build(tc.batch)
			res := insert(t, s, batch...)
			inserted := int64(0)
			for i, w := range tc.want {
				if res[i].Duplicate != w.dup || res[i].ID != ids[w.idOf] {
					t.Errorf("%s: result = %+v, want {ID:%s (%s) Duplicate:%v}", tc.batch[i].label, res[i], ids[w.idOf], w.idOf, w.dup)
				}
				_, err := s.GetTest(ctxFor(t), batch[i].ID)
				switch {
				case w.dup:
					wantNotFound(t, err, "GetTest of a duplicate (it must not be inserted)")
				case err != nil:
					t.Errorf("GetTest(%s): %v", tc.batch[i].label, err)
				default:
					inserted++
				}
			}
			if after := counts(t, s)[messages.StatusProcessing]; after-before != inserted {
				t.Errorf("processing count grew by %d, want %d", after-before, inserted)
			}
			// A retry of the keyed tests (new ids, as a client retrying
			// would send) returns the first ids, all duplicates.
			var retry []store.NewTest
			var first []store.InsertResult
			for i, nt := range batch {
				if nt.IdempotencyKey != "" {
					nt.ID = newID(t)
					retry = append(retry, nt)
					first = append(first, res[i])
				}
			}
			for i, r := range insert(t, s, retry...) {
				if !r.Duplicate || r.ID != first[i].ID {
					t.Errorf("retry of %s/%s: result = %+v, want {ID:%s Duplicate:true}", retry[i].Owner, retry[i].IdempotencyKey, r, first[i].ID)
				}
			}
		})
	}
}

// A duplicate says what became of the earlier test (its current status)
// and whether the key was reused for another submission (both fingerprints
// known and different); an unknown fingerprint on either side, as on rows
// written before the store kept them, matches. Nothing a duplicate carries
// is stored, and the earlier test is left as it was.
func testInsertFingerprint(t *testing.T, s store.Store) {
	const fpA, fpB = "aaaa", "bbbb"
	lease := now().Add(time.Minute)
	keyed := func(owner, key, fp string) store.NewTest {
		nt := newTest(t, owner, key, lease)
		nt.Fingerprint = fp
		return nt
	}
	k1 := keyed("alice", "k1", fpA)
	old := keyed("alice", "k3", "") // as written before fingerprints
	done := keyed("alice", "k4", fpA)
	gone := keyed("alice", "k5", fpA)
	insert(t, s, k1, old, done, gone)
	cDone := completion(t, done.ID, now())
	cGone := completion(t, gone.ID, now())
	cGone.Status, cGone.Result, cGone.Reason = messages.StatusFailed, nil, "gave up"
	complete(t, s, cDone, cGone)

	processing, completed, failed := messages.StatusProcessing, messages.StatusCompleted, messages.StatusFailed
	batch := []struct {
		label string
		nt    store.NewTest
		want  store.InsertResult
		// idOf: the test whose id the result must carry ("" = itself).
		idOf string
	}{
		{"same key, same body", keyed("alice", "k1", fpA), store.InsertResult{Duplicate: true, Status: processing}, "k1"},
		{"same key, other body", keyed("alice", "k1", fpB), store.InsertResult{Duplicate: true, Status: processing, KeyReused: true}, "k1"},
		{"same key, no fingerprint", keyed("alice", "k1", ""), store.InsertResult{Duplicate: true, Status: processing}, "k1"},
		{"new key", keyed("alice", "k2", fpA), store.InsertResult{Status: processing}, ""},
		{"new key again, other body", keyed("alice", "k2", fpB), store.InsertResult{Duplicate: true, Status: processing, KeyReused: true}, "new key"},
		{"new key again, same body", keyed("alice", "k2", fpA), store.InsertResult{Duplicate: true, Status: processing}, "new key"},
		{"old row", keyed("alice", "k3", fpB), store.InsertResult{Duplicate: true, Status: processing}, "k3"},
		{"completed", keyed("alice", "k4", fpA), store.InsertResult{Duplicate: true, Status: completed}, "k4"},
		{"completed, other body", keyed("alice", "k4", fpB), store.InsertResult{Duplicate: true, Status: completed, KeyReused: true}, "k4"},
		{"failed", keyed("alice", "k5", fpA), store.InsertResult{Duplicate: true, Status: failed}, "k5"},
		{"another owner's key", keyed("bob", "k1", fpB), store.InsertResult{Status: processing}, ""},
		{"no key", keyed("alice", "", fpB), store.InsertResult{Status: processing}, ""},
	}
	ids := map[string]string{"k1": k1.ID, "k3": old.ID, "k4": done.ID, "k5": gone.ID}
	var tests []store.NewTest
	for _, b := range batch {
		tests = append(tests, b.nt)
		if b.idOf == "" {
			ids[b.label] = b.nt.ID
		}
	}
	before := counts(t, s)
	res := insert(t, s, tests...)
	var inserted int64
	for i, b := range batch {
		want := b.want
		want.ID = b.nt.ID
		if b.idOf != "" {
			want.ID = ids[b.idOf]
		}
		if res[i] != want {
			t.Errorf("%s: result %+v, want %+v", b.label, res[i], want)
		}
		_, err := s.GetTest(ctxFor(t), b.nt.ID)
		if want.Duplicate {
			wantNotFound(t, err, b.label+": GetTest of a duplicate")
		} else if err == nil {
			inserted++
		}
	}
	after := counts(t, s)
	if after[processing]-before[processing] != inserted || after[completed] != before[completed] || after[failed] != before[failed] {
		t.Errorf("counts went from %v to %v, want %d more processing and nothing else", before, after, inserted)
	}
	for label, st := range map[string]string{"k1": processing, "k3": processing, "k4": completed, "k5": failed} {
		if got := getTest(t, s, ids[label]); got.Status != st {
			t.Errorf("%s: the earlier test is now %q, want %q", label, got.Status, st)
		}
	}
	// The fingerprint of a test inserted by this batch is kept: a later
	// batch meets it as the earlier one did.
	if r := insert(t, s, keyed("alice", "k2", fpB))[0]; !r.Duplicate || !r.KeyReused || r.ID != ids["new key"] {
		t.Errorf("k2 with the other body in a later batch: %+v, want a reused key of %s", r, ids["new key"])
	}
}

// Concurrent batches (several sensor processes) that share idempotency
// keys, in different orders, agree on one test per key.
func testInsertConcurrent(t *testing.T, s store.Store) {
	const (
		writers = 4
		keys    = 20
	)
	lease := now().Add(time.Minute)
	ctx := ctxFor(t)
	type outcome struct {
		res   []store.InsertResult
		batch []store.NewTest
		err   error
	}
	results := make(chan outcome, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		batch := make([]store.NewTest, keys)
		for k := range keys {
			// Writers walk the keys in different orders.
			key := fmt.Sprintf("key-%02d", (k*(w+1))%keys)
			if w%2 == 1 {
				key = fmt.Sprintf("key-%02d", keys-1-k)
			}
			batch[k] = newTest(t, "alice", key, lease)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := s.InsertTests(ctx, batch)
			results <- outcome{res, batch, err}
		}()
	}
	close(start)
	wg.Wait()
	close(results)

	idOf := map[string]string{}
	firsts := map[string]int{}
	for o := range results {
		if o.err != nil {
			// A deadlock or serialization failure is allowed to surface
			// as ErrRetry, but nothing else.
			if !errors.Is(o.err, store.ErrRetry) {
				t.Errorf("concurrent InsertTests: %v", o.err)
			}
			continue
		}
		for i, r := range o.res {
			key := o.batch[i].IdempotencyKey
			if id, ok := idOf[key]; ok && id != r.ID {
				t.Errorf("key %s: got ids %s and %s", key, id, r.ID)
			}
			idOf[key] = r.ID
			if !r.Duplicate {
				firsts[key]++
				if r.ID != o.batch[i].ID {
					t.Errorf("key %s: new test reported with id %s, sent %s", key, r.ID, o.batch[i].ID)
				}
			}
		}
	}
	for key, n := range firsts {
		if n != 1 {
			t.Errorf("key %s inserted %d times", key, n)
		}
	}
	if got := counts(t, s)[messages.StatusProcessing]; got != int64(len(idOf)) || len(idOf) != keys {
		t.Errorf("processing = %d for %d keys seen, want %d", got, len(idOf), keys)
	}
}

func testInsertAtomic(t *testing.T, s store.Store) {
	lease := now().Add(time.Minute)
	first := newTest(t, "alice", "", lease)
	insert(t, s, first)

	fresh := newTest(t, "alice", "fresh-key", lease)
	clash := newTest(t, "alice", "", lease)
	clash.ID = first.ID // the primary key refuses it
	_, err := s.InsertTests(ctxFor(t), []store.NewTest{fresh, clash})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("InsertTests with a reused id: got %v, want ErrConflict", err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a conflict must not look like an outage: %v", err)
	}
	_, err = s.GetTest(ctxFor(t), fresh.ID)
	wantNotFound(t, err, "GetTest of the batch's other test (the batch must roll back)")
	// Its key was not taken either.
	res := insert(t, s, newTest(t, "alice", "fresh-key", lease))
	if res[0].Duplicate {
		t.Errorf("a rolled back batch left its idempotency key behind: %+v", res[0])
	}
	if got := getTest(t, s, first.ID); got.Owner != first.Owner || got.SensorID != first.SensorID {
		t.Errorf("the first test changed: %+v", got)
	}
}

func testInsertLargeBatch(t *testing.T, s store.Store) {
	const n = 500
	lease := now().Add(time.Minute)
	batch := make([]store.NewTest, n)
	for i := range batch {
		key := ""
		if i%2 == 0 {
			key = fmt.Sprintf("key-%d", i%100) // 50 distinct keys, each 5 times
		}
		batch[i] = newTest(t, "loader", key, lease)
	}
	res := insert(t, s, batch...)
	firstByKey := map[string]string{}
	var dups int
	for i, r := range res {
		key := batch[i].IdempotencyKey
		if key == "" {
			if r.Duplicate || r.ID != batch[i].ID {
				t.Fatalf("test %d without key: %+v", i, r)
			}
			continue
		}
		if id, ok := firstByKey[key]; ok {
			dups++
			if !r.Duplicate || r.ID != id {
				t.Fatalf("test %d (%s): %+v, want duplicate of %s", i, key, r, id)
			}
			continue
		}
		firstByKey[key] = r.ID
		if r.Duplicate || r.ID != batch[i].ID {
			t.Fatalf("test %d (%s first): %+v", i, key, r)
		}
	}
	if dups != 200 {
		t.Errorf("%d duplicates, want 200", dups)
	}
	if got := counts(t, s)[messages.StatusProcessing]; got != n-200 {
		t.Errorf("processing = %d, want %d", got, n-200)
	}
}

func testCompleteTests(t *testing.T, s store.Store) {
	lease := now().Add(time.Minute)
	t1, t2, t3 := newTest(t, "alice", "", lease), newTest(t, "alice", "", lease), newTest(t, "bob", "", lease)
	insert(t, s, t1, t2, t3)

	at := now()
	c1 := completion(t, t1.ID, at)
	c2 := completion(t, t2.ID, at.Add(time.Millisecond))
	c2.Status, c2.Result, c2.Reason = messages.StatusFailed, nil, "processor crashed 3 times"
	cUnknown := completion(t, newID(t), at)
	if got := complete(t, s, c1, c2, cUnknown); !slices.Equal(got, []bool{true, true, false}) {
		t.Fatalf("applied = %v, want [true true false]", got)
	}

	g1 := getTest(t, s, t1.ID)
	if g1.Status != messages.StatusCompleted || string(g1.Result) != string(c1.Result) || g1.Reason != "" {
		t.Errorf("t1 = status %q result %q reason %q", g1.Status, g1.Result, g1.Reason)
	}
	if g1.CompletedAt == nil || !g1.CompletedAt.Equal(at) || !g1.UpdatedAt.Equal(at) {
		t.Errorf("t1 CompletedAt %v UpdatedAt %v, want %v", g1.CompletedAt, g1.UpdatedAt, at)
	}
	g2 := getTest(t, s, t2.ID)
	if g2.Status != messages.StatusFailed || g2.Result != nil || g2.Reason != c2.Reason || g2.CompletedAt == nil {
		t.Errorf("t2 = status %q result %q reason %q completed %v", g2.Status, g2.Result, g2.Reason, g2.CompletedAt)
	}
	if g3 := getTest(t, s, t3.ID); g3.Status != messages.StatusProcessing || g3.CompletedAt != nil {
		t.Errorf("t3 was not in the batch but is %q", g3.Status)
	}
	assertEvents(t, s, c1.Event, c2.Event)
	// The relay heads each event with its test id and completion time.
	for i, r := range pending(t, s, 2) {
		c := []store.Completion{c1, c2}[i]
		if r.TestID != c.TestID || !r.CreatedAt.Equal(c.At) {
			t.Errorf("outbox row %d: test id %q created %v, want %q %v", i, r.TestID, r.CreatedAt, c.TestID, c.At)
		}
	}

	// A second completion (another worker, a redelivery) changes nothing
	// and writes no second event.
	again := completion(t, t1.ID, at.Add(time.Hour))
	again.Status, again.Reason = messages.StatusFailed, "late"
	if got := complete(t, s, again); !slices.Equal(got, []bool{false}) {
		t.Errorf("second completion applied = %v, want [false]", got)
	}
	if g := getTest(t, s, t1.ID); g.Status != messages.StatusCompleted || !g.CompletedAt.Equal(at) || g.Reason != "" {
		t.Errorf("second completion changed t1: %q %v %q", g.Status, g.CompletedAt, g.Reason)
	}
	assertEvents(t, s, c1.Event, c2.Event)

	// The same test twice in one batch: the first wins.
	d1, d2 := completion(t, t3.ID, at), completion(t, t3.ID, at)
	d2.Status = messages.StatusFailed
	if got := complete(t, s, d1, d2); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("same test twice in a batch: applied = %v, want [true false]", got)
	}
	if g := getTest(t, s, t3.ID); g.Status != messages.StatusCompleted {
		t.Errorf("t3 = %q, want completed (the first completion of the batch)", g.Status)
	}
	assertEvents(t, s, c1.Event, c2.Event, d1.Event)

	if got, err := s.CompleteTests(ctxFor(t), nil); err != nil || len(got) != 0 {
		t.Errorf("CompleteTests(nil) = %v, %v", got, err)
	}
}

// assertEvents checks that the outbox holds exactly want, in order.
func assertEvents(t *testing.T, s store.Store, want ...store.OutboxEvent) {
	t.Helper()
	rows := pending(t, s, 1000)
	if len(rows) != len(want) {
		t.Fatalf("outbox has %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, r := range rows {
		w := want[i]
		if r.EventID != w.EventID || r.Subject != w.Subject || !bytes.Equal(r.Payload, w.Payload) {
			t.Errorf("outbox row %d = %s %q %q, want %s %q %q", i, r.EventID, r.Subject, r.Payload, w.EventID, w.Subject, w.Payload)
		}
		if r.SensorID != w.SensorID {
			t.Errorf("outbox row %d: sensor id %q, want %q", i, r.SensorID, w.SensorID)
		}
		if r.Traceparent != w.Traceparent {
			t.Errorf("outbox row %d: traceparent %q, want %q", i, r.Traceparent, w.Traceparent)
		}
		if i > 0 && r.Seq <= rows[i-1].Seq {
			t.Errorf("outbox seq not increasing: %d after %d", r.Seq, rows[i-1].Seq)
		}
		if r.CreatedAt.IsZero() {
			t.Errorf("outbox row %d has no CreatedAt", i)
		}
	}
	if n := backlog(t, s); n != int64(len(want)) {
		t.Errorf("OutboxBacklog = %d, want %d", n, len(want))
	}
}

// A large batch mixing every case, interleaved: keys already stored, new
// keys (some repeated within the batch), no key. Results come back in
// input order whatever order the store works in.
func testInsertLargeMixed(t *testing.T, s store.Store) {
	const n = 400
	lease := now().Add(time.Minute)
	stored := map[string]string{} // key -> id of the test stored earlier
	var earlier []store.NewTest
	for k := range 50 {
		nt := newTest(t, "mixer", fmt.Sprintf("old-%02d", k), lease)
		stored[nt.IdempotencyKey] = nt.ID
		earlier = append(earlier, nt)
	}
	insert(t, s, earlier...)

	batch := make([]store.NewTest, n)
	for i := range batch {
		var key string
		switch i % 4 {
		case 0:
			key = fmt.Sprintf("old-%02d", (i*7)%50) // stored earlier
		case 1:
			key = fmt.Sprintf("new-%03d", i%120) // new, some repeated in the batch
		case 2:
			key = "" // no key
		case 3:
			key = fmt.Sprintf("new-%03d", i) // new, once
		}
		owner := "mixer"
		if i%10 == 9 {
			owner = "other" // same key text, another owner: not a duplicate
		}
		batch[i] = newTest(t, owner, key, lease)
	}
	before := counts(t, s)[messages.StatusProcessing]
	res := insert(t, s, batch...)

	firstInBatch := map[[2]string]string{}
	var inserted int64
	for i, nt := range batch {
		k := [2]string{nt.Owner, nt.IdempotencyKey}
		var want store.InsertResult
		switch {
		case nt.IdempotencyKey == "":
			want = store.InsertResult{ID: nt.ID, Status: messages.StatusProcessing}
		case nt.Owner == "mixer" && stored[nt.IdempotencyKey] != "":
			want = store.InsertResult{ID: stored[nt.IdempotencyKey], Duplicate: true, Status: messages.StatusProcessing}
		case firstInBatch[k] != "":
			want = store.InsertResult{ID: firstInBatch[k], Duplicate: true, Status: messages.StatusProcessing}
		default:
			firstInBatch[k] = nt.ID
			want = store.InsertResult{ID: nt.ID, Status: messages.StatusProcessing}
		}
		if res[i] != want {
			t.Fatalf("test %d (%s/%q): result %+v, want %+v", i, nt.Owner, nt.IdempotencyKey, res[i], want)
		}
		if !want.Duplicate {
			inserted++
			assertNewTest(t, getTest(t, s, nt.ID), nt)
		}
	}
	if got := counts(t, s)[messages.StatusProcessing] - before; got != inserted {
		t.Errorf("processing grew by %d, want %d", got, inserted)
	}
}

// A large completion batch in an order unrelated to the tests' ids or
// insertion, mixing tests still processing, tests already finished, unknown
// ids and a test twice: applied flags come back in input order, and the
// events of the applied ones enter the outbox in the batch's order.
func testCompleteLargeBatch(t *testing.T, s store.Store) {
	const n = 300
	lease := now().Add(time.Minute)
	tests := make([]store.NewTest, n)
	for i := range tests {
		tests[i] = newTest(t, "alice", "", lease)
	}
	insert(t, s, tests...)
	// Every seventh test is finished before the batch.
	var done []store.OutboxEvent
	for i := 0; i < n; i += 7 {
		c := completion(t, tests[i].ID, now())
		complete(t, s, c)
		done = append(done, c.Event)
	}

	// A deterministic shuffle: i*131 mod n visits every index once.
	var (
		batch []store.Completion
		want  []bool
		evs   = slices.Clone(done)
	)
	for k := range n {
		i := (k * 131) % n
		c := completion(t, tests[i].ID, now())
		if i%3 == 0 {
			c.Status, c.Result, c.Reason = messages.StatusFailed, nil, fmt.Sprintf("reason %d", i)
		}
		batch = append(batch, c)
		applied := i%7 != 0
		want = append(want, applied)
		if applied {
			evs = append(evs, c.Event)
		}
		switch k {
		case 10:
			batch = append(batch, completion(t, newID(t), now())) // unknown test
			want = append(want, false)
		case 20:
			batch = append(batch, completion(t, tests[i].ID, now())) // the same test again
			want = append(want, false)
		}
	}
	if got := complete(t, s, batch...); !slices.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("applied[%d] (test %s) = %v, want %v", i, batch[i].TestID, got[i], want[i])
			}
		}
	}
	assertEvents(t, s, evs...)
	for k, c := range batch {
		if !want[k] {
			continue
		}
		g := getTest(t, s, c.TestID)
		if g.Status != c.Status || g.Reason != c.Reason || string(g.Result) != string(c.Result) ||
			g.CompletedAt == nil || !g.CompletedAt.Equal(c.At) {
			t.Fatalf("test %s = status %q reason %q result %q completed %v, want %q %q %q %v",
				c.TestID, g.Status, g.Reason, g.Result, g.CompletedAt, c.Status, c.Reason, c.Result, c.At)
		}
	}
	got := counts(t, s)
	failed := int64(0)
	for i := range n {
		if i%7 != 0 && i%3 == 0 {
			failed++
		}
	}
	if got[messages.StatusProcessing] != 0 || got[messages.StatusFailed] != failed || got[messages.StatusCompleted] != n-failed {
		t.Errorf("CountTests() = %v, want no processing, %d failed, %d completed", got, failed, n-failed)
	}
}

func testCompleteAtomic(t *testing.T, s store.Store) {
	lease := now().Add(time.Minute)
	t1, t2, t3 := newTest(t, "alice", "", lease), newTest(t, "alice", "", lease), newTest(t, "alice", "", lease)
	insert(t, s, t1, t2, t3)
	c1 := completion(t, t1.ID, now())
	complete(t, s, c1)

	// t3's event reuses c1's event id: the whole batch must fail, t2 too.
	c2, c3 := completion(t, t2.ID, now()), completion(t, t3.ID, now())
	c3.Event.EventID = c1.Event.EventID
	_, err := s.CompleteTests(ctxFor(t), []store.Completion{c2, c3})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CompleteTests with a reused event id: got %v, want ErrConflict", err)
	}
	for _, id := range []string{t2.ID, t3.ID} {
		if g := getTest(t, s, id); g.Status != messages.StatusProcessing {
			t.Errorf("test %s is %q after a failed batch, want processing", id, g.Status)
		}
	}
	assertEvents(t, s, c1.Event)

	// A completion that can only be a bug is refused before anything runs.
	bad := completion(t, t2.ID, now())
	bad.Status = messages.StatusProcessing
	if _, err := s.CompleteTests(ctxFor(t), []store.Completion{completion(t, t3.ID, now()), bad}); err == nil {
		t.Fatal("CompleteTests with status processing: no error")
	}
	for _, id := range []string{t2.ID, t3.ID} {
		if g := getTest(t, s, id); g.Status != messages.StatusProcessing {
			t.Errorf("test %s is %q after a refused batch, want processing", id, g.Status)
		}
	}
	assertEvents(t, s, c1.Event)
}

func testClaimExpired(t *testing.T, s store.Store) {
	base := now()
	const lease = 30 * time.Second
	type row struct {
		label string
		lease time.Time
		done  bool
	}
	rows := []row{
		{"expired long ago", base.Add(-10 * time.Minute), false},
		{"expired", base.Add(-time.Millisecond), false},
		{"lease ends now", base, false},
		{"lease in the future", base.Add(time.Minute), false},
		{"completed and expired", base.Add(-10 * time.Minute), true},
	}
	ids := map[string]string{}
	for _, r := range rows {
		nt := newTest(t, "alice", "", r.lease)
		insert(t, s, nt)
		ids[r.label] = nt.ID
		if r.done {
			complete(t, s, completion(t, nt.ID, base))
		}
	}

	steps := []struct {
		name     string
		now      time.Time
		want     []string       // labels claimed
		attempts map[string]int // after the claim
	}{
		// A claim is no attempt: BeginAttempts counts those.
		{"only processing tests with a lease before now", base, []string{"expired long ago", "expired"}, map[string]int{"expired long ago": 0, "expired": 0}},
		{"a claimed test's lease is extended", base, nil, nil},
		{"claimed again once the new lease ended", base.Add(lease + time.Microsecond),
			[]string{"expired long ago", "expired", "lease ends now"},
			map[string]int{"expired long ago": 0, "expired": 0, "lease ends now": 0, "lease in the future": 0}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			claimed, err := s.ClaimExpired(ctxFor(t), st.now, lease, 100)
			if err != nil {
				t.Fatalf("ClaimExpired: %v", err)
			}
			var got []string
			for _, c := range claimed {
				got = append(got, c.ID)
				if !c.LeaseUntil.Equal(st.now.Add(lease)) {
					t.Errorf("claimed %s: LeaseUntil = %v, want %v", c.ID, c.LeaseUntil, st.now.Add(lease))
				}
				if c.Status != messages.StatusProcessing || c.Owner != "alice" || c.SensorType != "temperature" || len(c.Request) == 0 {
					t.Errorf("claimed %s is not returned whole: %+v", c.ID, c)
				}
				if stored := getTest(t, s, c.ID); stored.Attempts != c.Attempts || !stored.LeaseUntil.Equal(c.LeaseUntil) {
					t.Errorf("claimed %s: returned attempts %d lease %v, stored %d %v", c.ID, c.Attempts, c.LeaseUntil, stored.Attempts, stored.LeaseUntil)
				}
			}
			var want []string
			for _, l := range st.want {
				want = append(want, ids[l])
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("claimed %v, want %v (%q)", got, want, st.want)
			}
			for label, n := range st.attempts {
				if g := getTest(t, s, ids[label]); g.Attempts != n {
					t.Errorf("%s: Attempts = %d, want %d", label, g.Attempts, n)
				}
			}
		})
	}
	if g := getTest(t, s, ids["completed and expired"]); g.Attempts != 0 || g.Status != messages.StatusCompleted {
		t.Errorf("a completed test was claimed: %+v", g)
	}
}

func testBeginAttempts(t *testing.T, s store.Store) {
	base := now()
	a, b, done := newTest(t, "alice", "", base.Add(time.Minute)), newTest(t, "alice", "", base.Add(time.Hour)),
		newTest(t, "alice", "", base.Add(time.Minute))
	insert(t, s, a, b, done)
	complete(t, s, completion(t, done.ID, base))
	until := base.Add(10 * time.Minute)
	unknown := newID(t)

	steps := []struct {
		name string
		ids  []string
		want []int
	}{
		{"empty batch", nil, []int{}},
		{"first attempts; a finished and an unknown test get 0", []string{a.ID, done.ID, b.ID, unknown}, []int{1, 0, 1, 0}},
		{"a second attempt of one", []string{b.ID}, []int{2}},
	}
	for _, st := range steps {
		got, err := s.BeginAttempts(ctxFor(t), st.ids, until)
		if err != nil {
			t.Fatalf("%s: BeginAttempts: %v", st.name, err)
		}
		if !slices.Equal(got, st.want) {
			t.Fatalf("%s: BeginAttempts = %v, want %v", st.name, got, st.want)
		}
	}
	for _, c := range []struct {
		id       string
		attempts int
		lease    time.Time
		status   string
	}{
		{a.ID, 1, until, messages.StatusProcessing},
		// The lease only moves forward.
		{b.ID, 2, base.Add(time.Hour), messages.StatusProcessing},
		{done.ID, 0, base.Add(time.Minute), messages.StatusCompleted},
	} {
		g := getTest(t, s, c.id)
		if g.Attempts != c.attempts || !g.LeaseUntil.Equal(c.lease) || g.Status != c.status {
			t.Errorf("test %s: attempts %d lease %v status %s, want %d %v %s",
				c.id, g.Attempts, g.LeaseUntil, g.Status, c.attempts, c.lease, c.status)
		}
	}
}

func testRenewLeases(t *testing.T, s store.Store) {
	base := now()
	short, long, done := newTest(t, "alice", "", base.Add(time.Second)), newTest(t, "alice", "", base.Add(time.Hour)),
		newTest(t, "alice", "", base.Add(time.Second))
	insert(t, s, short, long, done)
	complete(t, s, completion(t, done.ID, base))
	before := getTest(t, s, short.ID)
	until := base.Add(time.Minute)

	if n, err := s.RenewLeases(ctxFor(t), nil, until); err != nil || n != 0 {
		t.Fatalf("RenewLeases(nothing) = %d, %v", n, err)
	}
	n, err := s.RenewLeases(ctxFor(t), []string{short.ID, long.ID, done.ID, newID(t)}, until)
	if err != nil {
		t.Fatalf("RenewLeases: %v", err)
	}
	// The later lease is kept but still counts as renewed (it holds).
	if n != 2 {
		t.Errorf("RenewLeases renewed %d, want 2 (the processing tests)", n)
	}
	for _, c := range []struct {
		id    string
		lease time.Time
	}{{short.ID, until}, {long.ID, base.Add(time.Hour)}, {done.ID, base.Add(time.Second)}} {
		if g := getTest(t, s, c.id); !g.LeaseUntil.Equal(c.lease) || g.Attempts != 0 {
			t.Errorf("test %s: lease %v attempts %d, want %v and 0", c.id, g.LeaseUntil, g.Attempts, c.lease)
		}
	}
	if g := getTest(t, s, short.ID); !g.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("RenewLeases changed updated_at: %v, was %v", g.UpdatedAt, before.UpdatedAt)
	}
}

// testRenewedNotClaimed: a renewed lease keeps a test from the sweepers
// until the renewed lease ends.
func testRenewedNotClaimed(t *testing.T, s store.Store) {
	base := now()
	held, gone := newTest(t, "alice", "", base.Add(time.Second)), newTest(t, "alice", "", base.Add(time.Second))
	insert(t, s, held, gone)
	if _, err := s.RenewLeases(ctxFor(t), []string{held.ID}, base.Add(time.Minute)); err != nil {
		t.Fatalf("RenewLeases: %v", err)
	}
	claimed, err := s.ClaimExpired(ctxFor(t), base.Add(2*time.Second), time.Hour, 10)
	if err != nil {
		t.Fatalf("ClaimExpired: %v", err)
	}
	if len(claimed) != 1 || claimed[0].ID != gone.ID {
		t.Fatalf("claimed %v, want only the test whose lease was not renewed (%s)", claimed, gone.ID)
	}
	claimed, err = s.ClaimExpired(ctxFor(t), base.Add(time.Minute+time.Microsecond), time.Hour, 10)
	if err != nil {
		t.Fatalf("ClaimExpired: %v", err)
	}
	if len(claimed) != 1 || claimed[0].ID != held.ID {
		t.Fatalf("claimed %v after the renewed lease ended, want %s", claimed, held.ID)
	}
}

func testClaimLimit(t *testing.T, s store.Store) {
	base := now()
	for range 5 {
		insert(t, s, newTest(t, "alice", "", base.Add(-time.Minute)))
	}
	for _, step := range []struct{ limit, want int }{{0, 0}, {2, 2}, {10, 3}, {10, 0}} {
		claimed, err := s.ClaimExpired(ctxFor(t), base, time.Hour, step.limit)
		if err != nil {
			t.Fatalf("ClaimExpired(limit %d): %v", step.limit, err)
		}
		if len(claimed) != step.want {
			t.Fatalf("ClaimExpired(limit %d) claimed %d, want %d", step.limit, len(claimed), step.want)
		}
	}
}

func testClaimConcurrent(t *testing.T, s store.Store) {
	const (
		n        = 60
		claimers = 4
		limit    = 3
	)
	base := now()
	batch := make([]store.NewTest, n)
	for i := range batch {
		batch[i] = newTest(t, "alice", "", base.Add(-time.Duration(i+1)*time.Second))
	}
	insert(t, s, batch...)

	type outcome struct {
		ids []string
		err error
	}
	ctx := ctxFor(t)
	results := make(chan outcome, claimers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var o outcome
			for {
				claimed, err := s.ClaimExpired(ctx, base, time.Hour, limit)
				if err != nil {
					o.err = err
					break
				}
				if len(claimed) == 0 {
					break
				}
				for _, c := range claimed {
					o.ids = append(o.ids, c.ID)
				}
			}
			results <- o
		}()
	}
	close(start)
	wg.Wait()
	close(results)

	seen := map[string]bool{}
	for o := range results {
		if o.err != nil {
			t.Errorf("a claimer failed: %v", o.err)
		}
		for _, id := range o.ids {
			if seen[id] {
				t.Errorf("test %s claimed twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != n {
		t.Errorf("claimed %d distinct tests, want %d", len(seen), n)
	}
	for _, nt := range batch {
		if g := getTest(t, s, nt.ID); g.Attempts != 0 || !g.LeaseUntil.Equal(base.Add(time.Hour)) {
			t.Errorf("test %s: Attempts = %d, lease %v, want 0 (a claim is no attempt) and %v", nt.ID, g.Attempts, g.LeaseUntil, base.Add(time.Hour))
		}
	}
}

func testCountTests(t *testing.T, s store.Store) {
	lease := now().Add(time.Minute)
	var batch []store.NewTest
	for range 6 {
		batch = append(batch, newTest(t, "alice", "", lease))
	}
	insert(t, s, batch...)
	failed := completion(t, batch[1].ID, now())
	failed.Status = messages.StatusFailed
	complete(t, s, completion(t, batch[0].ID, now()), failed, completion(t, batch[2].ID, now()))

	got := counts(t, s)
	want := map[string]int64{messages.StatusProcessing: 3, messages.StatusCompleted: 2, messages.StatusFailed: 1}
	for status, n := range want {
		if got[status] != n {
			t.Errorf("CountTests()[%q] = %d, want %d (all: %v)", status, got[status], n, got)
		}
	}
	for status := range got {
		if !slices.Contains(store.Statuses(), status) {
			t.Errorf("CountTests() has unknown status %q", status)
		}
	}
}

func testOutbox(t *testing.T, s store.Store) {
	lease := now().Add(time.Minute)
	var events []store.OutboxEvent
	for range 5 {
		nt := newTest(t, "alice", "", lease)
		insert(t, s, nt)
		c := completion(t, nt.ID, now())
		complete(t, s, c)
		events = append(events, c.Event)
	}
	assertEvents(t, s, events...)

	first := pending(t, s, 2)
	if len(first) != 2 || first[0].EventID != events[0].EventID || first[1].EventID != events[1].EventID {
		t.Fatalf("OutboxPending(2) = %+v, want the first two events", first)
	}
	if got := pending(t, s, 0); len(got) != 0 {
		t.Errorf("OutboxPending(0) = %d rows, want none", len(got))
	}

	if err := s.DeleteOutbox(ctxFor(t), []int64{first[0].Seq, first[1].Seq}); err != nil {
		t.Fatalf("DeleteOutbox: %v", err)
	}
	assertEvents(t, s, events[2:]...)

	// Unknown seqs and an empty list are no-ops.
	if err := s.DeleteOutbox(ctxFor(t), []int64{first[0].Seq, 1 << 40}); err != nil {
		t.Fatalf("DeleteOutbox(unknown): %v", err)
	}
	if err := s.DeleteOutbox(ctxFor(t), nil); err != nil {
		t.Fatalf("DeleteOutbox(nil): %v", err)
	}
	assertEvents(t, s, events[2:]...)

	// Drain, then a new event still gets a higher seq: seqs are never reused.
	rest := pending(t, s, 100)
	maxSeq := rest[len(rest)-1].Seq
	var seqs []int64
	for _, r := range rest {
		seqs = append(seqs, r.Seq)
	}
	if err := s.DeleteOutbox(ctxFor(t), seqs); err != nil {
		t.Fatalf("DeleteOutbox(all): %v", err)
	}
	assertEvents(t, s)
	nt := newTest(t, "alice", "", lease)
	insert(t, s, nt)
	c := completion(t, nt.ID, now())
	complete(t, s, c)
	assertEvents(t, s, c.Event)
	if r := pending(t, s, 1); r[0].Seq <= maxSeq {
		t.Errorf("seq %d after draining, want > %d", r[0].Seq, maxSeq)
	}
}

// hostile are strings that break naive quoting, encoding or collation.
var hostile = []string{
	`'; DROP TABLE tests; --`,
	`Robert'); DELETE FROM users WHERE ('1'='1`,
	`"double" 'single' ` + "`back`" + ` \backslash\ \'`,
	`% _ * ? [a-z] LIKE wildcards`,
	`$1 $2 ? ?1 :name @p1 placeholders`,
	"日本語テキスト, émoji 🚀🔥, עברית, e\u0301 combining",
	"line\nbreak\ttab\r\nCRLF",
	"\x01\x1b[31mcontrol\x7f",
	`{"json":"looking","x":[1,2]}`,
	`E'\\x41' \u0000 as literal text`,
	"<script>alert(1)</script>",
	"  leading and trailing spaces  ",
	strings.Repeat("long✓", 2000),
}

func testHostileStrings(t *testing.T, s store.Store) {
	lease := now().Add(time.Minute)
	for i, h := range hostile {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			u := store.User{Username: h, PasswordHash: []byte(h), Roles: []string{h, "user"}, Disabled: true}
			if _, err := s.UpsertUser(ctxFor(t), u); err != nil {
				t.Fatalf("UpsertUser: %v", err)
			}
			got, err := s.GetUser(ctxFor(t), h)
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			assertUser(t, got, u)

			nt := store.NewTest{
				ID: newID(t), Owner: h, SensorType: h, SensorID: h, IdempotencyKey: h, AuthMode: h,
				Request:    []byte(fmt.Sprintf(`{"sensor_id":%s,"nul":"\u0000"}`, jsonString(t, h))),
				LeaseUntil: lease,
			}
			insert(t, s, nt)
			assertNewTest(t, getTest(t, s, nt.ID), nt)
			if res := insert(t, s, store.NewTest{ID: newID(t), Owner: h, IdempotencyKey: h, LeaseUntil: lease}); !res[0].Duplicate || res[0].ID != nt.ID {
				t.Errorf("hostile idempotency key not matched: %+v", res[0])
			}

			c := store.Completion{
				TestID: nt.ID, Status: messages.StatusFailed, Reason: h,
				Event: store.OutboxEvent{EventID: fmt.Sprintf("ev-%d-%s", i, h), Subject: h, Payload: []byte(h), SensorID: h, Traceparent: h},
				At:    now(),
			}
			complete(t, s, c)
			if g := getTest(t, s, nt.ID); g.Reason != h {
				t.Errorf("Reason = %q, want %q", g.Reason, h)
			}
			rows := pending(t, s, 1000)
			last := rows[len(rows)-1]
			if last.EventID != c.Event.EventID || last.Subject != h || string(last.Payload) != h ||
				last.SensorID != h || last.TestID != nt.ID || last.Traceparent != h {
				t.Errorf("outbox row = %q %q %q %q %q %q", last.EventID, last.Subject, last.Payload, last.SensorID, last.TestID, last.Traceparent)
			}

			_, err = s.GetTest(ctxFor(t), h)
			wantNotFound(t, err, "GetTest(hostile id)")
		})
	}
	users, err := s.ListUsers(ctxFor(t))
	if err != nil || len(users) != len(hostile) {
		t.Fatalf("ListUsers = %d users, %v; want %d", len(users), err, len(hostile))
	}
	if n := counts(t, s)[messages.StatusFailed]; n != int64(len(hostile)) {
		t.Errorf("failed tests = %d, want %d", n, len(hostile))
	}
}

func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal %q: %v", s, err)
	}
	return string(b)
}

func testContext(t *testing.T, s store.Store) {
	lease := now().Add(time.Minute)
	nt := newTest(t, "alice", "", lease)
	insert(t, s, nt)
	kept := store.User{Username: "kept", PasswordHash: []byte("h-kept"), Roles: []string{"user"}}
	upsert(t, s, kept)

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Ping", s.Ping},
		{"GetUser", func(ctx context.Context) error { _, err := s.GetUser(ctx, "alice"); return err }},
		{"UpsertUser", func(ctx context.Context) error {
			_, err := s.UpsertUser(ctx, store.User{Username: "x", PasswordHash: []byte("h")})
			return err
		}},
		{"ListUsers", func(ctx context.Context) error { _, err := s.ListUsers(ctx); return err }},
		{"SetUserDisabled", func(ctx context.Context) error { return s.SetUserDisabled(ctx, "kept", true) }},
		{"DeleteUser", func(ctx context.Context) error { return s.DeleteUser(ctx, "kept") }},
		{"ListDefaultPasswordUsers", func(ctx context.Context) error { _, err := s.ListDefaultPasswordUsers(ctx); return err }},
		{"ListUncheckedPasswords", func(ctx context.Context) error { _, err := s.ListUncheckedPasswords(ctx); return err }},
		{"RecordDefaultPassword", func(ctx context.Context) error {
			_, err := s.RecordDefaultPassword(ctx, "kept", []byte("h-kept"), true)
			return err
		}},
		{"GetTest", func(ctx context.Context) error { _, err := s.GetTest(ctx, nt.ID); return err }},
		{"InsertTests", func(ctx context.Context) error {
			_, err := s.InsertTests(ctx, []store.NewTest{newTest(t, "alice", "", lease)})
			return err
		}},
		{"CompleteTests", func(ctx context.Context) error {
			_, err := s.CompleteTests(ctx, []store.Completion{completion(t, nt.ID, now())})
			return err
		}},
		{"ClaimExpired", func(ctx context.Context) error { _, err := s.ClaimExpired(ctx, now(), time.Minute, 10); return err }},
		{"BeginAttempts", func(ctx context.Context) error {
			_, err := s.BeginAttempts(ctx, []string{nt.ID}, now().Add(time.Hour))
			return err
		}},
		{"RenewLeases", func(ctx context.Context) error {
			_, err := s.RenewLeases(ctx, []string{nt.ID}, now().Add(time.Hour))
			return err
		}},
		{"CountTests", func(ctx context.Context) error { _, err := s.CountTests(ctx); return err }},
		{"OutboxPending", func(ctx context.Context) error { _, err := s.OutboxPending(ctx, 10); return err }},
		{"OutboxBacklog", func(ctx context.Context) error { _, err := s.OutboxBacklog(ctx); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			// The caller gave up: not an outage, so breakers must not count it.
			err := c.call(canceled)
			if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
				t.Errorf("canceled context: got %v, want context.Canceled and not ErrUnavailable", err)
			}
			// The deadline passed before a connection was had: unavailable.
			err = c.call(expired)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("expired deadline: got %v, want ErrUnavailable", err)
			}
		})
	}
	if g := getTest(t, s, nt.ID); g.Status != messages.StatusProcessing {
		t.Errorf("a canceled CompleteTests changed the test: %q", g.Status)
	}
	if n := counts(t, s)[messages.StatusProcessing]; n != 1 {
		t.Errorf("canceled InsertTests inserted: %d processing tests, want 1", n)
	}
	got, err := s.GetUser(ctxFor(t), "kept")
	if err != nil {
		t.Fatalf("a canceled DeleteUser deleted the user: %v", err)
	}
	assertUser(t, got, kept)
}
