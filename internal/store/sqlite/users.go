package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"sensorhub/internal/store"
)

const userColumns = `username, password_hash, roles, disabled, default_password, created_at, updated_at`

// UpsertUser creates the user or replaces its hash, roles, disabled and
// default-password flags; created_at is kept on update. The insert and the
// update run in one transaction on the single writer, so exactly one of
// concurrent upserts of a new name creates it.
func (s *Store) UpsertUser(ctx context.Context, u store.User) (created bool, err error) {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	rolesJSON, err := json.Marshal(roles)
	if err != nil {
		return false, fmt.Errorf("upsert user: encode roles: %w", err)
	}
	hash := u.PasswordHash
	if hash == nil {
		hash = []byte{}
	}
	var flag any // NULL: unknown
	if u.DefaultPassword != nil {
		flag = *u.DefaultPassword
	}
	now := micros(time.Now())
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO users (username, password_hash, roles, disabled, default_password, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (username) DO NOTHING`,
			u.Username, hash, string(rolesJSON), u.Disabled, flag, now, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			created = true
			return nil
		}
		_, err = tx.ExecContext(ctx, `
			UPDATE users
			SET password_hash = ?, roles = ?, disabled = ?, default_password = ?, updated_at = ?
			WHERE username = ?`,
			hash, string(rolesJSON), u.Disabled, flag, now, u.Username)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("upsert user: %w", err)
	}
	return created, nil
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
	return s.queryUsers(ctx, "list users", `SELECT `+userColumns+` FROM users ORDER BY username`)
}

// SetUserDisabled sets the disabled flag; store.ErrNotFound for an unknown
// username.
func (s *Store) SetUserDisabled(ctx context.Context, username string, disabled bool) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ?, updated_at = ? WHERE username = ?`,
			disabled, micros(time.Now()), username)
		return oneRow(res, err, username)
	})
	if err != nil {
		return fmt.Errorf("set user disabled: %w", err)
	}
	return nil
}

// DeleteUser deletes the user; store.ErrNotFound for an unknown username.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE username = ?`, username)
		return oneRow(res, err, username)
	})
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// oneRow turns a statement that changed no row into store.ErrNotFound.
func oneRow(res sql.Result, err error, username string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("user %q: %w", username, store.ErrNotFound)
	}
	return nil
}

// ListDefaultPasswordUsers returns the enabled users flagged with the
// default password, from the partial index users_default_password.
func (s *Store) ListDefaultPasswordUsers(ctx context.Context) ([]string, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.r.QueryContext(ctx, `
		SELECT username FROM users
		WHERE default_password = 1 AND disabled = 0
		ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list default-password users: %w", classify(ctx, err))
	}
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list default-password users: %w", classify(ctx, err))
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list default-password users: %w", classify(ctx, err))
	}
	return names, nil
}

// ListUncheckedPasswords returns the users whose default-password flag is
// unknown.
func (s *Store) ListUncheckedPasswords(ctx context.Context) ([]store.User, error) {
	return s.queryUsers(ctx, "list unchecked passwords",
		`SELECT `+userColumns+` FROM users WHERE default_password IS NULL ORDER BY username`)
}

// RecordDefaultPassword sets the flag if the hash is still hash.
func (s *Store) RecordDefaultPassword(ctx context.Context, username string, hash []byte, isDefault bool) (bool, error) {
	if hash == nil {
		hash = []byte{}
	}
	var recorded bool
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET default_password = ? WHERE username = ? AND password_hash = ?`,
			isDefault, username, hash)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		recorded = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record default password: %w", err)
	}
	return recorded, nil
}

func (s *Store) queryUsers(ctx context.Context, what, query string) ([]store.User, error) {
	ctx, cancel := store.WithDefaultTimeout(ctx)
	defer cancel()
	rows, err := s.r.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, classify(ctx, err))
	}
	defer rows.Close()
	users := []store.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, classify(ctx, err))
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, classify(ctx, err))
	}
	return users, nil
}

func scanUser(row scanner) (store.User, error) {
	var (
		u                store.User
		roles            string
		flag             sql.NullBool
		created, updated int64
	)
	if err := row.Scan(&u.Username, &u.PasswordHash, &roles, &u.Disabled, &flag, &created, &updated); err != nil {
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
	if flag.Valid {
		u.DefaultPassword = &flag.Bool
	}
	u.CreatedAt = fromMicros(created)
	u.UpdatedAt = fromMicros(updated)
	return u, nil
}
