package natsauth_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"sensorhub/internal/natsauth"
	"sensorhub/messages"
)

// A cluster node's configuration, as the server reads it: its own name, the
// cluster's name and route listener, routes that present the route
// password, and routes accepted only with it.
func TestClusterConfigAsTheServerReadsIt(t *testing.T) {
	dir := t.TempDir()
	ids, _, err := natsauth.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	secret, created, err := natsauth.LoadOrCreateRouteSecret(dir)
	if err != nil || !created || len(secret) < 32 {
		t.Fatalf("route secret %q created %v: %v", secret, created, err)
	}
	again, created, err := natsauth.LoadOrCreateRouteSecret(dir)
	if err != nil || created || again != secret {
		t.Fatalf("second load: %q created %v (%v), want the same secret kept", again, created, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, natsauth.RouteSecretFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("route secret file: %v %v, want mode 0600", fi, err)
	}
	cl := &natsauth.ClusterConfig{Name: "hub", Listen: "127.0.0.1:6222",
		Routes: []string{"127.0.0.1:6222", "nats-route://10.0.0.2:6222", "10.0.0.3:6222"},
		User:   natsauth.RouteUser, Password: secret}
	if err := cl.Validate(); err != nil {
		t.Fatal(err)
	}
	text := natsauth.ServerConfig{ServerName: "n1", Subjects: messages.DefaultSubjects(), Keys: ids.Public(), Cluster: cl}.Render()
	opts := &server.Options{}
	if err := opts.ProcessConfigString(text); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if opts.ServerName != "n1" || opts.Cluster.Name != "hub" || opts.Cluster.Host != "127.0.0.1" || opts.Cluster.Port != 6222 {
		t.Errorf("server %q cluster %q on %s:%d, want n1, hub on 127.0.0.1:6222", opts.ServerName, opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port)
	}
	if opts.Cluster.Username != natsauth.RouteUser || opts.Cluster.Password != secret {
		t.Errorf("routes accepted as %q/%q, want %q and the secret", opts.Cluster.Username, opts.Cluster.Password, natsauth.RouteUser)
	}
	if len(opts.Routes) != 3 {
		t.Fatalf("%d routes, want 3", len(opts.Routes))
	}
	for _, r := range opts.Routes {
		pw, _ := r.User.Password()
		if r.Scheme != "nats-route" || r.User.Username() != natsauth.RouteUser || pw != secret {
			t.Errorf("route %s does not present the route credentials", r.Redacted())
		}
	}
}

func TestClusterConfigValidate(t *testing.T) {
	for name, c := range map[string]natsauth.ClusterConfig{
		"no name":          {Listen: "0.0.0.0:6222"},
		"no listen":        {Name: "hub"},
		"user no password": {Name: "hub", Listen: "0.0.0.0:6222", User: "route"},
		"route no port":    {Name: "hub", Listen: "0.0.0.0:6222", Routes: []string{"10.0.0.2"}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}
