package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"sensorhub/internal/store"
	"sensorhub/messages"
)

const testColumns = `id, owner, sensor_type, sensor_id, request, idempotency_key, auth_mode,
	status, attempts, lease_until, result, reason, created_at, updated_at, completed_at`

// idemKey identifies a test by its owner's idempotency key.
type idemKey struct{ owner, key string }

// InsertTests inserts the batch in one IMMEDIATE transaction. Statements
// are prepared once per batch; SQLite runs in-process, so a statement per
// row costs no round trip.
func (s *Store) InsertTests(ctx context.Context, tests []store.NewTest) ([]store.InsertResult, error) {
	results := make([]store.InsertResult, len(tests))
	if len(tests) == 0 {
		return results, nil
	}
	now := micros(time.Now())
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		lookup, err := tx.PrepareContext(ctx, `SELECT id, status, request_fingerprint FROM tests WHERE owner = ? AND idempotency_key = ?`)
		if err != nil {
			return err
		}
		defer lookup.Close()
		insert, err := tx.PrepareContext(ctx, `
			INSERT INTO tests (id, owner, sensor_type, sensor_id, request, idempotency_key, auth_mode,
			                   status, attempts, lease_until, created_at, updated_at, request_fingerprint)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'processing', 0, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insert.Close()
		// seen holds, per key met in the batch, the test it names: its
		// id, status and stored fingerprint.
		seen := make(map[idemKey]keyedTest, len(tests))
		for i, t := range tests {
			if t.IdempotencyKey != "" {
				k := idemKey{t.Owner, t.IdempotencyKey}
				if kt, ok := seen[k]; ok {
					results[i] = kt.duplicate(t)
					continue
				}
				var (
					kt keyedTest
					fp sql.NullString
				)
				err := lookup.QueryRowContext(ctx, t.Owner, t.IdempotencyKey).Scan(&kt.id, &kt.status, &fp)
				switch {
				case err == nil:
					kt.fingerprint = fp.String
					results[i] = kt.duplicate(t)
					seen[k] = kt
					continue
				case !errors.Is(err, sql.ErrNoRows):
					return fmt.Errorf("test %d: %w", i, err)
				}
				seen[k] = keyedTest{id: t.ID, status: messages.StatusProcessing, fingerprint: t.Fingerprint}
			}
			// The fingerprint is kept with keyed tests only: it serves
			// nothing else.
			var fp any
			if t.IdempotencyKey != "" {
				fp = nullString(t.Fingerprint)
			}
			_, err := insert.ExecContext(ctx, t.ID, t.Owner, t.SensorType, t.SensorID, nullBytes(t.Request),
				nullString(t.IdempotencyKey), t.AuthMode, micros(t.LeaseUntil), now, now, fp)
			if err != nil {
				return fmt.Errorf("test %d: %w", i, err)
			}
			results[i] = store.InsertResult{ID: t.ID, Status: messages.StatusProcessing}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert tests: %w", err)
	}
	return results, nil
}

// keyedTest is the stored test an idempotency key names.
type keyedTest struct{ id, status, fingerprint string }

// duplicate is the result of t, whose key names kt.
func (kt keyedTest) duplicate(t store.NewTest) store.InsertResult {
	return store.InsertResult{ID: kt.id, Duplicate: true, Status: kt.status,
		KeyReused: store.KeyReused(kt.fingerprint, t.Fingerprint)}
}

// GetTest returns store.ErrNotFound for an unknown id.
func (s *Store) GetTest(ctx context.Context, id string) (store.Test, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	t, err := scanTest(s.r.QueryRowContext(ctx, `SELECT `+testColumns+` FROM tests WHERE id = ?`, id))
	if err != nil {
		return store.Test{}, fmt.Errorf("get test: %w", classify(ctx, err))
	}
	return t, nil
}

// CompleteTests applies the batch in one IMMEDIATE transaction.
func (s *Store) CompleteTests(ctx context.Context, cs []store.Completion) ([]bool, error) {
	if err := store.ValidateCompletions(cs); err != nil {
		return nil, fmt.Errorf("complete tests: %w", err)
	}
	applied := make([]bool, len(cs))
	if len(cs) == 0 {
		return applied, nil
	}
	now := time.Now()
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		update, err := tx.PrepareContext(ctx, `
			UPDATE tests
			SET status = ?, result = ?, reason = ?, completed_at = ?, updated_at = ?
			WHERE id = ? AND status = 'processing'`)
		if err != nil {
			return err
		}
		defer update.Close()
		event, err := tx.PrepareContext(ctx, `
			INSERT INTO outbox (event_id, test_id, subject, payload, sensor_id, traceparent, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer event.Close()
		for i, c := range cs {
			at := c.At
			if at.IsZero() {
				at = now
			}
			res, err := update.ExecContext(ctx, c.Status, nullBytes(c.Result), c.Reason, micros(at), micros(at), c.TestID)
			if err != nil {
				return fmt.Errorf("completion %d: %w", i, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("completion %d: %w", i, err)
			}
			if n == 0 {
				continue
			}
			payload := c.Event.Payload
			if payload == nil {
				payload = []byte{}
			}
			if _, err := event.ExecContext(ctx, c.Event.EventID, c.TestID, c.Event.Subject, payload,
				c.Event.SensorID, c.Event.Traceparent, micros(at)); err != nil {
				return fmt.Errorf("completion %d: %w", i, err)
			}
			applied[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("complete tests: %w", err)
	}
	return applied, nil
}

// ClaimExpired claims up to limit processing tests whose lease ended before
// now, in one statement on the writer: the single writer connection makes
// concurrent claims in this process take turns.
func (s *Store) ClaimExpired(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Test, error) {
	if limit <= 0 {
		return []store.Test{}, nil
	}
	claimed := []store.Test{}
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			UPDATE tests
			SET lease_until = ?, updated_at = ?
			WHERE id IN (
				SELECT id FROM tests
				WHERE status = 'processing' AND lease_until < ?
				ORDER BY lease_until
				LIMIT ?
			)
			RETURNING `+testColumns,
			micros(now.Add(lease)), micros(now), micros(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTest(rows)
			if err != nil {
				return err
			}
			claimed = append(claimed, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim expired tests: %w", err)
	}
	return claimed, nil
}

// BeginAttempts counts one processing attempt of each of ids still
// processing, in one statement on the writer (the ids travel as one JSON
// array, so a batch of any size is one bound parameter).
func (s *Store) BeginAttempts(ctx context.Context, ids []string, until time.Time) ([]int, error) {
	out := make([]int, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("begin attempts: %w", err)
	}
	got := make(map[string]int, len(ids))
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			UPDATE tests
			SET attempts = attempts + 1, lease_until = MAX(lease_until, ?), updated_at = ?
			WHERE id IN (SELECT value FROM json_each(?)) AND status = 'processing'
			RETURNING id, attempts`,
			micros(until), micros(time.Now()), string(list))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id       string
				attempts int
			)
			if err := rows.Scan(&id, &attempts); err != nil {
				return err
			}
			got[id] = attempts
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("begin attempts: %w", err)
	}
	for i, id := range ids {
		out[i] = got[id]
	}
	return out, nil
}

// RenewLeases extends the leases of the tests of ids still processing, in
// one statement on the writer.
func (s *Store) RenewLeases(ctx context.Context, ids []string, until time.Time) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return 0, fmt.Errorf("renew leases: %w", err)
	}
	var n int64
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE tests SET lease_until = MAX(lease_until, ?)
			WHERE id IN (SELECT value FROM json_each(?)) AND status = 'processing'`,
			micros(until), string(list))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("renew leases: %w", err)
	}
	return n, nil
}

// CountTests returns the number of tests per status, with a zero for every
// known status that has none.
func (s *Store) CountTests(ctx context.Context) (map[string]int64, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.r.QueryContext(ctx, `SELECT status, count(*) FROM tests GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count tests: %w", classify(ctx, err))
	}
	defer rows.Close()
	counts := make(map[string]int64, 3)
	for _, st := range store.Statuses() {
		counts[st] = 0
	}
	for rows.Next() {
		var (
			status string
			n      int64
		)
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("count tests: %w", classify(ctx, err))
		}
		counts[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tests: %w", classify(ctx, err))
	}
	return counts, nil
}

func scanTest(row scanner) (store.Test, error) {
	var (
		t                       store.Test
		key                     sql.NullString
		lease, created, updated int64
		completed               sql.NullInt64
	)
	err := row.Scan(&t.ID, &t.Owner, &t.SensorType, &t.SensorID, &t.Request, &key, &t.AuthMode,
		&t.Status, &t.Attempts, &lease, &t.Result, &t.Reason, &created, &updated, &completed)
	if err != nil {
		return store.Test{}, err
	}
	t.IdempotencyKey = key.String
	t.LeaseUntil = fromMicros(lease)
	t.CreatedAt = fromMicros(created)
	t.UpdatedAt = fromMicros(updated)
	if completed.Valid {
		c := fromMicros(completed.Int64)
		t.CompletedAt = &c
	}
	return t, nil
}
