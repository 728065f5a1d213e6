package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"sensorhub/internal/store"
)

// OutboxPending returns up to limit outbox rows in seq order. A seq is taken
// at insert and rows become visible at commit, so a lower seq can appear
// after a higher one was returned: the relay publishes at least once with
// the event id as dedup key, not in strict seq order across transactions.
func (s *Store) OutboxPending(ctx context.Context, limit int) ([]store.OutboxRow, error) {
	if limit <= 0 {
		return []store.OutboxRow{}, nil
	}
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx,
		`SELECT seq, event_id, subject, payload, sensor_id, test_id, created_at, traceparent FROM outbox ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", Classify(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.OutboxRow, error) {
		var r store.OutboxRow
		err := row.Scan(&r.Seq, &r.EventID, &r.Subject, &r.Payload, &r.SensorID, &r.TestID, &r.CreatedAt, &r.Traceparent)
		r.CreatedAt = r.CreatedAt.UTC()
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", Classify(err))
	}
	return out, nil
}

// DeleteOutbox deletes the rows with these seqs; unknown seqs are ignored.
func (s *Store) DeleteOutbox(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE seq = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("delete outbox: %w", Classify(err))
	}
	return nil
}

// OutboxBacklog counts the outbox rows.
func (s *Store) OutboxBacklog(ctx context.Context) (int64, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox: %w", Classify(err))
	}
	return n, nil
}
