package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// There is no container engine here, so compose.yaml is checked by reading
// it: every command, flag and SENSORHUB_* variable it gives the sensorhub
// image must exist in this binary, and every service must have a health
// check and a restart policy.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Configs  map[string]struct {
		Content string `yaml:"content"`
	} `yaml:"configs"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Restart     string            `yaml:"restart"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("compose.yaml does not parse: %v", err)
	}
	return c
}

// flagsOf returns the flag set of a subcommand ("user add" for user).
func flagsOf(t *testing.T, name string) *flag.FlagSet {
	t.Helper()
	c, ok := commands()[name]
	if !ok {
		t.Fatalf("compose uses unknown subcommand %q", name)
	}
	fs, _ := c.flags()
	return fs
}

// checkArgs checks a sensorhub command line against the binary's flags.
func checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: empty sensorhub command", where)
	}
	fs := flagsOf(t, args[0])
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimLeft(a, "-")
		name, _, _ = strings.Cut(name, "=")
		if fs.Lookup(name) == nil {
			t.Errorf("%s: sensorhub %s has no flag --%s", where, args[0], name)
		}
	}
}

func TestComposeMatchesTheBinary(t *testing.T) {
	c := loadCompose(t)
	roles := map[string]bool{}
	for name, svc := range c.Services {
		if svc.Healthcheck == nil || len(svc.Healthcheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
		if svc.Restart == "" || svc.Restart == "no" {
			t.Errorf("service %s has no restart policy", name)
		}
		if svc.Build == nil && !strings.HasPrefix(svc.Image, "sensorhub") {
			continue // a third-party image
		}
		checkArgs(t, "service "+name, svc.Command)
		role := svc.Command[0]
		roles[role] = true
		fs := flagsOf(t, role)
		for env := range svc.Environment {
			if !strings.HasPrefix(env, EnvPrefix) {
				continue
			}
			flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, EnvPrefix), "_", "-"))
			if fs.Lookup(flagName) == nil || EnvName(flagName) != env {
				t.Errorf("service %s: %s sets no flag of sensorhub %s", name, env, role)
			}
		}
		// The image has no shell or curl: its health check must be the
		// binary's own health command, with flags that exist.
		hc := svc.Healthcheck.Test
		if len(hc) < 3 || hc[0] != "CMD" || hc[1] != "/sensorhub" {
			t.Errorf("service %s: health check %v does not run /sensorhub", name, hc)
			continue
		}
		checkArgs(t, "health check of "+name, hc[2:])
	}
	for _, role := range []string{"edge", "auth", "sensor", "bridge"} {
		if !roles[role] {
			t.Errorf("compose.yaml runs no %s service", role)
		}
	}
	for _, dep := range []string{"nats", "postgres", "kafka"} {
		if _, ok := c.Services[dep]; !ok {
			t.Errorf("compose.yaml has no %s service", dep)
		}
	}
	if k := c.Services["kafka"]; k.Environment["KAFKA_PROCESS_ROLES"] == "" {
		t.Error("kafka must run in KRaft mode (KAFKA_PROCESS_ROLES)")
	}
	// NATS runs JetStream on disk with every write fsynced (README, Durability).
	conf := c.Configs["nats-conf"].Content
	if n := c.Services["nats"]; !containsArg(n.Command, "/etc/nats/nats.conf") ||
		!strings.Contains(conf, "jetstream") || !strings.Contains(conf, "store_dir: /data") ||
		!strings.Contains(conf, "sync_interval: always") {
		t.Errorf("nats must run the config with JetStream on disk and sync_interval always; command %v, config:\n%s", n.Command, conf)
	}
}

func containsArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}

func TestDockerfileIsStaticAndNonRoot(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.Contains(s, "CGO_ENABLED=0") {
		t.Error("Dockerfile does not build a static binary (CGO_ENABLED=0)")
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(s, -1)
	if len(user) == 0 {
		t.Fatal("Dockerfile sets no USER")
	}
	if last := user[len(user)-1][1]; last == "root" || strings.HasPrefix(last, "0") {
		t.Errorf("Dockerfile runs as %s", last)
	}
	if !strings.Contains(s, "./cmd/sensorhub") {
		t.Error("Dockerfile does not build ./cmd/sensorhub")
	}
}
