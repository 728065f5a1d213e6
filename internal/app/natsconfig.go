package app

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"sensorhub/internal/natsauth"
	"sensorhub/messages"
)

// NATSConfigConfig configures WriteNATSConfig.
type NATSConfigConfig struct {
	// Out is the directory written: nats-server.conf and one seed file per
	// role plus the callout's two (existing keys are kept).
	Out           string
	SubjectPrefix string
	// Listen, StoreDir and SyncAlways go into the server configuration.
	Listen     string
	StoreDir   string
	SyncAlways bool
	// Monitor is the server's HTTP monitoring address ("" for none).
	Monitor string
	// TLS, when its cert and key are set, makes the server require TLS.
	TLS natsauth.ServerTLS
}

// ServerConfigFile is the name of the generated server configuration.
const ServerConfigFile = "nats-server.conf"

// WriteNATSConfig writes a production nats-server configuration and the
// credentials of every role, and tells out which file goes where.
func WriteNATSConfig(cfg NATSConfigConfig, out io.Writer) error {
	subj, err := messages.NewSubjects(cfg.SubjectPrefix)
	if err != nil {
		return err
	}
	if cfg.Out == "" {
		return fmt.Errorf("give --out DIR")
	}
	ids, created, err := natsauth.LoadOrCreate(cfg.Out)
	if err != nil {
		return err
	}
	sc := natsauth.ServerConfig{
		Listen:     cfg.Listen,
		StoreDir:   cfg.StoreDir,
		SyncAlways: cfg.SyncAlways,
		Monitor:    cfg.Monitor,
		Subjects:   subj,
		Keys:       ids.Public(),
	}
	if cfg.TLS.CertFile != "" || cfg.TLS.KeyFile != "" {
		if cfg.TLS.CertFile == "" || cfg.TLS.KeyFile == "" {
			return fmt.Errorf("server TLS needs both a certificate and a key")
		}
		t := cfg.TLS
		sc.TLS = &t
	}
	path := filepath.Join(cfg.Out, ServerConfigFile)
	if err := os.WriteFile(path, []byte(sc.Render()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(out, "wrote %s\n", path)
	for _, name := range created {
		fmt.Fprintf(out, "created %s\n", filepath.Join(cfg.Out, name))
	}
	fmt.Fprintln(out, "\nGive each role only its own file (mode 0600):")
	for _, role := range natsauth.Roles {
		fmt.Fprintf(out, "  %-6s --nats-nkey-file %s\n", role, filepath.Join(cfg.Out, natsauth.RoleFile(role)))
	}
	fmt.Fprintf(out, "  auth   --callout-issuer-file %s --callout-xkey-file %s\n",
		filepath.Join(cfg.Out, natsauth.IssuerFile), filepath.Join(cfg.Out, natsauth.XKeyFile))
	fmt.Fprintf(out, "Run the server with: nats-server -c %s\n", path)
	return nil
}
