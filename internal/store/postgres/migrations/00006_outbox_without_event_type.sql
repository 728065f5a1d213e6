-- +goose Up
-- The bridge takes an event's type from its subject's last token (completed
-- or failed), which the row already holds, so the outbox no longer keeps it
-- apart (migration 00004 added it; nothing writes or reads it now).
ALTER TABLE outbox DROP COLUMN event_type;

-- +goose Down
ALTER TABLE outbox ADD COLUMN event_type text NOT NULL DEFAULT '';
