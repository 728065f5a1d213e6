-- +goose Up
-- Whether password_hash is a hash of the seed's default password (0 or 1),
-- as the writer of the hash knew (it had the plain password). NULL for rows
-- written before this column: the auth role checks those once with bcrypt
-- and records the answer, so that its start-up check is one query on the
-- flags instead of a bcrypt round per user.
ALTER TABLE users ADD COLUMN default_password INTEGER CHECK (default_password IN (0, 1));

-- The start-up check's queries; partial, so each stays as small as its answer.
CREATE INDEX users_default_password ON users (username)
    WHERE default_password = 1 AND disabled = 0;
CREATE INDEX users_unchecked_password ON users (username)
    WHERE default_password IS NULL;

-- +goose Down
DROP INDEX users_unchecked_password;
DROP INDEX users_default_password;
ALTER TABLE users DROP COLUMN default_password;
