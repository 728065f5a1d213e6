package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"sensorhub/internal/store"
)

const userColumns = `username, password_hash, roles, disabled, created_at, updated_at`

// UpsertUser creates the user or replaces its hash, roles and disabled flag;
// created_at is kept on update.
func (s *Store) UpsertUser(ctx context.Context, u store.User) error {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `
		INSERT INTO users (username, password_hash, roles, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, now(), now())
		ON CONFLICT (username) DO UPDATE
		SET password_hash = excluded.password_hash,
		    roles = excluded.roles,
		    disabled = excluded.disabled,
		    updated_at = now()`,
		u.Username, nonNil(u.PasswordHash), nonNilRoles(u.Roles), u.Disabled)
	if err != nil {
		return fmt.Errorf("upsert user: %w", Classify(err))
	}
	return nil
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
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", Classify(err))
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.User, error) { return scanUser(row) })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", Classify(err))
	}
	return users, nil
}

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	if err := row.Scan(&u.Username, &u.PasswordHash, &u.Roles, &u.Disabled, &u.CreatedAt, &u.UpdatedAt); err != nil {
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
