package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"sensorhub/internal/store"
)

const userColumns = `username, password_hash, roles, disabled, default_password, created_at, updated_at`

// UpsertUser creates the user or replaces its hash, roles, disabled and
// default-password flags; created_at is kept on update. One statement: a
// row the INSERT wrote itself has xmax 0, a row ON CONFLICT updated has
// the updating transaction's id there, which is how created is told.
func (s *Store) UpsertUser(ctx context.Context, u store.User) (created bool, err error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	err = s.pool.QueryRow(ctx, `
		INSERT INTO users (username, password_hash, roles, disabled, default_password, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, now(), now())
		ON CONFLICT (username) DO UPDATE
		SET password_hash = excluded.password_hash,
		    roles = excluded.roles,
		    disabled = excluded.disabled,
		    default_password = excluded.default_password,
		    updated_at = now()
		RETURNING xmax = 0`,
		u.Username, nonNil(u.PasswordHash), nonNilRoles(u.Roles), u.Disabled, u.DefaultPassword).Scan(&created)
	if err != nil {
		return false, fmt.Errorf("upsert user: %w", Classify(err))
	}
	return created, nil
}

// GetUser returns store.ErrNotFound for an unknown username.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
	if err != nil {
		return store.User{}, fmt.Errorf("get user: %w", Classify(err))
	}
	return u, nil
}

// ListUsers returns every user in byte order of username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return s.queryUsers(ctx, "list users", `SELECT `+userColumns+` FROM users ORDER BY username COLLATE "C"`)
}

// SetUserDisabled sets the disabled flag; store.ErrNotFound for an unknown
// username.
func (s *Store) SetUserDisabled(ctx context.Context, username string, disabled bool) error {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE users SET disabled = $2, updated_at = now() WHERE username = $1`, username, disabled)
	if err != nil {
		return fmt.Errorf("set user disabled: %w", Classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set user disabled: user %q: %w", username, store.ErrNotFound)
	}
	return nil
}

// DeleteUser deletes the user; store.ErrNotFound for an unknown username.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE username = $1`, username)
	if err != nil {
		return fmt.Errorf("delete user: %w", Classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete user: user %q: %w", username, store.ErrNotFound)
	}
	return nil
}

// ListDefaultPasswordUsers returns the enabled users flagged with the
// default password, from the partial index users_default_password.
func (s *Store) ListDefaultPasswordUsers(ctx context.Context) ([]string, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		SELECT username FROM users
		WHERE default_password AND NOT disabled
		ORDER BY username COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list default-password users: %w", Classify(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list default-password users: %w", Classify(err))
	}
	if names == nil {
		names = []string{}
	}
	return names, nil
}

// ListUncheckedPasswords returns the users whose default-password flag is
// unknown.
func (s *Store) ListUncheckedPasswords(ctx context.Context) ([]store.User, error) {
	return s.queryUsers(ctx, "list unchecked passwords",
		`SELECT `+userColumns+` FROM users WHERE default_password IS NULL ORDER BY username COLLATE "C"`)
}

// RecordDefaultPassword sets the flag if the hash is still hash.
func (s *Store) RecordDefaultPassword(ctx context.Context, username string, hash []byte, isDefault bool) (bool, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE users SET default_password = $3 WHERE username = $1 AND password_hash = $2`,
		username, nonNil(hash), isDefault)
	if err != nil {
		return false, fmt.Errorf("record default password: %w", Classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

func (s *Store) queryUsers(ctx context.Context, what, query string) ([]store.User, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, Classify(err))
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.User, error) { return scanUser(row) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, Classify(err))
	}
	if users == nil {
		users = []store.User{}
	}
	return users, nil
}

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	if err := row.Scan(&u.Username, &u.PasswordHash, &u.Roles, &u.Disabled, &u.DefaultPassword, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return store.User{}, err
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	u.CreatedAt = u.CreatedAt.UTC()
	u.UpdatedAt = u.UpdatedAt.UTC()
	return u, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func nonNilRoles(r []string) []string {
	if r == nil {
		return []string{}
	}
	return r
}

// nullJSON stores an empty JSON document as NULL (an empty string is not
// valid json). The documents of a batch travel as the elements of a text[]
// that the server casts to json; pgx sends a nil []byte element as NULL.
func nullJSON(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// nullString stores "" as NULL.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
