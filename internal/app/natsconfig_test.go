package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"sensorhub/internal/natsauth"
)

// Three nodes written into one directory share the keys and the route
// password; each gets its own file, readable by its owner only.
func TestWriteNATSConfigClusterNodes(t *testing.T) {
	dir := t.TempDir()
	routes := []string{"127.0.0.1:6222", "127.0.0.1:6223", "127.0.0.1:6224"}
	for i, name := range []string{"n1", "n2", "n3"} {
		var out bytes.Buffer
		err := WriteNATSConfig(NATSConfigConfig{Out: dir, ServerName: name, ClusterName: "hub",
			Listen: "127.0.0.1:4222", ClusterListen: routes[i], Routes: routes, StoreDir: filepath.Join(dir, name)}, &out)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "nats-server-"+name+".conf")
		if !strings.Contains(out.String(), path) {
			t.Errorf("output does not name %s:\n%s", path, out.String())
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 (it holds the route password)", path, fi.Mode().Perm())
		}
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if opts.ServerName != name || opts.Cluster.Name != "hub" || len(opts.Routes) != 3 {
			t.Errorf("%s: server %q cluster %q routes %d", path, opts.ServerName, opts.Cluster.Name, len(opts.Routes))
		}
	}
	secret, created, err := natsauth.LoadOrCreateRouteSecret(dir)
	if err != nil || created {
		t.Fatalf("route secret: created again %v (%v), want the one the nodes share", created, err)
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		b, _ := os.ReadFile(filepath.Join(dir, "nats-server-"+name+".conf"))
		if !strings.Contains(string(b), secret) {
			t.Errorf("%s does not carry the shared route password", name)
		}
	}
	if err := WriteNATSConfig(NATSConfigConfig{Out: dir, ClusterName: "hub", ClusterListen: routes[0]}, &bytes.Buffer{}); err == nil {
		t.Error("a cluster node without a server name was written")
	}
}
