package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"sensorhub/internal/store"
)

const testColumns = `id, owner, sensor_type, sensor_id, request, idempotency_key, auth_mode,
	status, attempts, lease_until, result, reason, created_at, updated_at, completed_at`

// insertTestSQL inserts one test unless its (owner, idempotency key) exists
// and returns (id, duplicate). When another transaction commits the same key
// while this statement waits, the statement's snapshot cannot see that row
// and it returns no row at all; InsertTests then looks the id up again.
const insertTestSQL = `
WITH ins AS (
	INSERT INTO tests (id, owner, sensor_type, sensor_id, request, idempotency_key, auth_mode,
	                   status, attempts, lease_until, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, 'processing', 0, $8, now(), now())
	ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
	RETURNING id
)
SELECT id, false FROM ins
UNION ALL
SELECT id, true FROM tests
WHERE $6::text IS NOT NULL AND owner = $2 AND idempotency_key = $6::text
  AND NOT EXISTS (SELECT 1 FROM ins)`

// idemKey identifies a test by its owner's idempotency key.
type idemKey struct{ owner, key string }

// InsertTests inserts the batch in one transaction; the rows cost one round
// trip (a pipelined pgx.Batch of one statement per distinct test). Duplicates within
// the batch are resolved here; duplicates of earlier tests by the unique
// index on (owner, idempotency_key).
func (s *Store) InsertTests(ctx context.Context, tests []store.NewTest) ([]store.InsertResult, error) {
	if len(tests) == 0 {
		return []store.InsertResult{}, nil
	}
	results := make([]store.InsertResult, len(tests))
	// firstOf[i] is the index of the earlier test in the batch with the
	// same key, or i itself.
	firstOf := make([]int, len(tests))
	seen := make(map[idemKey]int, len(tests))
	var sent []int // indexes of the tests sent to the database
	for i, t := range tests {
		firstOf[i] = i
		if t.IdempotencyKey != "" {
			k := idemKey{t.Owner, t.IdempotencyKey}
			if j, ok := seen[k]; ok {
				firstOf[i] = j
				continue
			}
			seen[k] = i
		}
		sent = append(sent, i)
	}
	// Keyed rows go in (owner, key) order, so two transactions inserting
	// overlapping keys wait on each other in the same order instead of
	// deadlocking.
	slices.SortStableFunc(sent, func(a, b int) int {
		ta, tb := tests[a], tests[b]
		return cmp.Or(cmp.Compare(ta.Owner, tb.Owner), cmp.Compare(ta.IdempotencyKey, tb.IdempotencyKey))
	})

	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, i := range sent {
			t := tests[i]
			batch.Queue(insertTestSQL, t.ID, t.Owner, t.SensorType, t.SensorID, nullBytes(t.Request),
				nullString(t.IdempotencyKey), t.AuthMode, t.LeaseUntil)
		}
		br := tx.SendBatch(ctx, batch)
		var raced []int
		for _, i := range sent {
			var r store.InsertResult
			err := br.QueryRow().Scan(&r.ID, &r.Duplicate)
			if errors.Is(err, pgx.ErrNoRows) {
				raced = append(raced, i)
				continue
			}
			if err != nil {
				_ = br.Close()
				return fmt.Errorf("test %d: %w", i, err)
			}
			results[i] = r
		}
		if err := br.Close(); err != nil {
			return err
		}
		for _, i := range raced {
			t := tests[i]
			err := tx.QueryRow(ctx, `SELECT id FROM tests WHERE owner = $1 AND idempotency_key = $2`,
				t.Owner, t.IdempotencyKey).Scan(&results[i].ID)
			if err != nil {
				// Gone again (the other transaction rolled back after all):
				// the caller retries the whole batch.
				return fmt.Errorf("%w: idempotency key of test %d raced: %w", store.ErrRetry, i, err)
			}
			results[i].Duplicate = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert tests: %w", err)
	}
	for i, j := range firstOf {
		if j != i {
			results[i] = store.InsertResult{ID: results[j].ID, Duplicate: true}
		}
	}
	return results, nil
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

// completeTestSQL finishes one test if it is still processing and writes its
// event in the same statement; it returns 1 when applied, else 0.
const completeTestSQL = `
WITH upd AS (
	UPDATE tests
	SET status = $2, result = $3, reason = $4, completed_at = $5, updated_at = $5
	WHERE id = $1 AND status = 'processing'
	RETURNING id
), ev AS (
	INSERT INTO outbox (event_id, test_id, subject, payload, created_at)
	SELECT $6, id, $7, $8, $5 FROM upd
)
SELECT count(*) FROM upd`

// CompleteTests applies the batch in one transaction and one round trip.
func (s *Store) CompleteTests(ctx context.Context, cs []store.Completion) ([]bool, error) {
	if err := validateCompletions(cs); err != nil {
		return nil, fmt.Errorf("complete tests: %w", err)
	}
	applied := make([]bool, len(cs))
	if len(cs) == 0 {
		return applied, nil
	}
	now := time.Now()
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, c := range cs {
			at := c.At
			if at.IsZero() {
				at = now
			}
			batch.Queue(completeTestSQL, c.TestID, c.Status, nullBytes(c.Result), c.Reason, at,
				c.Event.EventID, c.Event.Subject, nonNil(c.Event.Payload))
		}
		br := tx.SendBatch(ctx, batch)
		for i := range cs {
			var n int64
			if err := br.QueryRow().Scan(&n); err != nil {
				_ = br.Close()
				return fmt.Errorf("completion %d: %w", i, err)
			}
			applied[i] = n == 1
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("complete tests: %w", err)
	}
	return applied, nil
}

// validateCompletions refuses a batch with a completion that could only be
// our bug, before it touches the database.
func validateCompletions(cs []store.Completion) error {
	for _, c := range cs {
		if err := store.ValidateCompletion(c); err != nil {
			return err
		}
	}
	return nil
}

// claimExpiredSQL claims expired tests; FOR UPDATE SKIP LOCKED makes
// concurrent claimers (other sensor processes) take disjoint rows, and the
// row lock re-checks the WHERE clause against a concurrent claim.
const claimExpiredSQL = `
UPDATE tests AS t
SET lease_until = $2, attempts = t.attempts + 1, updated_at = $1
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
