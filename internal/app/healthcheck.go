package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// HealthCheckConfig configures CheckHealth.
type HealthCheckConfig struct {
	NATSURL string
	// NATSCreds is the identity to ask with: the role's own (each role may
	// ask its own health), or a person's.
	NATSCreds     natsx.Credentials
	NATSTLS       natsx.TLSFiles
	SubjectPrefix string
	Role          string // ask sensorhub.<role>.health over NATS
	URL           string // or GET this URL
	Timeout       time.Duration
}

// CheckHealth asks one role for its health and fails unless it answers.
// A degraded role passes: it is alive and serving what it can, and
// restarting it would not bring its dependency back.
func CheckHealth(ctx context.Context, cfg HealthCheckConfig, out io.Writer) error {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if cfg.URL != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
		if err != nil {
			return fmt.Errorf("health url: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("get %s: %w", cfg.URL, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		fmt.Fprintln(out, string(body))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("get %s: status %d", cfg.URL, resp.StatusCode)
		}
		return nil
	}
	if cfg.Role == "" {
		return errors.New("give --role or --url")
	}
	subj, err := messages.NewSubjects(cfg.SubjectPrefix)
	if err != nil {
		return err
	}
	creds := cfg.NATSCreds
	if creds.InboxPrefix == "" && creds.NkeyFile != "" {
		creds.InboxPrefix = messages.InboxPrefix(cfg.Role)
	}
	nc, err := natsx.Connect(natsx.ConnectConfig{URL: cfg.NATSURL, Name: "sensorhub-health", Credentials: creds, TLS: cfg.NATSTLS, Logger: discardLogger()})
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := natsx.WaitConnected(ctx, nc); err != nil {
		return err
	}
	var h messages.HealthReply
	if _, err := natsx.Request(ctx, nc, subj.Health(cfg.Role), messages.Empty{}, nil, &h); err != nil {
		return fmt.Errorf("%s health: %w", cfg.Role, err)
	}
	b, _ := json.Marshal(h)
	fmt.Fprintln(out, string(b))
	return nil
}
