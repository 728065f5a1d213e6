package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"sensorhub/internal/store"
	"sensorhub/messages"
)

const testColumns = `id, owner, sensor_type, sensor_id, request, idempotency_key, auth_mode,
	status, attempts, lease_until, result, reason, created_at, updated_at, completed_at`

// insertUnkeyedSQL inserts a batch of tests without idempotency keys in one
// statement (one transaction by itself): the arrays $1..$7 hold one test per
// index. Without a key a test cannot be a duplicate, and the plan has no
// choice to get wrong (no table is read).
const insertUnkeyedSQL = `
INSERT INTO tests (id, owner, sensor_type, sensor_id, request, idempotency_key, auth_mode,
                   status, attempts, lease_until, created_at, updated_at)
SELECT id, owner, sensor_type, sensor_id, request::json, NULL, auth_mode,
       'processing', 0, lease_until, now(), now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
	AS i(id, owner, sensor_type, sensor_id, request, auth_mode, lease_until)`

// insertKeyedSQL inserts a batch of tests of which some have idempotency
// keys, in one statement: the arrays $1..$9 hold one test per index, keyed
// tests in (owner, key) order, so that two transactions inserting
// overlapping keys wait on each other in the same order instead of
// deadlocking. A test whose (owner, idempotency key) exists is not
// inserted. The statement returns a row for each keyed test it inserted (ord
// NULL, its id) and for each keyed test whose key was already stored (its
// ordinal in the arrays, the stored test's id, status and fingerprint); unkeyed tests, always
// inserted, return nothing. A keyed test in neither set met a key that
// another transaction committed while this statement waited for it (the
// statement's snapshot cannot see that row): InsertTests looks it up again.
const insertKeyedSQL = `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
	                     $8::timestamptz[], $9::text[])
		WITH ORDINALITY AS i(id, owner, sensor_type, sensor_id, request, idempotency_key, auth_mode,
		                     lease_until, request_fingerprint, ord)
), ins AS (
	INSERT INTO tests (id, owner, sensor_type, sensor_id, request, idempotency_key, auth_mode,
	                   status, attempts, lease_until, created_at, updated_at, request_fingerprint)
	SELECT id, owner, sensor_type, sensor_id, request::json, idempotency_key, auth_mode,
	       'processing', 0, lease_until, now(), now(),
	       CASE WHEN idempotency_key IS NOT NULL THEN request_fingerprint END
	FROM input
	ORDER BY ord
	ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
	RETURNING id, idempotency_key
)
SELECT NULL::bigint, id, NULL::text, NULL::text FROM ins WHERE idempotency_key IS NOT NULL
UNION ALL
SELECT i.ord, t.id, t.status, t.request_fingerprint
FROM input AS i
JOIN tests AS t ON t.owner = i.owner AND t.idempotency_key = i.idempotency_key
WHERE i.idempotency_key IS NOT NULL`

// pgx prepares each statement once per connection, and after a few
// executions PostgreSQL switches to a generic plan, made with the table
// sizes of that moment, and keeps it. On a young database (a few pages of
// tests) that plan scans or hashes the whole table, and then does so for
// every batch while the table grows by thousands of rows a second, until
// autovacuum happens to analyze it (measured: 1 to 25 ms per completion
// batch of a dozen tests a minute after start, against 0.1 to 0.4 ms).
// The transactions of the statements that read tests say how to plan them:

// beginCustomPlans plans insertKeyedSQL anew at each execution, with the
// batch's real length and the table's current size (a fraction of a
// millisecond per batch; the lookup of the keys has too many plans to pin).
const beginCustomPlans = `BEGIN; SET LOCAL plan_cache_mode = force_custom_plan`

// beginPinnedPlans leaves completeTestsSQL, beginAttemptsSQL and
// renewLeasesSQL one plan, right at every size: a probe of the primary key
// per test (a generic plan, made once). Its parts are separated by "; "
// (pinned sends them one by one).
const beginPinnedPlans = `BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off`

// batchStatement is a statement that selects a batch of tests by id, and
// the statement that begins its transaction (whose settings pin the plan):
// the two go together, and TestBatchStatementsProbeThePrimaryKey reads the
// plan of each pair.
type batchStatement struct{ begin, sql string }

var (
	completeTests = batchStatement{beginPinnedPlans, completeTestsSQL}
	// These two run on their own, through pinned (one round trip).
	beginAttempts = batchStatement{beginPinnedPlans, beginAttemptsSQL}
	renewLeases   = batchStatement{beginPinnedPlans, renewLeasesSQL}
)

// pinned runs st in its own transaction, sent as one pipeline: the begin
// statement's parts (BEGIN and each SET LOCAL), st.sql with args, and
// COMMIT go out together and their answers come back together, one round
// trip where a transaction would take three. (A statement planned at each
// execution instead needs no transaction, but its custom plan is the
// sequential scan too: with 50,000 tests and 500 ids the planner prices
// reading every page below 500 probes of the primary key.) read, when not
// nil, reads st's rows. An error leaves the transaction aborted and the
// pool closes that connection rather than reuse it.
func (s *Store) pinned(ctx context.Context, st batchStatement, args []any, read func(pgx.Rows) error) (pgconn.CommandTag, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	b := &pgx.Batch{}
	parts := strings.Split(st.begin, "; ")
	for _, part := range parts {
		b.Queue(part)
	}
	b.Queue(st.sql, args...)
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	for range parts {
		if _, err := br.Exec(); err != nil {
			return pgconn.CommandTag{}, Classify(err)
		}
	}
	var tag pgconn.CommandTag
	if read == nil {
		t, err := br.Exec()
		if err != nil {
			return pgconn.CommandTag{}, Classify(err)
		}
		tag = t
	} else {
		rows, err := br.Query()
		if err != nil {
			return pgconn.CommandTag{}, Classify(err)
		}
		err = read(rows)
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return pgconn.CommandTag{}, Classify(err)
		}
		tag = rows.CommandTag()
	}
	if _, err := br.Exec(); err != nil { // COMMIT
		return pgconn.CommandTag{}, Classify(err)
	}
	return tag, Classify(br.Close())
}

// idemKey identifies a test by its owner's idempotency key.
type idemKey struct{ owner, key string }

// InsertTests inserts the batch in one statement, so one transaction (one
// array per column, unnested by the server). Duplicates within the batch
// are resolved here; duplicates of earlier tests by the unique index on
// (owner, idempotency_key).
func (s *Store) InsertTests(ctx context.Context, tests []store.NewTest) ([]store.InsertResult, error) {
	if len(tests) == 0 {
		return []store.InsertResult{}, nil
	}
	results := make([]store.InsertResult, len(tests))
	// firstOf[i] is the index of the earlier test in the batch with the
	// same key, or i itself.
	firstOf := make([]int, len(tests))
	var seen map[idemKey]int
	sent := make([]int, 0, len(tests)) // indexes of the tests sent to the database
	keyed := false
	for i, t := range tests {
		firstOf[i] = i
		if t.IdempotencyKey != "" {
			if seen == nil {
				seen = make(map[idemKey]int)
			}
			k := idemKey{t.Owner, t.IdempotencyKey}
			if j, ok := seen[k]; ok {
				firstOf[i] = j
				continue
			}
			seen[k] = i
			keyed = true
		}
		sent = append(sent, i)
	}
	if keyed {
		// Keyed rows go in (owner, key) order (see insertKeyedSQL).
		slices.SortStableFunc(sent, func(a, b int) int {
			ta, tb := tests[a], tests[b]
			return cmp.Or(cmp.Compare(ta.Owner, tb.Owner), cmp.Compare(ta.IdempotencyKey, tb.IdempotencyKey))
		})
	}
	var (
		ids        = make([]string, len(sent))
		owners     = make([]string, len(sent))
		types      = make([]string, len(sent))
		sensorIDs  = make([]string, len(sent))
		requests   = make([][]byte, len(sent))
		keys       = make([]*string, len(sent))
		authModes  = make([]string, len(sent))
		leaseUntil = make([]time.Time, len(sent))
		prints     = make([]*string, len(sent))
		// storedFP[i] is the fingerprint stored with the test results[i]
		// names ("" for unknown), for the duplicates later in the batch.
		storedFP = make([]string, len(tests))
	)
	for j, i := range sent {
		t := &tests[i]
		ids[j], owners[j], types[j], sensorIDs[j] = t.ID, t.Owner, t.SensorType, t.SensorID
		requests[j], keys[j] = nullJSON(t.Request), nullString(t.IdempotencyKey)
		authModes[j], leaseUntil[j], prints[j] = t.AuthMode, t.LeaseUntil, nullString(t.Fingerprint)
		results[i] = store.InsertResult{ID: t.ID, Status: messages.StatusProcessing}
		storedFP[i] = t.Fingerprint
	}

	if !keyed {
		ctx, cancel := store.WithDefaultTimeout(ctx)
		defer cancel()
		if _, err := s.pool.Exec(ctx, insertUnkeyedSQL, ids, owners, types, sensorIDs, requests, authModes, leaseUntil); err != nil {
			return nil, fmt.Errorf("insert tests: %w", Classify(err))
		}
		return results, nil
	}
	err := s.inTx(ctx, beginCustomPlans, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, insertKeyedSQL, ids, owners, types, sensorIDs, requests, keys, authModes, leaseUntil, prints)
		if err != nil {
			return err
		}
		// settled[j]: sent test j was inserted, or found to be a duplicate.
		settled := make([]bool, len(sent))
		index := make(map[string]int, len(sent))
		for j, id := range ids {
			index[id] = j
		}
		var (
			ord        *int64
			id         string
			status, fp *string
		)
		_, err = pgx.ForEachRow(rows, []any{&ord, &id, &status, &fp}, func() error {
			if ord == nil { // a keyed test inserted
				j, ok := index[id]
				if !ok {
					return fmt.Errorf("insert returned id %q that was not sent", id)
				}
				settled[j] = true
				return nil
			}
			if *ord < 1 || *ord > int64(len(sent)) {
				return fmt.Errorf("insert returned ordinal %d for %d tests", *ord, len(sent))
			}
			settled[*ord-1] = true
			i := sent[*ord-1]
			results[i], storedFP[i] = duplicateOf(tests[i], id, deref(status), deref(fp))
			return nil
		})
		if err != nil {
			return err
		}
		var raced []int
		for j, i := range sent {
			if !settled[j] && tests[i].IdempotencyKey != "" {
				raced = append(raced, i)
			}
		}
		for _, i := range raced {
			t := tests[i]
			err := tx.QueryRow(ctx, `SELECT id, status, request_fingerprint FROM tests WHERE owner = $1 AND idempotency_key = $2`,
				t.Owner, t.IdempotencyKey).Scan(&id, &status, &fp)
			if err != nil {
				// Gone again (the other transaction rolled back after all):
				// the caller retries the whole batch.
				return fmt.Errorf("%w: idempotency key of test %d raced: %w", store.ErrRetry, i, err)
			}
			results[i], storedFP[i] = duplicateOf(t, id, deref(status), deref(fp))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert tests: %w", err)
	}
	for i, j := range firstOf {
		if j != i {
			results[i], _ = duplicateOf(tests[i], results[j].ID, results[j].Status, storedFP[j])
		}
	}
	return results, nil
}

// duplicateOf is the result of t when its key names the stored test id
// (with status and fingerprint), and that fingerprint.
func duplicateOf(t store.NewTest, id, status, storedFP string) (store.InsertResult, string) {
	return store.InsertResult{ID: id, Duplicate: true, Status: status,
		KeyReused: store.KeyReused(storedFP, t.Fingerprint)}, storedFP
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// GetTest returns store.ErrNotFound for an unknown id.
func (s *Store) GetTest(ctx context.Context, id string) (store.Test, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	t, err := scanTest(s.pool.QueryRow(ctx, `SELECT `+testColumns+` FROM tests WHERE id = $1`, id))
	if err != nil {
		return store.Test{}, fmt.Errorf("get test: %w", Classify(err))
	}
	return t, nil
}

// completeTestsSQL finishes a batch of tests in one statement: the arrays
// $1..$10 hold one completion per index (each test at most once). A test
// still processing gets its status, result, reason and completion time, and
// its event goes into the outbox, in the batch's order (so seqs follow it);
// a test no longer processing is left alone and writes no event. It returns
// the ordinals of the completions applied.
//
// The status test is written with COLLATE "C" (byte equality: the same
// answer) so that the planner cannot match it to the partial index
// tests_processing_lease, whose statistics lag behind the tests in flight:
// hashing every processing test for every batch was chosen with a dozen
// processing tests in the statistics and ran with 20,000 (measured: 150 to
// 300 ms per batch of 512, against about 20 ms through the primary key).
const completeTestsSQL = `
WITH c AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
	                     $7::text[], $8::bytea[], $9::text[], $10::text[])
		WITH ORDINALITY AS c(test_id, status, result, reason, at, event_id, subject, payload, sensor_id, traceparent, ord)
), upd AS (
	UPDATE tests AS t
	SET status = c.status, result = c.result::json, reason = c.reason, completed_at = c.at, updated_at = c.at
	FROM c
	WHERE t.id = c.test_id AND t.status = 'processing' COLLATE "C"
	RETURNING c.ord, c.test_id, c.event_id, c.subject, c.payload, c.sensor_id, c.traceparent, c.at
), ev AS (
	INSERT INTO outbox (event_id, test_id, subject, payload, sensor_id, traceparent, created_at)
	SELECT event_id, test_id, subject, payload, sensor_id, traceparent, at FROM upd ORDER BY ord
)
SELECT ord FROM upd`

// CompleteTests applies the batch in one transaction and one statement. A
// test completed twice in the batch is sent once: the first completion
// wins, as it would one statement after the other.
func (s *Store) CompleteTests(ctx context.Context, cs []store.Completion) ([]bool, error) {
	if err := store.ValidateCompletions(cs); err != nil {
		return nil, fmt.Errorf("complete tests: %w", err)
	}
	applied := make([]bool, len(cs))
	if len(cs) == 0 {
		return applied, nil
	}
	now := time.Now()
	sent := make([]int, 0, len(cs)) // indexes of the completions sent
	seen := make(map[string]struct{}, len(cs))
	for i, c := range cs {
		if _, dup := seen[c.TestID]; dup {
			continue
		}
		seen[c.TestID] = struct{}{}
		sent = append(sent, i)
	}
	var (
		testIDs  = make([]string, len(sent))
		statuses = make([]string, len(sent))
		results  = make([][]byte, len(sent))
		reasons  = make([]string, len(sent))
		ats      = make([]time.Time, len(sent))
		eventIDs = make([]string, len(sent))
		subjects = make([]string, len(sent))
		payloads = make([][]byte, len(sent))
		sensors  = make([]string, len(sent))
		parents  = make([]string, len(sent))
	)
	for j, i := range sent {
		c := &cs[i]
		at := c.At
		if at.IsZero() {
			at = now
		}
		testIDs[j], statuses[j], results[j], reasons[j], ats[j] = c.TestID, c.Status, nullJSON(c.Result), c.Reason, at
		eventIDs[j], subjects[j], payloads[j] = c.Event.EventID, c.Event.Subject, nonNil(c.Event.Payload)
		sensors[j], parents[j] = c.Event.SensorID, c.Event.Traceparent
	}
	err := s.inTx(ctx, completeTests.begin, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, completeTests.sql, testIDs, statuses, results, reasons, ats, eventIDs, subjects, payloads,
			sensors, parents)
		if err != nil {
			return err
		}
		var ord int64
		_, err = pgx.ForEachRow(rows, []any{&ord}, func() error {
			if ord < 1 || ord > int64(len(sent)) {
				return fmt.Errorf("completion returned ordinal %d for %d completions", ord, len(sent))
			}
			applied[sent[ord-1]] = true
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("complete tests: %w", err)
	}
	return applied, nil
}

// claimExpiredSQL claims expired tests; FOR UPDATE SKIP LOCKED makes
// concurrent claimers (other sensor processes) take disjoint rows, and the
// row lock re-checks the WHERE clause against a concurrent claim.
const claimExpiredSQL = `
UPDATE tests AS t
SET lease_until = $2, updated_at = $1
FROM (
	SELECT id FROM tests
	WHERE status = 'processing' AND lease_until < $1
	ORDER BY lease_until
	LIMIT $3
	FOR UPDATE SKIP LOCKED
) AS c
WHERE t.id = c.id
RETURNING t.id, t.owner, t.sensor_type, t.sensor_id, t.request, t.idempotency_key, t.auth_mode,
	t.status, t.attempts, t.lease_until, t.result, t.reason, t.created_at, t.updated_at, t.completed_at`

// ClaimExpired claims up to limit processing tests whose lease ended
// before now.
func (s *Store) ClaimExpired(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Test, error) {
	if limit <= 0 {
		return []store.Test{}, nil
	}
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, claimExpiredSQL, now, now.Add(lease), limit)
	if err != nil {
		return nil, fmt.Errorf("claim expired tests: %w", Classify(err))
	}
	tests, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Test, error) { return scanTest(row) })
	if err != nil {
		return nil, fmt.Errorf("claim expired tests: %w", Classify(err))
	}
	return tests, nil
}

// beginAttemptsSQL counts an attempt of each test still processing; the
// lease only ever moves forward. Two traps were measured here with a
// prepared statement's generic plan: with the plain status comparison, the
// generic plan of a young database walks the partial index
// tests_processing_lease, that is every test in flight, and filters each
// against the whole id array (20,000 tests processing and 1,000 ids:
// 334 ms, against 4.5 ms through the primary key); and a generic plan made
// while the table held a few hundred rows is a sequential scan of all of
// it, kept while the table grows (about 10 ms per call after 150,000
// tests, which made some runs at 5,000/s fall behind and stay behind). So
// the status test is written with COLLATE "C" (see completeTestsSQL), and
// the statement runs under beginPinnedPlans's settings (beginAttempts).
// renewLeasesSQL has the same traps.
const beginAttemptsSQL = `
UPDATE tests
SET attempts = attempts + 1, lease_until = GREATEST(lease_until, $2), updated_at = now()
WHERE id = ANY($1) AND status = 'processing' COLLATE "C"
RETURNING id, attempts`

// renewLeasesSQL moves the leases of the tests still processing forward
// (COLLATE "C": see beginAttemptsSQL).
const renewLeasesSQL = `
UPDATE tests SET lease_until = GREATEST(lease_until, $2)
WHERE id = ANY($1) AND status = 'processing' COLLATE "C"`

// BeginAttempts counts one processing attempt of each of ids still
// processing, and returns the new attempts per input (0: not processing).
func (s *Store) BeginAttempts(ctx context.Context, ids []string, until time.Time) ([]int, error) {
	out := make([]int, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	got := make(map[string]int, len(ids))
	var (
		id       string
		attempts int
	)
	_, err := s.pinned(ctx, beginAttempts, []any{ids, until}, func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&id, &attempts}, func() error {
			got[id] = attempts
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("begin attempts: %w", err)
	}
	for i, id := range ids {
		out[i] = got[id]
	}
	return out, nil
}

// RenewLeases extends the leases of the tests of ids still processing.
func (s *Store) RenewLeases(ctx context.Context, ids []string, until time.Time) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := s.pinned(ctx, renewLeases, []any{ids, until}, nil)
	if err != nil {
		return 0, fmt.Errorf("renew leases: %w", err)
	}
	return tag.RowsAffected(), nil
}

// CountTests returns the number of tests per status, with a zero for every
// known status that has none.
func (s *Store) CountTests(ctx context.Context) (map[string]int64, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM tests GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count tests: %w", Classify(err))
	}
	counts := make(map[string]int64, 3)
	for _, st := range store.Statuses() {
		counts[st] = 0
	}
	var (
		status string
		n      int64
	)
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		counts[status] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count tests: %w", Classify(err))
	}
	return counts, nil
}

func scanTest(row pgx.Row) (store.Test, error) {
	var (
		t        store.Test
		key      *string
		complete *time.Time
	)
	err := row.Scan(&t.ID, &t.Owner, &t.SensorType, &t.SensorID, &t.Request, &key, &t.AuthMode,
		&t.Status, &t.Attempts, &t.LeaseUntil, &t.Result, &t.Reason, &t.CreatedAt, &t.UpdatedAt, &complete)
	if err != nil {
		return store.Test{}, err
	}
	if key != nil {
		t.IdempotencyKey = *key
	}
	if complete != nil {
		c := complete.UTC()
		t.CompletedAt = &c
	}
	t.LeaseUntil = t.LeaseUntil.UTC()
	t.CreatedAt = t.CreatedAt.UTC()
	t.UpdatedAt = t.UpdatedAt.UTC()
	return t, nil
}
