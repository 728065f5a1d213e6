-- +goose Up
-- What a keyed submission asked for (hex SHA-256); NULL on older rows and on
-- unkeyed tests, which compares as a match. See the PostgreSQL migration of
-- the same name.
ALTER TABLE tests ADD COLUMN request_fingerprint TEXT;

-- +goose Down
ALTER TABLE tests DROP COLUMN request_fingerprint;
