package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"sensorhub/internal/store"
)

const userColumns = `username, password_hash, roles, disabled, created_at, updated_at`

// UpsertUser creates the user or replaces its hash, roles and disabled flag;
// created_at is kept on update.
func (s *Store) UpsertUser(ctx context.Context, u store.User) error {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	rolesJSON, err := json.Marshal(roles)
	if err != nil {
		return fmt.Errorf("upsert user: encode roles: %w", err)
	}
	hash := u.PasswordHash
	if hash == nil {
		hash = []byte{}
	}
	now := micros(time.Now())
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO users (username, password_hash, roles, disabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (username) DO UPDATE
			SET password_hash = excluded.password_hash,
			    roles = excluded.roles,
			    disabled = excluded.disabled,
			    updated_at = excluded.updated_at`,
			u.Username, hash, string(rolesJSON), u.Disabled, now, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("upsert user: %w", err)
	}
	return nil
}

// GetUser returns store.ErrNotFound for an unknown username.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if err != nil {
		return store.User{}, fmt.Errorf("get user: %w", classify(ctx, err))
	}
	return u, nil
}

// ListUsers returns every user in byte order of username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", classify(ctx, err))
	}
	defer rows.Close()
	users := []store.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", classify(ctx, err))
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", classify(ctx, err))
	}
	return users, nil
}

func scanUser(row scanner) (store.User, error) {
	var (
		u                store.User
		roles            string
		created, updated int64
	)
	if err := row.Scan(&u.Username, &u.PasswordHash, &roles, &u.Disabled, &created, &updated); err != nil {
		return store.User{}, err
	}
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return store.User{}, fmt.Errorf("decode roles of %q: %w", u.Username, err)
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	if u.PasswordHash == nil {
		u.PasswordHash = []byte{}
	}
	u.CreatedAt = fromMicros(created)
	u.UpdatedAt = fromMicros(updated)
	return u, nil
}
