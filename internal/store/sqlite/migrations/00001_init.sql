-- +goose Up
-- Times are INTEGER unix microseconds (UTC), the precision PostgreSQL keeps,
-- so both dialects round trip the same values. Tables are STRICT so a wrong
-- type is an error, not a silent conversion.
CREATE TABLE users (
    username      TEXT    NOT NULL PRIMARY KEY,
    password_hash BLOB    NOT NULL,
    roles         TEXT    NOT NULL DEFAULT '[]', -- JSON array of strings
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE tests (
    id              TEXT    NOT NULL PRIMARY KEY,
    owner           TEXT    NOT NULL,
    sensor_type     TEXT    NOT NULL,
    sensor_id       TEXT    NOT NULL,
    request         BLOB,
    idempotency_key TEXT,
    auth_mode       TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL DEFAULT 'processing'
                    CHECK (status IN ('processing', 'completed', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER NOT NULL,
    result          BLOB,
    reason          TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    completed_at    INTEGER
) STRICT;

CREATE UNIQUE INDEX tests_owner_idempotency_key
    ON tests (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE INDEX tests_processing_lease
    ON tests (lease_until) WHERE status = 'processing';

-- AUTOINCREMENT: a seq is never reused, even after the table was emptied.
CREATE TABLE outbox (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT    NOT NULL UNIQUE,
    test_id    TEXT    NOT NULL REFERENCES tests (id),
    subject    TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE outbox;
DROP TABLE tests;
DROP TABLE users;
