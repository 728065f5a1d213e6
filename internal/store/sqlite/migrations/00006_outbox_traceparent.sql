-- +goose Up
-- The W3C traceparent of the span that wrote the event, so that the outbox
-- relay continues the submission's trace (see the PostgreSQL migration of
-- the same name). Empty while tracing is off and on older rows.
ALTER TABLE outbox ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE outbox DROP COLUMN traceparent;
