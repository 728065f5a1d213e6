package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"sensorhub/actors/auth"
	"sensorhub/internal/app"
	"sensorhub/messages"
)

// userVerb is one subcommand of `sensorhub user`.
type userVerb struct {
	name    string
	operand string // "NAME" when the verb takes one argument, "" for none
	summary string
	flags   func() (*flag.FlagSet, userRunner)
}

// userRunner runs a user verb whose flags were parsed, with its operand.
type userRunner func(ctx context.Context, e env, operand string) error

// userCommand is `sensorhub user <verb>`: the accounts in the database.
// Its flags are those of `user add`, the verb compose.yaml documents.
func userCommand() *command {
	verbs := userVerbs()
	return &command{
		name:    "user",
		summary: "manage user accounts: add, list, disable, enable, delete",
		flags: func() (*flag.FlagSet, runner) {
			fs, r := verbs[0].flags()
			return fs, func(ctx context.Context, e env) error { return r(ctx, e, "") }
		},
		dispatch: func(ctx context.Context, args []string, e env) error { return runUserVerb(ctx, verbs, args, e) },
	}
}

func userVerbs() []userVerb {
	return []userVerb{userAddVerb(), userListVerb(), userDisableVerb(true), userDisableVerb(false), userDeleteVerb()}
}

// runUserVerb picks the verb named by args[0] and runs it. Flags may come
// before or after the verb's operand.
func runUserVerb(ctx context.Context, verbs []userVerb, args []string, e env) error {
	if len(args) == 0 {
		userUsage(e.stderr, verbs)
		return errUsage
	}
	if a := args[0]; a == "-h" || a == "--help" || a == "help" {
		userUsage(e.stdout, verbs)
		return errHelp
	}
	var v *userVerb
	for i := range verbs {
		if verbs[i].name == args[0] {
			v = &verbs[i]
		}
	}
	if v == nil {
		fmt.Fprintf(e.stderr, "sensorhub user: unknown subcommand %q\n\n", args[0])
		userUsage(e.stderr, verbs)
		return errUsage
	}
	fs, r := v.flags()
	if err := parse(fs, args[1:], e); err != nil {
		return err
	}
	rest, operand := fs.Args(), ""
	if v.operand != "" {
		if len(rest) == 0 {
			fmt.Fprintf(e.stderr, "sensorhub user %s: give the %s (sensorhub user %s %s)\n", v.name, v.operand, v.name, v.operand)
			return errUsage
		}
		operand = rest[0]
		if err := fs.Parse(rest[1:]); err != nil { // flags after the operand; they win over the environment
			if errors.Is(err, flag.ErrHelp) {
				return errHelp
			}
			return errUsage
		}
		rest = fs.Args()
	}
	if len(rest) > 0 {
		fmt.Fprintf(e.stderr, "sensorhub user %s: unexpected arguments %q\n", v.name, rest)
		return errUsage
	}
	if err := r(ctx, e, operand); err != nil {
		return fmt.Errorf("%s: %w", v.name, err)
	}
	return nil
}

func userUsage(w io.Writer, verbs []userVerb) {
	fmt.Fprintln(w, "Usage: sensorhub user <subcommand> [flags]")
	fmt.Fprintln(w, "\nManage the user accounts in the database (--database-url, or SENSORHUB_DATABASE_URL).")
	fmt.Fprintln(w, "\nSubcommands:")
	for _, v := range verbs {
		fmt.Fprintf(w, "  %-13s %s\n", strings.TrimSpace(v.name+" "+v.operand), v.summary)
	}
	fmt.Fprintln(w, "\nRun 'sensorhub user <subcommand> --help' for its flags.")
}

// userFlags are the flags every user verb has.
type userFlags struct {
	databaseURL string
	logFormat   string
}

func (u *userFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&u.databaseURL, "database-url", "", "PostgreSQL URL (postgres://...) or sqlite:PATH")
	fs.StringVar(&u.logFormat, "log-format", "text", "log format: text or json")
}

// newUserFlagSet names the flag set after the verb and its operand, for
// its usage line.
func newUserFlagSet(name, operand, summary string) *flag.FlagSet {
	return newFlagSet(strings.TrimSpace("user "+name+" "+operand), summary)
}

func userAddVerb() userVerb {
	summary := fmt.Sprintf("create a user, or update its password, roles and disabled flag (bcrypt).\n"+
		"The username is 1 to %d of A-Z a-z 0-9 _ - and not a role's name (auth, sensor, bridge, edge, sys).\n"+
		"The password has at least %d characters and is not the seed's %s.", messages.MaxUsernameLen, app.MinPasswordLen, auth.DefaultPassword)
	return userVerb{name: "add", summary: "create a user or update its password and roles", flags: func() (*flag.FlagSet, userRunner) {
		fs := newUserFlagSet("add", "", summary)
		var (
			common                  userFlags
			u                       app.UserConfig
			roles                   string
			passwordStdin, disabled bool
		)
		common.register(fs)
		fs.StringVar(&u.Username, "username", "", "user name")
		fs.StringVar(&u.Password, "password", "", "password (prefer --password-stdin: arguments are visible to other users)")
		fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
		fs.StringVar(&roles, "roles", "user", "comma-separated roles (admin may read every test); they replace an existing user's")
		fs.BoolVar(&disabled, "disabled", false, "the user is disabled (cannot log in; its tokens are refused); without it, add enables an existing user")
		return fs, func(ctx context.Context, e env, _ string) error {
			logger, err := app.NewLogger(e.stderr, common.logFormat, "info")
			if err != nil {
				return err
			}
			if passwordStdin {
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("read password from stdin: %w", err)
				}
				u.Password = strings.TrimRight(line, "\r\n")
			}
			for _, r := range strings.Split(roles, ",") {
				if r = strings.TrimSpace(r); r != "" {
					u.Roles = append(u.Roles, r)
				}
			}
			u.DatabaseURL = common.databaseURL
			u.Disabled = disabled
			created, err := app.AddUser(ctx, u, logger)
			if err != nil {
				return err
			}
			verb := "updated"
			if created {
				verb = "created"
			}
			fmt.Fprintf(e.stdout, "%s user %s\n", verb, u.Username)
			return nil
		}
	}}
}

func userListVerb() userVerb {
	const summary = "list the users: name, roles, disabled, created and updated (UTC), ordered by name"
	return userVerb{name: "list", summary: summary, flags: func() (*flag.FlagSet, userRunner) {
		fs := newUserFlagSet("list", "", summary)
		var (
			common userFlags
			asJSON bool
		)
		common.register(fs)
		fs.BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
		return fs, func(ctx context.Context, e env, _ string) error {
			logger, err := app.NewLogger(e.stderr, common.logFormat, "info")
			if err != nil {
				return err
			}
			users, err := app.ListUsers(ctx, common.databaseURL, logger)
			if err != nil {
				return err
			}
			if asJSON {
				return app.WriteUsersJSON(e.stdout, users)
			}
			return app.WriteUsersTable(e.stdout, users)
		}
	}}
}

// userDisableVerb is `user disable NAME` (disable) or `user enable NAME`.
func userDisableVerb(disable bool) userVerb {
	name, summary, done := "enable", "enable a disabled user again", "enabled"
	if disable {
		name, done = "disable", "disabled"
		summary = fmt.Sprintf("disable a user: it cannot log in, and the roles refuse its tokens within %s (their validation cache)", auth.DefaultCacheTTL)
	}
	return userVerb{name: name, operand: "NAME", summary: summary, flags: func() (*flag.FlagSet, userRunner) {
		fs := newUserFlagSet(name, "NAME", summary)
		var common userFlags
		common.register(fs)
		return fs, func(ctx context.Context, e env, username string) error {
			logger, err := app.NewLogger(e.stderr, common.logFormat, "info")
			if err != nil {
				return err
			}
			if err := app.SetUserDisabled(ctx, common.databaseURL, username, disable, logger); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s user %s\n", done, username)
			return nil
		}
	}}
}

func userDeleteVerb() userVerb {
	summary := fmt.Sprintf("delete a user (its tests are kept); the roles refuse its tokens within %s", auth.DefaultCacheTTL)
	return userVerb{name: "delete", operand: "NAME", summary: summary, flags: func() (*flag.FlagSet, userRunner) {
		fs := newUserFlagSet("delete", "NAME", summary)
		var common userFlags
		common.register(fs)
		return fs, func(ctx context.Context, e env, username string) error {
			logger, err := app.NewLogger(e.stderr, common.logFormat, "info")
			if err != nil {
				return err
			}
			if err := app.DeleteUser(ctx, common.databaseURL, username, logger); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted user %s\n", username)
			return nil
		}
	}}
}
