-- +goose Up
CREATE TABLE users (
    username      text        PRIMARY KEY,
    password_hash bytea       NOT NULL,
    roles         text[]      NOT NULL DEFAULT '{}',
    disabled      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- id is text, not uuid: a malformed id from a client must be "not found",
-- not an invalid_text_representation error.
-- request and result are json (not jsonb) so the bytes round trip unchanged.
CREATE TABLE tests (
    id              text        PRIMARY KEY,
    owner           text        NOT NULL,
    sensor_type     text        NOT NULL,
    sensor_id       text        NOT NULL,
    request         json,
    idempotency_key text,
    auth_mode       text        NOT NULL DEFAULT '',
    status          text        NOT NULL DEFAULT 'processing'
                    CHECK (status IN ('processing', 'completed', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    lease_until     timestamptz NOT NULL,
    result          json,
    reason          text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);

-- An empty idempotency key is stored as NULL: only real keys are unique.
CREATE UNIQUE INDEX tests_owner_idempotency_key
    ON tests (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The sweeper's scan: processing tests whose lease ended. Partial, so it
-- stays as small as the number of tests in flight.
CREATE INDEX tests_processing_lease
    ON tests (lease_until) WHERE status = 'processing';

CREATE TABLE outbox (
    seq        bigserial   PRIMARY KEY,
    event_id   text        NOT NULL UNIQUE,
    test_id    text        NOT NULL REFERENCES tests (id),
    subject    text        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE outbox;
DROP TABLE tests;
DROP TABLE users;
