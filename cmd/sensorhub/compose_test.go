package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"sensorhub/internal/natsauth"
)

// There is no container engine here, so compose.yaml is checked by reading
// it: every command, flag and SENSORHUB_* variable it gives the sensorhub
// image must exist in this binary, and every service must have a health
// check and a restart policy.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Configs  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"configs"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Restart     string            `yaml:"restart"`
	Secrets     []string          `yaml:"secrets"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
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
	checkKafkaKeepsItsData(t, c.Services["kafka"])
	checkNATSIdentities(t, c)
}

// checkNATSIdentities: the NATS server runs the configuration that the
// compose file's own `sensorhub nats-config` command writes, with JetStream
// on disk fsynced and monitoring for its health check on loopback; every
// role connects with its own nkey from a secret that only it mounts; only
// auth has the callout's keys.
func checkNATSIdentities(t *testing.T, c composeFile) {
	t.Helper()
	data, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`go run ./cmd/sensorhub (nats-config [^\n]*)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("compose.yaml does not say how to write its NATS configuration")
	}
	args := strings.Fields(m[1])
	checkArgs(t, "the nats-config command", args)
	out := t.TempDir()
	for i, a := range args {
		if a == "--out" {
			args[i+1] = out
		}
	}
	if code, _, errs := runCmd(t, "", nil, args...); code != 0 {
		t.Fatalf("%v: %s", args, errs)
	}
	written := func(ref string) string {
		t.Helper()
		if !strings.HasPrefix(ref, "./deploy/nats/") {
			t.Errorf("%s is not under the nats-config --out directory ./deploy/nats", ref)
		}
		p := filepath.Join(out, filepath.Base(ref))
		if _, err := os.Stat(p); err != nil {
			t.Errorf("compose refers to %s, which nats-config does not write", ref)
		}
		return p
	}
	conf, err := os.ReadFile(written(c.Configs["nats-conf"].File))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Services["nats"]
	for _, want := range []string{`store_dir: "/data/`, "sync_interval: always", `http: "127.0.0.1:8222"`, "auth_callout"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("the NATS configuration lacks %s:\n%s", want, conf)
		}
	}
	if !containsArg(n.Command, "/etc/nats/nats.conf") || !strings.Contains(strings.Join(n.Healthcheck.Test, " "), "127.0.0.1:8222") {
		t.Errorf("nats must run the generated config and check its health on the monitoring port: %v %v", n.Command, n.Healthcheck.Test)
	}

	owner := map[string]string{} // secret -> the one service mounting it
	for name, svc := range c.Services {
		for _, sec := range svc.Secrets {
			if prev, ok := owner[sec]; ok {
				t.Errorf("secret %s is mounted by %s and %s", sec, prev, name)
			}
			owner[sec] = name
		}
	}
	for sec, def := range c.Secrets {
		written(def.File)
		if owner[sec] == "" {
			t.Errorf("secret %s is mounted by nobody", sec)
		}
	}
	for _, role := range natsauth.Roles {
		svc, ok := c.Services[role]
		if !ok {
			continue
		}
		file := svc.Environment["SENSORHUB_NATS_NKEY_FILE"]
		sec := strings.TrimPrefix(file, "/run/secrets/")
		if file == sec || !containsArg(svc.Secrets, sec) || filepath.Base(c.Secrets[sec].File) != natsauth.RoleFile(role) {
			t.Errorf("%s connects with %q: want its own secret holding %s", role, file, natsauth.RoleFile(role))
		}
		for _, s := range svc.Secrets {
			base := filepath.Base(c.Secrets[s].File)
			if (base == natsauth.IssuerFile || base == natsauth.XKeyFile) && role != "auth" {
				t.Errorf("%s mounts the callout key %s", role, base)
			}
		}
	}
	a := c.Services["auth"].Environment
	for env, file := range map[string]string{"SENSORHUB_CALLOUT_ISSUER_FILE": natsauth.IssuerFile, "SENSORHUB_CALLOUT_XKEY_FILE": natsauth.XKeyFile} {
		sec := strings.TrimPrefix(a[env], "/run/secrets/")
		if filepath.Base(c.Secrets[sec].File) != file {
			t.Errorf("auth: %s = %q, want the secret holding %s", env, a[env], file)
		}
	}
}

// checkKafkaKeepsItsData: Kafka's log directory is on its volume (the
// image's default is inside the container, lost when it is recreated), and
// the host's tools reach it on a loopback listener.
func checkKafkaKeepsItsData(t *testing.T, k composeService) {
	t.Helper()
	dir := k.Environment["KAFKA_LOG_DIRS"]
	onVolume := false
	for _, v := range k.Volumes {
		if _, target, ok := strings.Cut(v, ":"); ok && dir != "" && (dir == target || strings.HasPrefix(dir, target+"/")) {
			onVolume = true
		}
	}
	if !onVolume {
		t.Errorf("KAFKA_LOG_DIRS %q is not on a volume (%v): Kafka would lose its events with the container", dir, k.Volumes)
	}
	if !strings.Contains(k.Environment["KAFKA_ADVERTISED_LISTENERS"], "127.0.0.1:") || !containsArg(k.Ports, "127.0.0.1:29092:29092") {
		t.Errorf("kafka has no listener for the host's tools on loopback: %q, ports %v", k.Environment["KAFKA_ADVERTISED_LISTENERS"], k.Ports)
	}
}

// The build context leaves out what must never be in an image.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatalf("no .dockerignore: the build context would carry .git, dev's data dir and any key: %v", err)
	}
	lines := strings.Fields(string(data))
	for _, want := range []string{".git", "sensorhub-data/", "deploy/", "*.pem", "*.nk"} {
		if !containsArg(lines, want) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
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
