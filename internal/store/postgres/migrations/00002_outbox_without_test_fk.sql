-- +goose Up
-- An outbox row is only ever inserted by the statement that finishes its test
-- (CompleteTests inserts it from the rows its UPDATE returned), and tests are
-- never deleted, so the row always names a stored test. The foreign key made
-- every event cost one more query: a lookup of tests per row, whose plan
-- PostgreSQL caches per connection with the table size of its first use (a
-- sequential scan on a young database, kept while the table grows).
ALTER TABLE outbox DROP CONSTRAINT outbox_test_id_fkey;

-- +goose Down
ALTER TABLE outbox ADD CONSTRAINT outbox_test_id_fkey FOREIGN KEY (test_id) REFERENCES tests (id);
