package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// DLQConfig configures the `sensorhub dlq` commands: an admin asks the
// bridge on sensorhub.bridge.dlq.*, which does the JetStream and Kafka work
// with its own identity.
type DLQConfig struct {
	NATSURL       string
	NATSCreds     natsx.Credentials
	NATSTLS       natsx.TLSFiles
	SubjectPrefix string
	// Timeout bounds connecting and each request (default 30s: a replay
	// waits for Kafka, at most the bridge's Kafka call timeout).
	Timeout time.Duration
	JSON    bool
}

// DLQDefaultTimeout is DLQConfig.Timeout's default.
const DLQDefaultTimeout = 30 * time.Second

// dlqClient is one connection to the bus for the dlq commands.
type dlqClient struct {
	cfg  DLQConfig
	nc   *nats.Conn
	subj messages.Subjects
}

func dialDLQ(ctx context.Context, cfg DLQConfig) (*dlqClient, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DLQDefaultTimeout
	}
	subj, err := messages.NewSubjects(cfg.SubjectPrefix)
	if err != nil {
		return nil, err
	}
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: cfg.NATSURL, Name: "sensorhub-dlq", Credentials: cfg.NATSCreds, TLS: cfg.NATSTLS, Logger: discardLogger()})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := natsx.WaitConnected(wctx, nc); err != nil {
		why := err.Error()
		if last := nc.LastError(); last != nil {
			why = last.Error()
		}
		nc.Close()
		return nil, fmt.Errorf("NATS at %s cannot be reached: %s", cfg.NATSURL, why)
	}
	return &dlqClient{cfg: cfg, nc: nc, subj: subj}, nil
}

func (c *dlqClient) close() { c.nc.Close() }

// request asks subject within the timeout and says plainly what a silence
// means.
func (c *dlqClient) request(ctx context.Context, subject string, req, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	_, err := natsx.Request(ctx, c.nc, subject, req, nil, out)
	switch {
	case errors.Is(err, natsx.ErrNoResponders):
		return fmt.Errorf("no bridge answers %s: is a bridge running? %w", subject, err)
	case errors.Is(err, natsx.ErrTimeout):
		return fmt.Errorf("no answer on %s within %s (only an admin may ask; is a bridge running?): %w", subject, c.cfg.Timeout, err)
	}
	return err
}

func (c *dlqClient) printJSON(out io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(b))
	return err
}

// DLQList prints one page of dead letters, and how to get the next.
func DLQList(ctx context.Context, cfg DLQConfig, req messages.ListDeadLetters, out io.Writer) error {
	c, err := dialDLQ(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.close()
	var page messages.DeadLetterPage
	if err := c.request(ctx, c.subj.DeadLetterList(), req, &page); err != nil {
		return err
	}
	if cfg.JSON {
		return c.printJSON(out, page)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tTIME\tEVENT ID\tTEST ID\tSUBJECT\tREASON")
	for _, d := range page.DeadLetters {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Sequence, d.Time.Format(time.RFC3339), dash(d.EventID), dash(d.TestID), dash(d.Subject), truncate(d.Reason, 80))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d shown, %d dead letters in %s", len(page.DeadLetters), page.Total, messages.StreamDeadLetter)
	if page.Next != 0 {
		fmt.Fprintf(out, "; more: --after %d", page.Next)
	}
	fmt.Fprintln(out)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// DLQShow prints one dead letter with its headers and payload.
func DLQShow(ctx context.Context, cfg DLQConfig, seq uint64, out io.Writer) error {
	c, err := dialDLQ(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.close()
	var d messages.DeadLetterDetail
	if err := c.request(ctx, c.subj.DeadLetterGet(), messages.GetDeadLetter{Sequence: seq}, &d); err != nil {
		return err
	}
	if cfg.JSON {
		return c.printJSON(out, d)
	}
	s := d.DeadLetter
	fmt.Fprintf(out, "sequence:  %d\ntime:      %s\nevent id:  %s\ntest id:   %s\nsensor id: %s\nfrom:      %s sequence %d, subject %s\nreason:    %s\n",
		s.Sequence, s.Time.Format(time.RFC3339Nano), dash(s.EventID), dash(s.TestID), dash(s.SensorID), dash(s.Stream), s.OriginalSequence, dash(s.Subject), s.Reason)
	fmt.Fprintln(out, "headers:")
	names := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(out, "  %s: %s\n", k, strings.Join(d.Headers[k], ", "))
	}
	payload := d.Payload
	if d.PayloadEncoding == messages.PayloadBase64 {
		if b, err := base64.StdEncoding.DecodeString(payload); err == nil {
			payload = fmt.Sprintf("%q", b)
		}
	}
	fmt.Fprintf(out, "payload (%d bytes, %s):\n%s\n", s.Size, d.PayloadEncoding, payload)
	return nil
}

// DLQReplay replays the selected dead letters (all of them page by page)
// and prints what became of each; it fails when any stays.
func DLQReplay(ctx context.Context, cfg DLQConfig, sel messages.DeadLetterSelection, out io.Writer) error {
	return dlqAct(ctx, cfg, "replay", sel, out, func(c *dlqClient, sel messages.DeadLetterSelection, done *messages.DeadLettersDone) error {
		return c.request(ctx, c.subj.DeadLetterReplay(), messages.ReplayDeadLetters(sel), done)
	})
}

// DLQPurge deletes the selected dead letters for good; confirm must be set.
func DLQPurge(ctx context.Context, cfg DLQConfig, sel messages.DeadLetterSelection, confirm bool, out io.Writer) error {
	return dlqAct(ctx, cfg, "purge", sel, out, func(c *dlqClient, sel messages.DeadLetterSelection, done *messages.DeadLettersDone) error {
		return c.request(ctx, c.subj.DeadLetterPurge(), messages.PurgeDeadLetters{Sequences: sel.Sequences, All: sel.All,
			Reason: sel.Reason, After: sel.After, Confirm: confirm}, done)
	})
}

func dlqAct(ctx context.Context, cfg DLQConfig, verb string, sel messages.DeadLetterSelection, out io.Writer,
	ask func(*dlqClient, messages.DeadLetterSelection, *messages.DeadLettersDone) error) error {
	c, err := dialDLQ(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.close()
	var all messages.DeadLettersDone
	for {
		var done messages.DeadLettersDone
		if err := ask(c, sel, &done); err != nil {
			if len(all.Results) > 0 {
				_ = printDone(c, out, all)
			}
			return err
		}
		all.Results = append(all.Results, done.Results...)
		all.Done += done.Done
		all.Failed += done.Failed
		// With all, the next page; a page that changed nothing (every
		// one failed) still moves on, so the loop ends.
		if !sel.All || done.Next == 0 || done.Next <= sel.After || ctx.Err() != nil {
			break
		}
		sel.After = done.Next
	}
	if err := printDone(c, out, all); err != nil {
		return err
	}
	if all.Failed > 0 {
		return fmt.Errorf("%s: %d of %d dead letters failed and stay in %s", verb, all.Failed, all.Failed+all.Done, messages.StreamDeadLetter)
	}
	return nil
}

func printDone(c *dlqClient, out io.Writer, d messages.DeadLettersDone) error {
	if c.cfg.JSON {
		return c.printJSON(out, d)
	}
	for _, r := range d.Results {
		line := fmt.Sprintf("%d\t%s\t%s", r.Sequence, dash(r.EventID), r.Status)
		if r.Code != "" {
			line += "\t" + string(r.Code) + ": " + r.Error
		} else if r.Error != "" {
			line += "\t" + r.Error
		}
		fmt.Fprintln(out, line)
	}
	_, err := fmt.Fprintf(out, "%d done, %d failed\n", d.Done, d.Failed)
	return err
}
