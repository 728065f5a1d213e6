package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"sensorhub/actors/auth"
	"sensorhub/internal/store"
	"sensorhub/messages"
)

// UserConfig describes a user to create or update.
type UserConfig struct {
	DatabaseURL string
	Username    string
	Password    string
	Roles       []string
	Disabled    bool
}

// DefaultPassword is the seed's admin password: only `dev` creates it, and
// the auth role refuses to start while a user still has it.
const DefaultPassword = auth.DefaultPassword

// MinPasswordLen is the fewest characters (not bytes) `user add` accepts in
// a password. bcrypt reads at most messages.MaxPasswordLen bytes.
const MinPasswordLen = 10

// BcryptCost is the cost of stored password hashes.
const BcryptCost = bcrypt.DefaultCost

// ErrRefused means a user command refused its input; nothing was written.
var ErrRefused = errors.New("refused")

// CheckNewUser refuses what `user add` must not store: a username that
// messages.ValidUsername refuses, and a password that is the seed's default,
// shorter than MinPasswordLen characters, longer than bcrypt reads, or not
// UTF-8 (a login could never send it). The error wraps ErrRefused.
func CheckNewUser(username, password string) error {
	if err := messages.ValidUsername(username); err != nil {
		return fmt.Errorf("%w: %s", ErrRefused, messages.AsError(err).Message)
	}
	switch {
	case password == "":
		return fmt.Errorf("%w: a password is required (--password-stdin, or --password)", ErrRefused)
	case password == DefaultPassword:
		return fmt.Errorf("%w: %q is the seed's default password; only `sensorhub dev` uses it, and the production roles refuse to start while a user has it", ErrRefused, DefaultPassword)
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: the password is not UTF-8, so a login could not send it", ErrRefused)
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return fmt.Errorf("%w: the password is shorter than %d characters", ErrRefused, MinPasswordLen)
	case len(password) > messages.MaxPasswordLen:
		return fmt.Errorf("%w: the password is longer than %d bytes (bcrypt's limit)", ErrRefused, messages.MaxPasswordLen)
	}
	return nil
}

// AddUser creates or updates a user with a bcrypt hash of its password,
// after CheckNewUser, and reports whether the user is new.
func AddUser(ctx context.Context, cfg UserConfig, logger *slog.Logger) (created bool, err error) {
	if err := CheckNewUser(cfg.Username, cfg.Password); err != nil {
		return false, err
	}
	st, err := OpenStore(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return false, err
	}
	defer st.Close()
	created, err = saveUser(ctx, st, cfg.Username, cfg.Password, cfg.Roles, cfg.Disabled)
	if err != nil {
		return false, err
	}
	logger.Info("user saved", "username", cfg.Username, "created", created, "roles", strings.Join(cfg.Roles, ","), "disabled", cfg.Disabled)
	return created, nil
}

// upsertUser is saveUser for a caller that does not ask whether the user
// is new (dev's admin).
func upsertUser(ctx context.Context, st store.Store, username, password string, roles []string, disabled bool) error {
	_, err := saveUser(ctx, st, username, password, roles, disabled)
	return err
}

// saveUser hashes password and stores the user, with the flag that says
// whether the password is the default one (recorded now, while the plain
// password is at hand, so that the auth role's start-up check needs no
// bcrypt round per user). It applies no password policy: dev uses it for
// admin/admin123.
func saveUser(ctx context.Context, st store.Store, username, password string, roles []string, disabled bool) (created bool, err error) {
	isDefault := password == DefaultPassword
	cost := BcryptCost
	if isDefault {
		// The seed's password is printed in the README: no hash cost
		// protects it, and the production roles refuse to start while a
		// user has it. The cheapest hash keeps dev's logins and NATS
		// connects fast (each connect through the callout is a check).
		cost = bcrypt.MinCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return false, fmt.Errorf("hash password: %w", err)
	}
	if len(roles) == 0 {
		roles = []string{"user"}
	}
	created, err = st.UpsertUser(ctx, store.User{Username: username, PasswordHash: hash, Roles: roles, Disabled: disabled, DefaultPassword: &isDefault})
	if err != nil {
		return false, fmt.Errorf("save user %s: %w", username, err)
	}
	return created, nil
}

// ListUsers returns every user, ordered by username.
func ListUsers(ctx context.Context, databaseURL string, logger *slog.Logger) ([]store.User, error) {
	st, err := OpenStore(ctx, databaseURL, logger)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	users, err := st.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// SetUserDisabled disables or enables a user. An unknown username is an
// error wrapping store.ErrNotFound. The user's tokens are refused (or
// accepted again) within the validation cache's TTL.
func SetUserDisabled(ctx context.Context, databaseURL, username string, disabled bool, logger *slog.Logger) error {
	st, err := OpenStore(ctx, databaseURL, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SetUserDisabled(ctx, username, disabled); err != nil {
		return userError(username, err)
	}
	logger.Info("user saved", "username", username, "disabled", disabled)
	return nil
}

// DeleteUser deletes a user (its tests are kept). An unknown username is an
// error wrapping store.ErrNotFound.
func DeleteUser(ctx context.Context, databaseURL, username string, logger *slog.Logger) error {
	st, err := OpenStore(ctx, databaseURL, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DeleteUser(ctx, username); err != nil {
		return userError(username, err)
	}
	logger.Info("user deleted", "username", username)
	return nil
}

func userError(username string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %q %w", username, store.ErrNotFound)
	}
	return err
}

// UserListing is one user as `user list --json` prints it (never the hash).
type UserListing struct {
	Username  string    `json:"username"`
	Roles     []string  `json:"roles"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WriteUsersJSON writes users as one JSON array (empty: []).
func WriteUsersJSON(w io.Writer, users []store.User) error {
	out := make([]UserListing, 0, len(users))
	for _, u := range users {
		roles := u.Roles
		if roles == nil {
			roles = []string{}
		}
		out = append(out, UserListing{Username: u.Username, Roles: roles, Disabled: u.Disabled, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteUsersTable writes users as an aligned table with a header line, one
// user per line in the order given, times in UTC to the second. Roles are
// comma-separated ("-" for none). A name or role with a space, a control
// character, a comma or invalid UTF-8 (possible in accounts created before
// messages.ValidUsername) is printed quoted, so that it can neither break
// the columns nor send escape sequences to the terminal.
func WriteUsersTable(w io.Writer, users []store.User) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tROLES\tDISABLED\tCREATED\tUPDATED")
	for _, u := range users {
		roles := make([]string, len(u.Roles))
		for i, r := range u.Roles {
			roles[i] = cell(r)
		}
		rolesCell := strings.Join(roles, ",")
		if rolesCell == "" {
			rolesCell = "-"
		}
		disabled := "no"
		if u.Disabled {
			disabled = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cell(u.Username), rolesCell, disabled,
			u.CreatedAt.UTC().Format(time.RFC3339), u.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// cell returns s, or s quoted if it could break a table cell.
func cell(s string) string {
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return r == ',' || r == '"' || !unicode.IsPrint(r) || unicode.IsSpace(r)
	}) {
		return strconv.Quote(s)
	}
	return s
}
