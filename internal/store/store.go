// Package store owns sensorhub's system of record: users, sensor tests and
// the outbox of events not yet relayed to JetStream. It defines the Store
// interface and its two implementations, postgres (pgx v5) and sqlite
// (modernc, the embedded default), which pass one shared conformance suite
// (storetest). Migrations are embedded and applied at start under a lock.
//
// It must not know about NATS, actors or HTTP; callers classify its errors
// with errors.Is(err, ErrUnavailable) and friends.
package store

import (
	"context"
	"time"
)

// DefaultTimeout bounds a store call whose context has no deadline (it also
// bounds the wait for a pooled connection).
const DefaultTimeout = 5 * time.Second

// User is an account that can log in.
type User struct {
	Username     string
	PasswordHash []byte // bcrypt
	Roles        []string
	Disabled     bool
	// DefaultPassword says whether PasswordHash is a hash of the seed's
	// default password, as the caller that hashed it knew (it had the
	// plain password). nil means unknown: a row written before the flag
	// existed, or by a caller that did not say. It lets the production
	// roles refuse to start while a user has that password without a
	// bcrypt round per user.
	DefaultPassword *bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// NewTest is a test to insert with status "processing".
type NewTest struct {
	ID             string // UUIDv7, chosen by the caller
	Owner          string
	SensorType     string
	SensorID       string
	Request        []byte // JSON of the normalized submission (never the token)
	IdempotencyKey string // "" for none; unique per owner
	// Fingerprint identifies what the submission asks for
	// (messages.SubmitTest.Fingerprint); "" for unknown. It is stored with
	// keyed tests only, where it tells a retry from a reused key.
	Fingerprint string
	AuthMode    string // online or fallback
	LeaseUntil  time.Time
}

// InsertResult is the outcome of one NewTest of a batch.
type InsertResult struct {
	ID        string // the new id, or the earlier test's id on a duplicate key
	Duplicate bool   // an earlier test of this owner had the same idempotency key
	// Status is the test's status when the batch committed: "processing"
	// for a new test, the earlier test's current status for a duplicate.
	Status string
	// KeyReused marks a duplicate whose earlier test has another
	// fingerprint: the key was used again for a different submission. A
	// fingerprint that is unknown on either side (a row written before the
	// store kept them, or a caller that gave none) never counts as
	// reused: such a duplicate is answered as before, with the earlier id.
	KeyReused bool
}

// Test is a stored test.
type Test struct {
	ID             string
	Owner          string
	SensorType     string
	SensorID       string
	Request        []byte
	IdempotencyKey string
	AuthMode       string
	Status         string // processing, completed or failed
	Attempts       int
	LeaseUntil     time.Time
	Result         []byte // JSON of the evaluation; nil while processing
	Reason         string // why it failed
	CreatedAt      time.Time
	UpdatedAt      time.Time
	CompletedAt    *time.Time
}

// OutboxEvent is an event written in the same transaction as its test's
// completion.
type OutboxEvent struct {
	EventID string
	Subject string
	Payload []byte
	// SensorID travels as a NATS header, so that the bridge keys the Kafka
	// record without reading Payload (the type is Subject's last token).
	SensorID string
	// Traceparent is the W3C traceparent of the span that wrote the event
	// (its test's completion), so that the relay continues the
	// submission's trace; "" when untraced.
	Traceparent string
}

// Completion finishes one test: status, result and its event, all or nothing.
type Completion struct {
	TestID string
	Status string // completed or failed
	Result []byte
	Reason string
	Event  OutboxEvent
	At     time.Time
	// Accepted is when the test was accepted (its CreatedAt), for the
	// completion latency the role reports; the stores ignore it.
	Accepted time.Time
}

// OutboxRow is an event waiting to be published to JetStream.
type OutboxRow struct {
	Seq     int64 // increasing; publish in this order
	EventID string
	Subject string
	Payload []byte
	// SensorID is as written; it is empty on a row written before the
	// store kept it (read it from Payload then).
	SensorID string
	// TestID is the test the event finishes.
	TestID string
	// CreatedAt is when the event was written: its test's completion time
	// (Completion.At).
	CreatedAt time.Time
	// Traceparent is as written (OutboxEvent.Traceparent); "" when
	// untraced, and on a row written before the store kept it.
	Traceparent string
}

// Store is the system of record. Every method honours ctx; a context with no
// deadline gets DefaultTimeout. Errors wrap ErrUnavailable when the database
// cannot be reached (the caller answers 503), ErrNotFound for a missing row,
// ErrConflict for a constraint violation; anything else is a bug or bad input.
type Store interface {
	// Dialect is "postgres" or "sqlite".
	Dialect() string
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections.
	Close() error

	// UpsertUser creates the user or replaces its hash, roles, disabled
	// flag and DefaultPassword flag (nil stores unknown); created_at is
	// kept and updated_at set. created reports whether the user is new. It
	// is one atomic write: of concurrent upserts of one new username,
	// exactly one reports created.
	UpsertUser(ctx context.Context, u User) (created bool, err error)
	// GetUser returns ErrNotFound for an unknown username.
	GetUser(ctx context.Context, username string) (User, error)
	// ListUsers returns every user, ordered by username (byte order).
	ListUsers(ctx context.Context) ([]User, error)
	// SetUserDisabled sets the disabled flag of one user and its
	// updated_at; setting the flag it already has is no error. ErrNotFound
	// for an unknown username.
	SetUserDisabled(ctx context.Context, username string, disabled bool) error
	// DeleteUser deletes one user; ErrNotFound for an unknown username.
	// Its tests are kept: they are records, readable by admins.
	DeleteUser(ctx context.Context, username string) error
	// ListDefaultPasswordUsers returns the usernames of the enabled users
	// whose DefaultPassword flag is true, ordered by username. It reads
	// the flags only (one indexed query, no hash compared); users whose
	// flag is unknown are not in it (see ListUncheckedPasswords).
	ListDefaultPasswordUsers(ctx context.Context) ([]string, error)
	// ListUncheckedPasswords returns the users whose DefaultPassword flag
	// is unknown (nil), enabled or not, ordered by username.
	ListUncheckedPasswords(ctx context.Context) ([]User, error)
	// RecordDefaultPassword sets the DefaultPassword flag of username to
	// isDefault if its hash is still hash, and reports whether it did: a
	// password set since the hash was read has its own flag, and an
	// unknown user is no error (recorded false). updated_at is left alone:
	// the flag describes the hash, it is no change to the account.
	RecordDefaultPassword(ctx context.Context, username string, hash []byte, isDefault bool) (recorded bool, err error)

	// InsertTests inserts a batch in ONE transaction (group commit) and
	// returns one result per input, in order. A test whose (owner,
	// idempotency key) already exists, in the database or earlier in the
	// same batch, is not inserted: its result carries the earlier id,
	// Duplicate=true, the earlier test's status, and KeyReused when the two
	// fingerprints are both known and differ.
	InsertTests(ctx context.Context, tests []NewTest) ([]InsertResult, error)
	// GetTest returns ErrNotFound for an unknown id.
	GetTest(ctx context.Context, id string) (Test, error)
	// CompleteTests applies a batch in ONE transaction: each test still
	// "processing" gets its status, result, reason and completed_at, and its
	// event goes into the outbox. A test no longer processing (already
	// finished by another worker) is left alone, its event is not written,
	// and its entry in applied is false.
	CompleteTests(ctx context.Context, cs []Completion) (applied []bool, err error)
	// ClaimExpired claims up to limit tests still "processing" whose lease
	// ended before now: it sets lease_until = now+lease and returns them.
	// Attempts is left alone: a claim is no processing attempt (a test may
	// have waited in a queue of a process that died), BeginAttempts counts
	// those. Concurrent claimers never get the same test (FOR UPDATE SKIP
	// LOCKED on postgres).
	ClaimExpired(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Test, error)
	// BeginAttempts records, in ONE statement, that processing starts on
	// each of ids still "processing": attempts+1, and lease_until moved to
	// until (never earlier than it was). It returns one entry per input, in
	// order: the test's new attempts, or 0 for an id that is not processing
	// (finished by another process, or unknown). Being durable before the
	// processing starts, an attempt that crashes the whole process still
	// counts, so that a poison input ends "failed" after N.
	BeginAttempts(ctx context.Context, ids []string, until time.Time) ([]int, error)
	// RenewLeases moves lease_until to until (never earlier than it was)
	// for each of ids still "processing", in ONE statement, and returns how
	// many it renewed; attempts and updated_at are left alone. A process
	// renews the tests it holds, so that only the tests of a process that
	// is gone reach ClaimExpired.
	RenewLeases(ctx context.Context, ids []string, until time.Time) (int64, error)
	// CountTests returns the number of tests per status.
	CountTests(ctx context.Context) (map[string]int64, error)

	// OutboxPending returns up to limit outbox rows in Seq order.
	OutboxPending(ctx context.Context, limit int) ([]OutboxRow, error)
	// DeleteOutbox deletes the rows with these seqs (after their PubAck).
	DeleteOutbox(ctx context.Context, seqs []int64) error
	// OutboxBacklog counts the outbox rows.
	OutboxBacklog(ctx context.Context) (int64, error)
}
