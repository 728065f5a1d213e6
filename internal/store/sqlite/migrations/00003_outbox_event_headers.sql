-- +goose Up
-- What the outbox relay puts in the event's NATS headers, so that the bridge
-- relays without reading the payload: the sensor id (the Kafka key) and the
-- event type. Rows written before these columns have them empty; the relay
-- reads those two from the row's payload instead (see the PostgreSQL
-- migration of the same name for why there is no backfill).
ALTER TABLE outbox ADD COLUMN sensor_id TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN event_type TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE outbox DROP COLUMN event_type;
ALTER TABLE outbox DROP COLUMN sensor_id;
