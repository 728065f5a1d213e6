package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sensorhub/internal/store"
)

// Store operations, the values of sensorhub_store_call_duration_seconds's
// "operation" label: the store.Store method names in snake case.
var storeOps = []string{
	"ping", "upsert_user", "get_user", "list_users", "set_user_disabled", "delete_user",
	"list_default_password_users", "list_unchecked_passwords", "record_default_password",
	"insert_tests", "get_test", "complete_tests", "claim_expired", "begin_attempts",
	"renew_leases", "count_tests", "outbox_pending", "delete_outbox", "outbox_backlog",
}

// Store wraps st so that every call's latency is observed in
// sensorhub_store_call_duration_seconds{operation} (with role). Each
// operation's histogram child is resolved here, once.
func (r *Registry) Store(role string, st store.Store) store.Store {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "store", Name: "call_duration_seconds",
		Help:        "Time of a store (database) call, by operation, whatever its outcome.",
		ConstLabels: roleLabels(role),
		Buckets:     durationBuckets,
	}, []string{"operation"})
	r.register(role, h)
	s := &timedStore{st: st, ops: make(map[string]prometheus.Observer, len(storeOps))}
	for _, op := range storeOps {
		s.ops[op] = h.WithLabelValues(op)
	}
	return s
}

// timedStore is a store.Store that times every call. ops is read-only
// after construction.
type timedStore struct {
	st  store.Store
	ops map[string]prometheus.Observer
}

func (s *timedStore) since(op string, start time.Time) {
	s.ops[op].Observe(time.Since(start).Seconds())
}

func (s *timedStore) Dialect() string { return s.st.Dialect() }
func (s *timedStore) Close() error    { return s.st.Close() }

func (s *timedStore) Ping(ctx context.Context) error {
	defer s.since("ping", time.Now())
	return s.st.Ping(ctx)
}

func (s *timedStore) UpsertUser(ctx context.Context, u store.User) (bool, error) {
	defer s.since("upsert_user", time.Now())
	return s.st.UpsertUser(ctx, u)
}

func (s *timedStore) GetUser(ctx context.Context, username string) (store.User, error) {
	defer s.since("get_user", time.Now())
	return s.st.GetUser(ctx, username)
}

func (s *timedStore) ListUsers(ctx context.Context) ([]store.User, error) {
	defer s.since("list_users", time.Now())
	return s.st.ListUsers(ctx)
}

func (s *timedStore) SetUserDisabled(ctx context.Context, username string, disabled bool) error {
	defer s.since("set_user_disabled", time.Now())
	return s.st.SetUserDisabled(ctx, username, disabled)
}

func (s *timedStore) DeleteUser(ctx context.Context, username string) error {
	defer s.since("delete_user", time.Now())
	return s.st.DeleteUser(ctx, username)
}

func (s *timedStore) ListDefaultPasswordUsers(ctx context.Context) ([]string, error) {
	defer s.since("list_default_password_users", time.Now())
	return s.st.ListDefaultPasswordUsers(ctx)
}

func (s *timedStore) ListUncheckedPasswords(ctx context.Context) ([]store.User, error) {
	defer s.since("list_unchecked_passwords", time.Now())
	return s.st.ListUncheckedPasswords(ctx)
}

func (s *timedStore) RecordDefaultPassword(ctx context.Context, username string, hash []byte, isDefault bool) (bool, error) {
	defer s.since("record_default_password", time.Now())
	return s.st.RecordDefaultPassword(ctx, username, hash, isDefault)
}

func (s *timedStore) InsertTests(ctx context.Context, tests []store.NewTest) ([]store.InsertResult, error) {
	defer s.since("insert_tests", time.Now())
	return s.st.InsertTests(ctx, tests)
}

func (s *timedStore) GetTest(ctx context.Context, id string) (store.Test, error) {
	defer s.since("get_test", time.Now())
	return s.st.GetTest(ctx, id)
}

func (s *timedStore) CompleteTests(ctx context.Context, cs []store.Completion) ([]bool, error) {
	defer s.since("complete_tests", time.Now())
	return s.st.CompleteTests(ctx, cs)
}

func (s *timedStore) ClaimExpired(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Test, error) {
	defer s.since("claim_expired", time.Now())
	return s.st.ClaimExpired(ctx, now, lease, limit)
}

func (s *timedStore) BeginAttempts(ctx context.Context, ids []string, until time.Time) ([]int, error) {
	defer s.since("begin_attempts", time.Now())
	return s.st.BeginAttempts(ctx, ids, until)
}

func (s *timedStore) RenewLeases(ctx context.Context, ids []string, until time.Time) (int64, error) {
	defer s.since("renew_leases", time.Now())
	return s.st.RenewLeases(ctx, ids, until)
}

func (s *timedStore) CountTests(ctx context.Context) (map[string]int64, error) {
	defer s.since("count_tests", time.Now())
	return s.st.CountTests(ctx)
}

func (s *timedStore) OutboxPending(ctx context.Context, limit int) ([]store.OutboxRow, error) {
	defer s.since("outbox_pending", time.Now())
	return s.st.OutboxPending(ctx, limit)
}

func (s *timedStore) DeleteOutbox(ctx context.Context, seqs []int64) error {
	defer s.since("delete_outbox", time.Now())
	return s.st.DeleteOutbox(ctx, seqs)
}

func (s *timedStore) OutboxBacklog(ctx context.Context) (int64, error) {
	defer s.since("outbox_backlog", time.Now())
	return s.st.OutboxBacklog(ctx)
}
