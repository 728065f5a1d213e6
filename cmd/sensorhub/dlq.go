package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"sensorhub/internal/app"
	"sensorhub/messages"
)

// dlqVerb is one subcommand of `sensorhub dlq`.
type dlqVerb struct {
	name, operands, summary string
	// flags registers the verb's own flags and returns its runner, which
	// gets the parsed common config and the operands.
	flags func(fs *flag.FlagSet) func(ctx context.Context, e env, cfg app.DLQConfig, operands []string) error
}

// dlqCommand is `sensorhub dlq ls|show|replay|purge`: the dead letters in
// SENSOR_EVENTS_DLQ, asked of the bridge as an admin.
func dlqCommand() *command {
	verbs := dlqVerbs()
	return &command{
		name:    "dlq",
		summary: "inspect, replay and purge the dead-lettered events (ls, show, replay, purge; admin)",
		flags: func() (*flag.FlagSet, runner) {
			fs, _, _ := dlqFlagSet(verbs[0])
			return fs, func(context.Context, env) error { return errUsage }
		},
		dispatch: func(ctx context.Context, args []string, e env) error { return runDLQVerb(ctx, verbs, args, e) },
	}
}

func dlqUsage(w io.Writer, verbs []dlqVerb) {
	fmt.Fprintln(w, "Usage: sensorhub dlq <subcommand> [flags]")
	fmt.Fprintln(w, "\nThe dead letters of SENSOR_EVENTS_DLQ, asked of the bridge as an admin (--nats-user, password in")
	fmt.Fprintln(w, "--nats-password-file or "+natsPasswordEnv+").")
	fmt.Fprintln(w, "\nSubcommands:")
	for _, v := range verbs {
		fmt.Fprintf(w, "  %-26s %s\n", strings.TrimSpace(v.name+" "+v.operands), v.summary)
	}
	fmt.Fprintln(w, "\nRun 'sensorhub dlq <subcommand> --help' for its flags.")
}

// dlqFlagSet is a verb's flag set: the common flags, then its own.
func dlqFlagSet(v dlqVerb) (*flag.FlagSet, func(env) (app.DLQConfig, error), func(ctx context.Context, e env, cfg app.DLQConfig, operands []string) error) {
	fs := newFlagSet("dlq "+strings.TrimSpace(v.name+" "+v.operands), v.summary)
	var cfg app.DLQConfig
	fs.StringVar(&cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s)")
	var id natsIdentityFlags
	id.register(fs)
	natsTLSFlags(fs, &cfg.NATSTLS)
	fs.StringVar(&cfg.SubjectPrefix, "subject-prefix", "sensorhub", "prefix of every NATS subject")
	fs.DurationVar(&cfg.Timeout, "timeout", app.DLQDefaultTimeout, "deadline of connecting and of each request (a replay waits for Kafka)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the answer as JSON")
	run := v.flags(fs)
	common := func(e env) (app.DLQConfig, error) {
		p, err := personCredentials(&id, e)
		if err != nil {
			return app.DLQConfig{}, err
		}
		cfg.NATSCreds = p.NATSCreds
		return cfg, nil
	}
	return fs, common, run
}

func runDLQVerb(ctx context.Context, verbs []dlqVerb, args []string, e env) error {
	if len(args) == 0 {
		dlqUsage(e.stderr, verbs)
		return errUsage
	}
	if a := args[0]; a == "-h" || a == "--help" || a == "help" {
		dlqUsage(e.stderr, verbs)
		fs, _, _ := dlqFlagSet(verbs[0])
		fs.SetOutput(e.stderr)
		fs.Usage()
		return errHelp
	}
	var v *dlqVerb
	for i := range verbs {
		if verbs[i].name == args[0] {
			v = &verbs[i]
		}
	}
	if v == nil {
		fmt.Fprintf(e.stderr, "sensorhub dlq: unknown subcommand %q\n\n", args[0])
		dlqUsage(e.stderr, verbs)
		return errUsage
	}
	fs, common, run := dlqFlagSet(*v)
	if err := parse(fs, args[1:], e); err != nil {
		return err
	}
	// Operands and flags in any order: flags after an operand win over
	// the environment like those before it.
	var operands []string
	for rest := fs.Args(); len(rest) > 0; rest = fs.Args() {
		operands = append(operands, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			return errUsage
		}
	}
	cfg, err := common(e)
	if err != nil {
		return err
	}
	return run(ctx, e, cfg, operands)
}

// sequences parses DLQ sequences given as operands.
func sequences(e env, verb string, operands []string) ([]uint64, error) {
	var out []uint64
	for _, o := range operands {
		n, err := strconv.ParseUint(o, 10, 64)
		if err != nil || n == 0 {
			fmt.Fprintf(e.stderr, "sensorhub dlq %s: %q is not a DLQ sequence (a positive number, as dlq ls shows it)\n", verb, o)
			return nil, errUsage
		}
		out = append(out, n)
	}
	return out, nil
}

// selection reads SEQ... or --all [--reason R]: exactly one of them.
func selection(e env, verb string, operands []string, all bool, reason string) (messages.DeadLetterSelection, error) {
	seqs, err := sequences(e, verb, operands)
	if err != nil {
		return messages.DeadLetterSelection{}, err
	}
	switch {
	case len(seqs) == 0 && !all:
		fmt.Fprintf(e.stderr, "sensorhub dlq %s: name the dead letters: SEQ... or --all (nothing changed)\n", verb)
		return messages.DeadLetterSelection{}, errUsage
	case len(seqs) > 0 && all:
		fmt.Fprintf(e.stderr, "sensorhub dlq %s: give SEQ... or --all, not both (nothing changed)\n", verb)
		return messages.DeadLetterSelection{}, errUsage
	case reason != "" && !all:
		fmt.Fprintf(e.stderr, "sensorhub dlq %s: --reason goes with --all (nothing changed)\n", verb)
		return messages.DeadLetterSelection{}, errUsage
	}
	return messages.DeadLetterSelection{Sequences: seqs, All: all, Reason: reason}, nil
}

func dlqVerbs() []dlqVerb {
	return []dlqVerb{
		{name: "ls", summary: "list the dead letters, oldest first: sequence, time, event id, test id, subject, reason (a page at a time)",
			flags: func(fs *flag.FlagSet) func(context.Context, env, app.DLQConfig, []string) error {
				var req messages.ListDeadLetters
				fs.Uint64Var(&req.After, "after", 0, "list those above this DLQ sequence (the 'more: --after N' of the previous page)")
				fs.IntVar(&req.Limit, "limit", messages.DefaultDeadLetterPage, fmt.Sprintf("page size, at most %d", messages.MaxDeadLetterPage))
				fs.StringVar(&req.Reason, "reason", "", "only those whose reason contains this text")
				return func(ctx context.Context, e env, cfg app.DLQConfig, operands []string) error {
					if len(operands) > 0 {
						fmt.Fprintf(e.stderr, "sensorhub dlq ls: unexpected arguments %q\n", operands)
						return errUsage
					}
					return app.DLQList(ctx, cfg, req, e.stdout)
				}
			}},
		{name: "show", operands: "SEQ", summary: "print one dead letter with its headers and payload",
			flags: func(fs *flag.FlagSet) func(context.Context, env, app.DLQConfig, []string) error {
				return func(ctx context.Context, e env, cfg app.DLQConfig, operands []string) error {
					seqs, err := sequences(e, "show", operands)
					if err != nil {
						return err
					}
					if len(seqs) != 1 {
						fmt.Fprintln(e.stderr, "sensorhub dlq show: give one DLQ sequence (sensorhub dlq show SEQ)")
						return errUsage
					}
					return app.DLQShow(ctx, cfg, seqs[0], e.stdout)
				}
			}},
		{name: "replay", operands: "SEQ...|--all", summary: "send dead letters to Kafka again with their original event id; each leaves the DLQ once Kafka has it",
			flags: func(fs *flag.FlagSet) func(context.Context, env, app.DLQConfig, []string) error {
				all := fs.Bool("all", false, "every dead letter (with --reason: those whose reason contains it)")
				reason := fs.String("reason", "", "with --all: only those whose reason contains this text")
				return func(ctx context.Context, e env, cfg app.DLQConfig, operands []string) error {
					sel, err := selection(e, "replay", operands, *all, *reason)
					if err != nil {
						return err
					}
					return app.DLQReplay(ctx, cfg, sel, e.stdout)
				}
			}},
		{name: "purge", operands: "SEQ...|--all", summary: "delete dead letters for good (needs --yes)",
			flags: func(fs *flag.FlagSet) func(context.Context, env, app.DLQConfig, []string) error {
				all := fs.Bool("all", false, "every dead letter (with --reason: those whose reason contains it)")
				reason := fs.String("reason", "", "with --all: only those whose reason contains this text")
				yes := fs.Bool("yes", false, "confirm: a purge cannot be undone")
				return func(ctx context.Context, e env, cfg app.DLQConfig, operands []string) error {
					sel, err := selection(e, "purge", operands, *all, *reason)
					if err != nil {
						return err
					}
					if !*yes {
						fmt.Fprintln(e.stderr, "sensorhub dlq purge: a purge deletes for good: add --yes to confirm (nothing changed)")
						return errUsage
					}
					return app.DLQPurge(ctx, cfg, sel, *yes, e.stdout)
				}
			}},
	}
}
