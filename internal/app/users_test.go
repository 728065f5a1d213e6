package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sensorhub/actors/auth"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

func TestCheckNewUser(t *testing.T) {
	cases := []struct {
		name, username, password string
		refused                  string // "" for accepted; else a part of the message
	}{
		{"good", "alice", "a long secret", ""},
		{"ten characters", "alice", "0123456789", ""},
		{"ten characters, more bytes", "alice", "äöüäöüäöüä", ""},
		{"72 bytes", "alice", strings.Repeat("p", 72), ""},
		{"nine characters", "alice", "012345678", "shorter than 10 characters"},
		{"nine characters, ten bytes", "alice", "äbcdefghi", "shorter than 10 characters"},
		{"the seed's password", "admin", DefaultPassword, "seed's default password"},
		{"empty password", "alice", "", "password is required"},
		{"73 bytes", "alice", strings.Repeat("p", 73), "longer than 72 bytes"},
		{"not UTF-8", "alice", "0123456789\xff", "not UTF-8"},
		{"dot in the name", "alice.smith", "a long secret", "only letters"},
		{"wildcard in the name", "a>", "a long secret", "only letters"},
		{"empty name", "", "a long secret", "1 to 64"},
		{"long name", strings.Repeat("u", 65), "a long secret", "1 to 64"},
		{"role name", "sensor", "a long secret", "reserved"},
		{"system account", "SYS", "a long secret", "reserved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckNewUser(tc.username, tc.password)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("err = %v, want ErrRefused saying %q", err, tc.refused)
			}
		})
	}
}

// dialectURLs returns a fresh database of each kind.
func dialectURLs(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "users.db"),
		"postgres": testenv.Postgres(t),
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The password's flag is recorded as the user is saved: true only for the
// seed's password, which only dev sets (ensureDevAdmin), and the auth
// role's check then finds it.
func TestSavedUsersCarryTheDefaultPasswordFlag(t *testing.T) {
	for name, url := range dialectURLs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // bcrypt at the production cost, under -race
			ctx := t.Context()
			created, err := AddUser(ctx, UserConfig{DatabaseURL: url, Username: "alice", Password: "a long secret", Roles: []string{"user"}}, quietLogger())
			if err != nil || !created {
				t.Fatalf("AddUser = %v, %v; want created", created, err)
			}
			created, err = AddUser(ctx, UserConfig{DatabaseURL: url, Username: "alice", Password: "another long one", Roles: []string{"ops"}, Disabled: true}, quietLogger())
			if err != nil || created {
				t.Fatalf("AddUser again = %v, %v; want updated", created, err)
			}
			st, err := OpenStore(ctx, url, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := ensureDevAdmin(ctx, st, quietLogger()); err != nil {
				t.Fatal(err)
			}
			for _, want := range []struct {
				name, password string
				roles          []string
				disabled       bool
				isDefault      bool
			}{
				{"alice", "another long one", []string{"ops"}, true, false},
				{"admin", DefaultPassword, []string{messages.RoleAdmin}, false, true},
			} {
				u, err := st.GetUser(ctx, want.name)
				if err != nil {
					t.Fatal(err)
				}
				if u.DefaultPassword == nil || *u.DefaultPassword != want.isDefault {
					t.Errorf("%s: DefaultPassword = %v, want %v", want.name, u.DefaultPassword, want.isDefault)
				}
				if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(want.password)) != nil ||
					strings.Join(u.Roles, ",") != strings.Join(want.roles, ",") || u.Disabled != want.disabled {
					t.Errorf("%s: stored %v roles %v disabled %v", want.name, u.PasswordHash, u.Roles, u.Disabled)
				}
			}
			err = auth.RefuseDefaultPassword(ctx, st)
			if !errors.Is(err, auth.ErrDefaultPassword) || !strings.Contains(err.Error(), ": admin (") {
				t.Fatalf("RefuseDefaultPassword = %v, want admin named", err)
			}
		})
	}
}

// AddUser refuses before it opens the database: nothing is written, not
// even the schema.
func TestAddUserRefusesBeforeTouchingTheDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "never.db")
	_, err := AddUser(t.Context(), UserConfig{DatabaseURL: "sqlite:" + path, Username: "admin", Password: DefaultPassword}, quietLogger())
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want ErrRefused", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the refused user add created the database file")
	}
}

func TestSetUserDisabledAndDeleteUnknownUser(t *testing.T) {
	for name, url := range dialectURLs(t) {
		t.Run(name, func(t *testing.T) {
			if err := SetUserDisabled(t.Context(), url, "ghost", true, quietLogger()); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `"ghost"`) {
				t.Errorf("SetUserDisabled(ghost) = %v, want not found naming it", err)
			}
			if err := DeleteUser(t.Context(), url, "ghost", quietLogger()); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `"ghost"`) {
				t.Errorf("DeleteUser(ghost) = %v, want not found naming it", err)
			}
		})
	}
}

func TestWriteUsers(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	users := []store.User{
		{Username: "alice", PasswordHash: []byte("secret-hash"), Roles: []string{"admin", "ops"}, CreatedAt: at, UpdatedAt: at.Add(time.Hour)},
		{Username: "b", Roles: []string{}, Disabled: true, CreatedAt: at, UpdatedAt: at},
		// An account from before messages.ValidUsername.
		{Username: "evil\n\x1b[31mname", Roles: []string{"a,b", "x y"}, CreatedAt: at, UpdatedAt: at},
	}
	var table bytes.Buffer
	if err := WriteUsersTable(&table, users); err != nil {
		t.Fatal(err)
	}
	want := `USERNAME              ROLES        DISABLED  CREATED               UPDATED
alice                 admin,ops    no        2026-01-02T03:04:05Z  2026-01-02T04:04:05Z
b                     -            yes       2026-01-02T03:04:05Z  2026-01-02T03:04:05Z
"evil\n\x1b[31mname"  "a,b","x y"  no        2026-01-02T03:04:05Z  2026-01-02T03:04:05Z
`
	if table.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", table.String(), want)
	}

	var js bytes.Buffer
	if err := WriteUsersJSON(&js, users); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), "secret-hash") || strings.Contains(js.String(), "password") {
		t.Fatalf("JSON shows the password hash: %s", js.String())
	}
	var got []UserListing
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Username != "alice" || strings.Join(got[0].Roles, ",") != "admin,ops" || !got[0].UpdatedAt.Equal(at.Add(time.Hour)) ||
		!got[1].Disabled || got[1].Roles == nil || got[2].Username != users[2].Username {
		t.Fatalf("JSON = %+v", got)
	}
	js.Reset()
	if err := WriteUsersJSON(&js, nil); err != nil || strings.TrimSpace(js.String()) != "[]" {
		t.Fatalf("no users: %q, %v; want []", js.String(), err)
	}
}
