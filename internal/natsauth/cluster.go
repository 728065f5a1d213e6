package natsauth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ClusterConfig makes a server one node of a NATS cluster. JetStream in a
// cluster needs every node to have its own ServerConfig.ServerName and the
// same Name; the nodes find each other through Routes and replicate each
// stream to as many of them as its replicas say.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every node.
	Name string
	// Listen is host:port where this node accepts routes from the others.
	Listen string
	// Routes are the other nodes' route addresses (host:port or
	// nats-route://host:port). Naming this node's own address too is
	// harmless: the server ignores a route to itself.
	Routes []string
	// User and Password authenticate routes: this node accepts a route only
	// with them, and presents them on its own routes (every node of a
	// cluster gets the same pair; RouteSecretFile keeps the password).
	User, Password string
}

// RouteUser is the user routes authenticate as.
const RouteUser = "route"

// RouteSecretFile holds the routes' password inside an identity directory
// (mode 0600): it goes into every node's configuration and nowhere else.
const RouteSecretFile = "cluster-route.secret"

// LoadOrCreateRouteSecret reads the routes' password from dir, creating a
// random one when the file is missing; created says whether it did.
func LoadOrCreateRouteSecret(dir string) (secret string, created bool, err error) {
	path := filepath.Join(dir, RouteSecretFile)
	data, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(data)); s != "" {
			return s, false, nil
		}
		return "", false, fmt.Errorf("%s is empty: delete it to make a new one", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("create identity dir: %w", err)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", false, fmt.Errorf("route secret: %w", err)
	}
	// Hex: safe inside a route URL's user info without escaping.
	secret = hex.EncodeToString(b)
	if err := writeSecret(path, []byte(secret+"\n")); err != nil {
		return "", false, err
	}
	return secret, true, nil
}

// Validate reports what a node of the cluster would be missing.
func (c ClusterConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("cluster: a name is required"))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("cluster: a route listen address is required"))
	}
	if (c.User == "") != (c.Password == "") {
		errs = append(errs, errors.New("cluster: route user and password go together"))
	}
	for _, r := range c.Routes {
		if _, err := routeURL(r, "", ""); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// routeURL turns a route address into a nats-route:// URL carrying user
// and password (unless the address has its own).
func routeURL(addr, user, password string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "nats-route://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("cluster: route %q is not host:port or nats-route://host:port", addr)
	}
	if u.User == nil && user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String(), nil
}

// render writes the cluster block.
func (c ClusterConfig) render(w func(string, ...any)) {
	w("\ncluster {\n  name: %s\n  listen: %s\n", q(c.Name), q(c.Listen))
	if c.User != "" {
		w("  authorization {\n    user: %s\n    password: %s\n    timeout: 2\n  }\n", q(c.User), q(c.Password))
	}
	if len(c.Routes) > 0 {
		w("  routes: [\n")
		for _, r := range c.Routes {
			u, err := routeURL(r, c.User, c.Password)
			if err != nil {
				continue // Validate reports it
			}
			w("    %s\n", q(u))
		}
		w("  ]\n")
	}
	w("}\n")
}
