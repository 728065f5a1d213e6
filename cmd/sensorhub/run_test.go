package main

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sensorhub/actors/auth"
	"sensorhub/internal/app"
	"sensorhub/internal/edge"
	"sensorhub/internal/natsx"
	"sensorhub/internal/store"
	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

func runCmd(t *testing.T, stdin string, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cmd, ok := commands()[firstOr(args)]
	code := 0
	if ok {
		err := cmd.run(context.Background(), args[1:], env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: getenv})
		switch {
		case err == nil, err == errHelp:
		case err == errUsage:
			code = 2
		default:
			errb.WriteString(err.Error())
			code = 1
		}
		return code, out.String(), errb.String()
	}
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func firstOr(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

func TestTopLevelUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, nil, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, c := range []string{"dev", "edge", "auth", "sensor", "bridge", "migrate", "user", "health"} {
		if !strings.Contains(out.String(), "  "+c+" ") {
			t.Errorf("usage does not list %s:\n%s", c, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"nope"}, nil, &out, &errb); code != 2 {
		t.Fatalf("unknown command exit %d, want 2", code)
	}
	if code := run(context.Background(), nil, nil, &out, &errb); code != 2 {
		t.Fatalf("no command exit %d, want 2", code)
	}
}

// Every subcommand has --help, and it names each flag's variable.
func TestEverySubcommandHasHelp(t *testing.T) {
	for name, c := range commands() {
		args := []string{"--help"}
		if name == "user" {
			args = []string{"add", "--help"}
		}
		var out, errb bytes.Buffer
		err := c.run(context.Background(), args, env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
		if err != errHelp {
			t.Errorf("%s --help: %v", name, err)
			continue
		}
		fs, _ := c.flags()
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(errb.String(), "--"+f.Name+" ["+EnvName(f.Name)+"]") {
				t.Errorf("%s --help does not show --%s [%s]", name, f.Name, EnvName(f.Name))
			}
		})
	}
}

func TestEnvironmentSetsFlagsButCommandLineWins(t *testing.T) {
	fs := newFlagSet("x", "")
	var httpAddr, natsURL string
	fs.StringVar(&httpAddr, "http", ":8000", "")
	fs.StringVar(&natsURL, "nats-url", "nats://a", "")
	vars := map[string]string{"SENSORHUB_HTTP": ":9000", "SENSORHUB_NATS_URL": "nats://from-env"}
	var errb bytes.Buffer
	err := parse(fs, []string{"--nats-url", "nats://from-flag"}, env{stderr: &errb, getenv: func(k string) string { return vars[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if httpAddr != ":9000" || natsURL != "nats://from-flag" {
		t.Fatalf("http=%q nats=%q", httpAddr, natsURL)
	}

	fs2 := newFlagSet("y", "")
	var n int
	fs2.IntVar(&n, "workers", 1, "")
	err = parse(fs2, nil, env{stderr: &errb, getenv: func(k string) string {
		if k == "SENSORHUB_WORKERS" {
			return "many"
		}
		return ""
	}})
	if err != errUsage || !strings.Contains(errb.String(), "SENSORHUB_WORKERS") {
		t.Fatalf("bad env value: err=%v stderr=%q", err, errb.String())
	}
}

func TestUserAddAndMigrateOnSQLite(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "u.db")
	if code, _, errs := runCmd(t, "", nil, "migrate", "--database-url", db); code != 0 {
		t.Fatalf("migrate: %d %s", code, errs)
	}
	code, _, errs := runCmd(t, "s3cret-pass\n", nil, "user", "add", "--username", "alice", "--password-stdin", "--roles", "admin, ops", "--database-url", db)
	if code != 0 {
		t.Fatalf("user add: %d %s", code, errs)
	}
	st, err := app.OpenStore(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.GetUser(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("s3cret-pass")) != nil {
		t.Fatal("stored hash does not match the password from stdin (newline kept?)")
	}
	if len(u.Roles) != 2 || u.Roles[0] != "admin" || u.Roles[1] != "ops" {
		t.Fatalf("roles = %v", u.Roles)
	}
	if code, _, _ := runCmd(t, "", nil, "user", "add", "--username", "bob", "--database-url", db); code == 0 {
		t.Fatal("user add without a password succeeded")
	}
	if code, _, _ := runCmd(t, "", nil, "user", "remove"); code != 2 {
		t.Fatal("unknown user verb accepted")
	}
	if code, _, _ := runCmd(t, "", nil, "migrate", "--database-url", "mysql://x"); code != 1 {
		t.Fatal("unsupported database URL accepted")
	}
}

// The production auth role refuses to start while an enabled user still
// has the seed's password: one that dev wrote (flag recorded) or one from
// before the flag existed (checked with bcrypt at the start). `user add`
// cannot set that password; disabling the user lets auth start.
func TestAuthRefusesTheDefaultPassword(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte(auth.DefaultPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	cases := []struct {
		name string
		flag *bool
	}{
		{"written by dev", &yes},
		{"from before the flag", nil},
	}
	for _, db := range dialects {
		for _, tc := range cases {
			t.Run(db+"/"+tc.name, func(t *testing.T) {
				url := freshDatabase(t, db)
				st := openStore(t, url)
				if _, err := st.UpsertUser(t.Context(), store.User{Username: "admin", PasswordHash: hash, Roles: []string{"admin"}, DefaultPassword: tc.flag}); err != nil {
					t.Fatal(err)
				}
				if code, _, errs := sh(t, "admin123\n", "user", "add", "--username", "admin", "--password-stdin", "--roles", "admin", "--database-url", url); code != 1 || !strings.Contains(errs, "default password") {
					t.Fatalf("user add with admin123: exit %d, stderr %q; want exit 1", code, errs)
				}
				code, _, errs := sh(t, "", "auth", "--database-url", url, "--nats-url", "nats://127.0.0.1:1", "--jwt-key-file", filepath.Join(t.TempDir(), "k.pem"))
				if code != 1 || !strings.Contains(errs, "default password") || !strings.Contains(errs, "admin") {
					t.Fatalf("auth with admin/admin123: exit %d, stderr %q; want exit 1 naming the password and the user", code, errs)
				}
				if err := st.SetUserDisabled(t.Context(), "admin", true); err != nil {
					t.Fatal(err)
				}
				if err := auth.RefuseDefaultPassword(t.Context(), st); err != nil {
					t.Fatalf("with admin disabled: %v", err)
				}
			})
		}
	}
}

// dev with --nats-url runs its roles on that server, not an embedded one.
func TestDevUsesTheGivenNATSServer(t *testing.T) {
	srv := testenv.NATS(t)
	addrs := startDev(t, "--nats-url", srv.URL(), "--nats-key-dir", srv.KeyDir)
	if addrs.NATS != srv.URL() {
		t.Fatalf("dev serves on NATS %s, want the given %s", addrs.NATS, srv.URL())
	}
	var h messages.HealthReply
	if _, err := natsx.Request(t.Context(), srv.Conn(t, messages.RoleEdge), messages.DefaultSubjects().Health(messages.RoleAuth), nil, nil, &h); err != nil || h.Status == "" {
		t.Fatalf("auth health on the given server: %+v, %v", h, err)
	}
}

// `edge` and `dev` take the same edge bounds, the adaptive submission
// limit's queue target among them (0 turns it off).
func TestEdgeFlagsInEdgeAndDev(t *testing.T) {
	for _, name := range []string{"edge", "dev"} {
		fs, _ := commands()[name].flags()
		for flagName, def := range map[string]string{
			"edge-queue-target": edge.DefaultQueueTarget.String(), "edge-max-concurrent": "2048",
			"edge-submit-attempts": "3", "edge-submit-timeout": "6s",
		} {
			if f := fs.Lookup(flagName); f == nil || f.DefValue != def {
				t.Errorf("sensorhub %s --%s: %v, want default %s", name, flagName, f, def)
			}
		}
	}
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{nil, edge.DefaultQueueTarget},
		{[]string{"--edge-queue-target", "0"}, 0},
		{[]string{"--edge-queue-target", "50ms"}, 50 * time.Millisecond},
	} {
		fs := newFlagSet("edge", "")
		var cfg app.EdgeConfig
		edgeFlags(fs, &cfg)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if cfg.QueueTarget != c.want {
			t.Errorf("%v: queue target %v, want %v", c.args, cfg.QueueTarget, c.want)
		}
	}
}
