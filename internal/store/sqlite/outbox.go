package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"sensorhub/internal/store"
)

// OutboxPending returns up to limit outbox rows in seq order.
func (s *Store) OutboxPending(ctx context.Context, limit int) ([]store.OutboxRow, error) {
	if limit <= 0 {
		return []store.OutboxRow{}, nil
	}
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.r.QueryContext(ctx,
		`SELECT seq, event_id, subject, payload, sensor_id, test_id, created_at, traceparent FROM outbox ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", classify(ctx, err))
	}
	defer rows.Close()
	out := []store.OutboxRow{}
	for rows.Next() {
		var (
			r       store.OutboxRow
			created int64
		)
		if err := rows.Scan(&r.Seq, &r.EventID, &r.Subject, &r.Payload, &r.SensorID, &r.TestID, &created, &r.Traceparent); err != nil {
			return nil, fmt.Errorf("list outbox: %w", classify(ctx, err))
		}
		r.CreatedAt = fromMicros(created)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list outbox: %w", classify(ctx, err))
	}
	return out, nil
}

// DeleteOutbox deletes the rows with these seqs; unknown seqs are ignored.
func (s *Store) DeleteOutbox(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		del, err := tx.PrepareContext(ctx, `DELETE FROM outbox WHERE seq = ?`)
		if err != nil {
			return err
		}
		defer del.Close()
		for _, seq := range seqs {
			if _, err := del.ExecContext(ctx, seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete outbox: %w", err)
	}
	return nil
}

// OutboxBacklog counts the outbox rows.
func (s *Store) OutboxBacklog(ctx context.Context) (int64, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox: %w", classify(ctx, err))
	}
	return n, nil
}
