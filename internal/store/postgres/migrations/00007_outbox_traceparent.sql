-- +goose Up
-- The W3C traceparent of the span that wrote the event, so that the outbox
-- relay continues the submission's trace (and hands it to the bridge in the
-- event's NATS headers). Empty while tracing is off, and on rows written
-- before this column (or by an older sensor role during an upgrade): the
-- relay then publishes them untraced, as before.
ALTER TABLE outbox ADD COLUMN traceparent text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE outbox DROP COLUMN traceparent;
