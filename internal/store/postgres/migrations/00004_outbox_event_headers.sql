-- +goose Up
-- What the outbox relay puts in the event's NATS headers, so that the bridge
-- relays without reading the payload: the sensor id (the Kafka key) and the
-- event type. Rows written before these columns (or by a sensor role of an
-- older version during a rolling upgrade) have them empty; the relay reads
-- those two from the row's payload instead. No backfill here: a payload the
-- migration could not parse would stop the upgrade, the relay only that row.
ALTER TABLE outbox
    ADD COLUMN sensor_id  text NOT NULL DEFAULT '',
    ADD COLUMN event_type text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE outbox DROP COLUMN event_type, DROP COLUMN sensor_id;
