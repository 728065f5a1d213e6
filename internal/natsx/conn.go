package natsx

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/messages"
)

// ConnectConfig configures a client connection.
type ConnectConfig struct {
	URL    string // nats://host:port[,nats://...]
	Name   string // connection name, shown by the server
	Logger *slog.Logger
	// ReconnectWait is the pause between reconnect attempts (default 250ms).
	ReconnectWait time.Duration
	// ReconnectBufSize bounds what is buffered while disconnected
	// (default 8 MiB; publishes past it fail rather than grow memory).
	ReconnectBufSize int
	// TLS turns TLS on when any file is set (default off).
	TLS TLSFiles
	// Credentials is who this connection is on the bus.
	Credentials Credentials
}

// Credentials identify a connection. A role uses its nkey seed file (or a
// user and password its deployment defines); a person uses a username and
// password or a sensorhub token, checked by the auth callout. InboxPrefix
// is where replies arrive: each identity may subscribe only below its own.
type Credentials struct {
	NkeyFile string
	User     string
	Password string
	Token    string
	// InboxPrefix replaces "_INBOX" (see messages.InboxPrefix).
	InboxPrefix string
}

// options turns c into connect options.
func (c Credentials) options() ([]nats.Option, error) {
	var opts []nats.Option
	if c.NkeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(c.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed file: %w", err)
		}
		opts = append(opts, opt)
	}
	if c.User != "" || c.Password != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.InboxPrefix == "" && c.User != "" && c.NkeyFile == "" {
		c.InboxPrefix = messages.InboxPrefix(c.User) // a person's own inbox
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	return opts, nil
}

// Connect dials NATS and keeps reconnecting forever. It returns at once even
// when no server answers yet (the connection retries in the background), so
// a role starts and serves its health while NATS is down.
func Connect(cfg ConnectConfig) (*nats.Conn, error) {
	if cfg.URL == "" {
		cfg.URL = nats.DefaultURL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReconnectWait == 0 {
		cfg.ReconnectWait = 250 * time.Millisecond
	}
	if cfg.ReconnectBufSize == 0 {
		cfg.ReconnectBufSize = 8 << 20
	}
	tlsOpt, err := cfg.TLS.Option()
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", cfg.URL, err)
	}
	log := cfg.Logger.With("component", "nats")
	creds, err := cfg.Credentials.options()
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", cfg.URL, err)
	}
	opts := append(creds,
		tlsOpt,
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(cfg.ReconnectBufSize),
		nats.RetryOnFailedConnect(true),
		// A refused identity is retried like any other failure: the
		// server's configuration may be rolling out.
		nats.IgnoreAuthErrorAbort(),
		// Longer than the server's wait for the auth callout (2 s), so a
		// refusal arrives as a refusal, not as an i/o timeout.
		nats.Timeout(5*time.Second),
		nats.PingInterval(5*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			} else {
				log.Info("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(c *nats.Conn) {
			log.Info("nats connected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "subject", subj, "err", err)
		}),
	)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", cfg.URL, err)
	}
	return nc, nil
}

// WaitConnected waits until nc is connected or ctx ends.
func WaitConnected(ctx context.Context, nc *nats.Conn) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for nats connection: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Drain drains nc (finishing in-flight handlers) within timeout, then closes it.
func Drain(nc *nats.Conn, timeout time.Duration) {
	if nc == nil || nc.IsClosed() {
		return
	}
	done := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-done:
	case <-time.After(timeout):
		nc.Close()
	}
}
