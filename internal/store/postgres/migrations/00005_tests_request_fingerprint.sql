-- +goose Up
-- What a keyed submission asked for (messages.SubmitTest.Fingerprint, hex
-- SHA-256), so that a retry under the same idempotency key is told from the
-- key reused for another body (422 idempotency_key_reused). NULL on rows
-- written before it and on unkeyed tests: unknown, which compares as a match
-- (the earlier id is returned, as before). No backfill: the old rows' request
-- JSON would have to be decoded exactly as the sensor role does.
ALTER TABLE tests ADD COLUMN request_fingerprint text;

-- +goose Down
ALTER TABLE tests DROP COLUMN request_fingerprint;
