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
	// ServerName names the server (default "sensorhub"); each node of a
	// cluster needs its own.
	ServerName string
	// ClusterName, when set, makes the configuration one node of a NATS
	// cluster: routes on ClusterListen to Routes, authenticated with the
	// routes' password kept in Out (natsauth.RouteSecretFile).
	ClusterName   string
	ClusterListen string
	Routes        []string
}

// ServerConfigFile is the name of the generated server configuration.
const ServerConfigFile = "nats-server.conf"

// ServerConfigFileFor is the name of the configuration written for cfg:
// ServerConfigFile, or nats-server-<server name>.conf for a cluster node,
// so that the nodes' files sit side by side next to the keys they share.
func ServerConfigFileFor(cfg NATSConfigConfig) string {
	if cfg.ClusterName != "" && cfg.ServerName != "" {
		return "nats-server-" + cfg.ServerName + ".conf"
	}
	return ServerConfigFile
}

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
		ServerName: cfg.ServerName,
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
	mode := os.FileMode(0o644)
	if cfg.ClusterName != "" {
		if cfg.ServerName == "" {
			return fmt.Errorf("a cluster node needs its own --server-name")
		}
		secret, made, err := natsauth.LoadOrCreateRouteSecret(cfg.Out)
		if err != nil {
			return err
		}
		if made {
			created = append(created, natsauth.RouteSecretFile)
		}
		sc.Cluster = &natsauth.ClusterConfig{Name: cfg.ClusterName, Listen: cfg.ClusterListen, Routes: cfg.Routes,
			User: natsauth.RouteUser, Password: secret}
		if err := sc.Cluster.Validate(); err != nil {
			return err
		}
		mode = 0o600 // it holds the routes' password
	}
	path := filepath.Join(cfg.Out, ServerConfigFileFor(cfg))
	if err := os.WriteFile(path, []byte(sc.Render()), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile keeps an existing file's mode
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
