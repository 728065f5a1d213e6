package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"sensorhub/internal/app"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
)

// sh runs one sensorhub command line through run, as main does (exit code,
// error printing and all).
func sh(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// dialects are the databases the user commands are tested on.
var dialects = []string{"sqlite", "postgres"}

// freshDatabase returns the URL of a new, empty database of dialect.
func freshDatabase(t *testing.T, dialect string) string {
	t.Helper()
	if dialect == "postgres" {
		return testenv.Postgres(t)
	}
	return "sqlite:" + filepath.Join(t.TempDir(), "users.db")
}

func openStore(t *testing.T, url string) store.Store {
	t.Helper()
	st, err := app.OpenStore(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// `user add` refuses bad names and weak passwords with exit 1 and the
// reason, and writes nothing.
func TestUserAddRefusesBadInput(t *testing.T) {
	cases := []struct {
		name, username, password, want string
	}{
		{"short password", "alice", "123456789", "shorter than 10 characters"},
		{"seed's password", "admin", "admin123", "seed's default password"},
		{"no password", "alice", "", "password is required"},
		{"dot in the name", "alice.smith", "a long secret", "only letters A-Z"},
		{"space in the name", "alice smith", "a long secret", "only letters A-Z"},
		{"NATS wildcard", "alice>", "a long secret", "only letters A-Z"},
		{"non-ASCII name", "älg", "a long secret", "only letters A-Z"},
		{"long name", strings.Repeat("a", 65), "a long secret", "1 to 64"},
		{"role name", "auth", "a long secret", "reserved"},
		{"role name, other case", "Bridge", "a long secret", "reserved"},
		{"edge role", "edge", "a long secret", "reserved"},
		{"sys", "sys", "a long secret", "reserved"},
	}
	for _, db := range dialects {
		url := freshDatabase(t, db)
		for _, tc := range cases {
			t.Run(db+"/"+tc.name, func(t *testing.T) {
				code, out, errs := sh(t, tc.password+"\n", "user", "add", "--username", tc.username, "--password-stdin", "--database-url", url)
				if code != 1 || !strings.Contains(errs, tc.want) || out != "" {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 saying %q", code, out, errs, tc.want)
				}
			})
		}
		t.Run(db+"/nothing written", func(t *testing.T) {
			if users, err := openStore(t, url).ListUsers(t.Context()); err != nil || len(users) != 0 {
				t.Fatalf("users after refusals: %v, %v", users, err)
			}
		})
	}
}

// `user add` says whether it created or updated, and an update replaces
// the password, the roles and the disabled flag.
func TestUserAddCreatesThenUpdates(t *testing.T) {
	for _, db := range dialects {
		t.Run(db, func(t *testing.T) {
			url := freshDatabase(t, db)
			steps := []struct {
				password, roles string
				disabled        bool
				want            string
			}{
				{"first secret!", "admin, ops", false, "created user alice\n"},
				{"second secret", "user", true, "updated user alice\n"},
			}
			for _, s := range steps {
				args := []string{"user", "add", "--username", "alice", "--password-stdin", "--roles", s.roles, "--database-url", url}
				if s.disabled {
					args = append(args, "--disabled")
				}
				code, out, errs := sh(t, s.password+"\n", args...)
				if code != 0 || out != s.want {
					t.Fatalf("user add: exit %d, stdout %q (want %q), stderr %q", code, out, s.want, errs)
				}
			}
			u, err := openStore(t, url).GetUser(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("second secret")) != nil ||
				strings.Join(u.Roles, ",") != "user" || !u.Disabled || u.DefaultPassword == nil || *u.DefaultPassword {
				t.Fatalf("after the update: roles %v, disabled %v, default flag %v", u.Roles, u.Disabled, u.DefaultPassword)
			}
		})
	}
}

// timestamp matches a time in `user list`'s table.
const timestamp = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`

// `user list` prints a stable table (header, one user a line, ordered by
// name) or JSON, and `disable`, `enable` and `delete` change what it shows;
// an unknown name is exit 1 with the name, a missing one exit 2.
func TestUserListDisableEnableDelete(t *testing.T) {
	for _, db := range dialects {
		t.Run(db, func(t *testing.T) {
			url := freshDatabase(t, db)
			for _, u := range []struct{ name, roles string }{{"carol", "user"}, {"Bob", "admin,ops"}, {"alice", "user"}} {
				if code, _, errs := sh(t, "a long secret\n", "user", "add", "--username", u.name, "--password-stdin", "--roles", u.roles, "--database-url", url); code != 0 {
					t.Fatalf("user add %s: %s", u.name, errs)
				}
			}
			wantTable(t, url, "Bob admin,ops no", "alice user no", "carol user no")

			steps := []struct {
				args     []string
				code     int
				out, err string
				table    []string // the table after the step; nil: unchanged
			}{
				{[]string{"disable", "alice"}, 0, "disabled user alice\n", "", []string{"Bob admin,ops no", "alice user yes", "carol user no"}},
				{[]string{"disable", "alice"}, 0, "disabled user alice\n", "", nil},
				{[]string{"enable", "alice"}, 0, "enabled user alice\n", "", []string{"Bob admin,ops no", "alice user no", "carol user no"}},
				{[]string{"delete", "Bob"}, 0, "deleted user Bob\n", "", []string{"alice user no", "carol user no"}},
				{[]string{"delete", "Bob"}, 1, "", `user "Bob" not found`, nil},
				{[]string{"disable", "bob"}, 1, "", `user "bob" not found`, nil},
				{[]string{"enable", "nobody"}, 1, "", `user "nobody" not found`, nil},
				{[]string{"delete"}, 2, "", "give the NAME", nil},
				{[]string{"disable", "alice", "carol"}, 2, "", "unexpected arguments", nil},
			}
			for _, s := range steps {
				args := append([]string{"user"}, s.args...)
				args = append(args, "--database-url", url) // flags after the name
				code, out, errs := sh(t, "", args...)
				if code != s.code || out != s.out || !strings.Contains(errs, s.err) {
					t.Fatalf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q", s.args, code, out, errs, s.code, s.out, s.err)
				}
				if s.table != nil {
					wantTable(t, url, s.table...)
				}
			}

			// Flags before the name work too, and so does the environment.
			t.Setenv(EnvName("database-url"), url)
			if code, out, errs := sh(t, "", "user", "disable", "--log-format", "json", "carol"); code != 0 || out != "disabled user carol\n" {
				t.Fatalf("flags before the name: exit %d, %q, %q", code, out, errs)
			}
			code, out, errs := sh(t, "", "user", "list", "--json")
			if code != 0 {
				t.Fatalf("user list --json: exit %d: %s", code, errs)
			}
			var got []app.UserListing
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("user list --json is not JSON: %v\n%s", err, out)
			}
			if len(got) != 2 || got[0].Username != "alice" || got[0].Disabled || got[1].Username != "carol" || !got[1].Disabled ||
				strings.Join(got[1].Roles, ",") != "user" || got[1].CreatedAt.IsZero() || got[1].UpdatedAt.Before(got[1].CreatedAt) {
				t.Fatalf("user list --json = %+v", got)
			}
			if strings.Contains(out, "$2a$") || strings.Contains(out, "hash") {
				t.Fatalf("user list --json shows password hashes:\n%s", out)
			}
		})
	}
}

// wantTable runs `user list` and checks its table: the header, then one
// "name roles disabled" line per user in order, with two timestamps each.
func wantTable(t *testing.T, url string, rows ...string) {
	t.Helper()
	code, out, errs := sh(t, "", "user", "list", "--database-url", url)
	if code != 0 {
		t.Fatalf("user list: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(rows)+1 || !regexp.MustCompile(`^USERNAME +ROLES +DISABLED +CREATED +UPDATED$`).MatchString(lines[0]) {
		t.Fatalf("user list:\n%s\nwant a header and %d rows", out, len(rows))
	}
	for i, want := range rows {
		f := strings.Fields(want)
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(f[0]) + ` +` + regexp.QuoteMeta(f[1]) + ` +` + f[2] + ` +` + timestamp + ` +` + timestamp + `$`)
		if !re.MatchString(lines[i+1]) {
			t.Fatalf("user list row %d = %q, want %q and two times\n%s", i+1, lines[i+1], want, out)
		}
	}
}

// `user`, `user --help` and every `user <verb> --help` explain themselves;
// each verb's help names every flag with its variable.
func TestEveryUserSubcommandHasHelp(t *testing.T) {
	code, out, _ := sh(t, "", "user", "--help")
	if code != 0 {
		t.Fatalf("user --help: exit %d", code)
	}
	for _, v := range userVerbs() {
		if !strings.Contains(out, "  "+strings.TrimSpace(v.name+" "+v.operand)+" ") {
			t.Errorf("user --help does not list %s:\n%s", v.name, out)
		}
		var o, errb bytes.Buffer
		err := commands()["user"].run(context.Background(), []string{v.name, "--help"}, env{stdout: &o, stderr: &errb, getenv: func(string) string { return "" }})
		if !errors.Is(err, errHelp) {
			t.Errorf("user %s --help: %v", v.name, err)
			continue
		}
		fs, _ := v.flags()
		n := 0
		fs.VisitAll(func(f *flag.Flag) {
			n++
			if !strings.Contains(errb.String(), "--"+f.Name+" ["+EnvName(f.Name)+"]") {
				t.Errorf("user %s --help does not show --%s [%s]", v.name, f.Name, EnvName(f.Name))
			}
		})
		if n < 2 || !strings.Contains(errb.String(), "Usage: sensorhub user "+v.name) {
			t.Errorf("user %s --help:\n%s", v.name, errb.String())
		}
	}
	if code, _, errs := sh(t, "", "user"); code != 2 || !strings.Contains(errs, "Subcommands:") {
		t.Errorf("user without a subcommand: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := sh(t, "", "user", "remove"); code != 2 || !strings.Contains(errs, `unknown subcommand "remove"`) {
		t.Errorf("user remove: exit %d, stderr %q", code, errs)
	}
}
