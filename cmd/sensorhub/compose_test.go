package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"sensorhub/internal/natsauth"
)

// There is no container engine here, so compose.yaml is checked by loading
// it with compose-go, the loader of the docker compose CLI itself (anchors,
// merge keys, short and long syntax all resolved as compose would): every
// command, flag and SENSORHUB_* variable it gives the sensorhub image must
// exist in this binary, every service must have a health check and a
// restart policy, and every stateful service must keep its data on a
// volume that its user can write.

// composeCheck collects what is wrong with one project directory (its
// compose.yaml, Dockerfile and .dockerignore), so that the same checks run
// on the real files and on broken copies of them.
type composeCheck struct {
	t        *testing.T
	dir      string
	p        *types.Project
	problems []string
}

func (c *composeCheck) errorf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// checkProject loads dir/compose.yaml and runs every check on it.
func checkProject(t *testing.T, dir string) []string {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir), cli.WithDiscardEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		return []string{fmt.Sprintf("compose-go does not load compose.yaml: %v", err)}
	}
	c := &composeCheck{t: t, dir: dir, p: p}
	c.services()
	c.natsIdentities()
	c.kafka()
	c.postgres()
	c.sensorhubVolumes()
	c.dockerignore()
	return c.problems
}

func TestComposeMatchesTheBinary(t *testing.T) {
	for _, p := range checkProject(t, "../..") {
		t.Error(p)
	}
}

// Each check finds the fault it is there for: a copy of the project with
// one thing broken fails with that thing named.
func TestComposeCheckFindsFaults(t *testing.T) {
	cases := []struct {
		name string
		file string
		edit []string // old, new pairs, each old replaced once in file
		want string   // in one of the problems
	}{
		{"kafka log off the volume", "compose.yaml", []string{"KAFKA_LOG_DIRS: /var/lib/kafka/data", "KAFKA_LOG_DIRS: /tmp/kraft-combined-logs"}, "KAFKA_LOG_DIRS /tmp/kraft-combined-logs is not on a volume"},
		{"no KAFKA_LOG_DIRS", "compose.yaml", []string{"      KAFKA_LOG_DIRS: /var/lib/kafka/data\n", ""}, "KAFKA_LOG_DIRS is not set"},
		{"kafka volume where its user cannot write", "compose.yaml", []string{"KAFKA_LOG_DIRS: /var/lib/kafka/data", "KAFKA_LOG_DIRS: /kafka/log", "kafka-data:/var/lib/kafka/data]", "kafka-data:/kafka]"}, "which the image does not create for its user"},
		{"kafka as another user", "compose.yaml", []string{"kafka-data:/var/lib/kafka/data]", "kafka-data:/var/lib/kafka/data]\n    user: \"0\""}, "not the image's appuser"},
		{"kafka on all interfaces", "compose.yaml", []string{`"127.0.0.1:29092:29092"`, `"29092:29092"`}, "want loopback 127.0.0.1:29092"},
		{"postgres data off the volume", "compose.yaml", []string{"pg-data:/var/lib/postgresql/data]", "pg-data:/srv/pg]"}, "PGDATA /var/lib/postgresql/data) off its volumes"},
		{"PGDATA off the volume", "compose.yaml", []string{"POSTGRES_DB: sensorhub\n", "POSTGRES_DB: sensorhub\n      PGDATA: /tmp/pg\n"}, "PGDATA /tmp/pg) off its volumes"},
		{"nats store off the volume", "compose.yaml", []string{"volumes: [nats-data:/data]", "volumes: [nats-data:/var/nats]"}, "store_dir /data/jetstream is not on a volume"},
		{"jwt keys volume not owned by the image's user", "Dockerfile", []string{"COPY --from=build --chown=65532:65532 /out/keys /keys\n", ""}, "mounts volume jwt-keys at /keys, which the Dockerfile does not create owned by 65532:65532"},
		{"a role run as another user", "compose.yaml", []string{"command: [\"sensor\"]", "command: [\"sensor\"]\n    user: \"1000\""}, "service sensor runs as user \"1000\""},
		{"an unknown flag", "compose.yaml", []string{`"--jwt-key-file"`, `"--jwt-key-path"`}, "has no flag --jwt-key-path"},
		{"no restart policy", "compose.yaml", []string{"    restart: unless-stopped\n    healthcheck:\n      test: [\"CMD\", \"pg_isready\"", "    healthcheck:\n      test: [\"CMD\", \"pg_isready\""}, "service postgres has no restart policy"},
		{"a role without metrics", "compose.yaml", []string{"    SENSORHUB_METRICS_LISTEN: \":9464\"\n", ""}, "serves no Prometheus metrics"},
		{"dockerignore lets .git in", ".dockerignore", []string{"\n.git\n", "\n"}, ".dockerignore does not leave out .git"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"compose.yaml", "Dockerfile", ".dockerignore"} {
				data, err := os.ReadFile(filepath.Join("../..", f))
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; f == tc.file && i+1 < len(tc.edit); i += 2 {
					if !strings.Contains(string(data), tc.edit[i]) {
						t.Fatalf("%s no longer contains %q: update the case", f, tc.edit[i])
					}
					data = []byte(strings.Replace(string(data), tc.edit[i], tc.edit[i+1], 1))
				}
				if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			problems := checkProject(t, dir)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("no problem about %q found; problems: %q", tc.want, problems)
			}
		})
	}
}

// isSensorhub says whether a service runs this repository's image.
func isSensorhub(svc types.ServiceConfig) bool {
	return svc.Build != nil || strings.HasPrefix(svc.Image, "sensorhub")
}

func envOf(svc types.ServiceConfig, name string) string {
	if v := svc.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// flagsOf returns the flag set of a subcommand ("user add" for user), or
// nil for an unknown one.
func flagsOf(name string) *flag.FlagSet {
	c, ok := commands()[name]
	if !ok {
		return nil
	}
	fs, _ := c.flags()
	return fs
}

// checkArgs checks a sensorhub command line against the binary's flags.
func (c *composeCheck) checkArgs(where string, args []string) {
	if len(args) == 0 {
		c.errorf("%s: empty sensorhub command", where)
		return
	}
	fs := flagsOf(args[0])
	if fs == nil {
		c.errorf("%s: unknown subcommand %q", where, args[0])
		return
	}
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if fs.Lookup(name) == nil {
			c.errorf("%s: sensorhub %s has no flag --%s", where, args[0], name)
		}
	}
}

func (c *composeCheck) services() {
	roles := map[string]bool{}
	for name, svc := range c.p.Services {
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			c.errorf("service %s has no health check", name)
		}
		if svc.Restart == "" || svc.Restart == types.RestartPolicyNo {
			c.errorf("service %s has no restart policy", name)
		}
		if !isSensorhub(svc) {
			continue // a third-party image
		}
		c.checkArgs("service "+name, svc.Command)
		if len(svc.Command) == 0 {
			continue
		}
		role := svc.Command[0]
		roles[role] = true
		fs := flagsOf(role)
		for e := range svc.Environment {
			if !strings.HasPrefix(e, EnvPrefix) || fs == nil {
				continue
			}
			flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(e, EnvPrefix), "_", "-"))
			if fs.Lookup(flagName) == nil || EnvName(flagName) != e {
				c.errorf("service %s: %s sets no flag of sensorhub %s", name, e, role)
			}
		}
		// The image has no shell or curl: its health check must be the
		// binary's own health command, with flags that exist.
		if svc.HealthCheck == nil {
			continue
		}
		hc := svc.HealthCheck.Test
		if len(hc) < 3 || hc[0] != "CMD" || hc[1] != "/sensorhub" {
			c.errorf("service %s: health check %v does not run /sensorhub", name, hc)
			continue
		}
		c.checkArgs("health check of "+name, hc[2:])
	}
	for _, role := range []string{"edge", "auth", "sensor", "bridge"} {
		if !roles[role] {
			c.errorf("compose.yaml runs no %s service", role)
		}
	}
	for _, dep := range []string{"nats", "postgres", "kafka"} {
		if _, ok := c.p.Services[dep]; !ok {
			c.errorf("compose.yaml has no %s service", dep)
		}
	}
}

// onVolume returns the named volume of svc that holds dir (mounted at dir
// or at a parent of it).
func onVolume(svc types.ServiceConfig, dir string) (types.ServiceVolumeConfig, bool) {
	dir = filepath.Clean(dir)
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeVolume || v.Source == "" {
			continue
		}
		if t := filepath.Clean(v.Target); dir == t || strings.HasPrefix(dir, t+"/") {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

// rel is a file reference of the project relative to its directory, as
// compose.yaml wrote it ("./deploy/nats/auth.nk"); compose-go makes them
// absolute.
func (c *composeCheck) rel(ref string) string {
	r, err := filepath.Rel(c.p.WorkingDir, ref)
	if err != nil {
		return ref
	}
	return "./" + filepath.ToSlash(r)
}

// natsIdentities: the NATS server runs the configuration that the compose
// file's own `sensorhub nats-config` command writes, with JetStream on disk
// fsynced, its store on the NATS volume, and monitoring for its health
// check on loopback; every role connects with its own nkey from a secret
// that only it mounts; only auth has the callout's keys.
func (c *composeCheck) natsIdentities() {
	t := c.t
	data, err := os.ReadFile(filepath.Join(c.dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The command lives in a comment, which no loader keeps.
	m := regexp.MustCompile(`go run ./cmd/sensorhub (nats-config [^\n]*)`).FindStringSubmatch(string(data))
	if m == nil {
		c.errorf("compose.yaml does not say how to write its NATS configuration")
		return
	}
	args := strings.Fields(m[1])
	c.checkArgs("the nats-config command", args)
	out := t.TempDir()
	for i, a := range args {
		if a == "--out" && i+1 < len(args) {
			args[i+1] = out
		}
	}
	if code, _, errs := runCmd(t, "", nil, args...); code != 0 {
		t.Fatalf("%v: %s", args, errs)
	}
	written := func(ref string) string {
		ref = c.rel(ref)
		if !strings.HasPrefix(ref, "./deploy/nats/") {
			c.errorf("%s is not under the nats-config --out directory ./deploy/nats", ref)
		}
		p := filepath.Join(out, filepath.Base(ref))
		if _, err := os.Stat(p); err != nil {
			c.errorf("compose refers to %s, which nats-config does not write", ref)
		}
		return p
	}
	n := c.p.Services["nats"]
	var confTarget string
	for _, cf := range n.Configs {
		if cf.Source == "nats-conf" {
			confTarget = cf.Target
		}
	}
	conf, err := os.ReadFile(written(c.p.Configs["nats-conf"].File))
	if err != nil {
		c.errorf("the NATS configuration: %v", err)
		return
	}
	for _, want := range []string{"sync_interval: always", `http: "127.0.0.1:8222"`, "auth_callout"} {
		if !strings.Contains(string(conf), want) {
			c.errorf("the NATS configuration lacks %s:\n%s", want, conf)
		}
	}
	if sd := regexp.MustCompile(`store_dir:\s*"([^"]+)"`).FindStringSubmatch(string(conf)); sd == nil {
		c.errorf("the NATS configuration has no JetStream store_dir")
	} else if _, ok := onVolume(n, sd[1]); !ok {
		c.errorf("NATS' JetStream store_dir %s is not on a volume of the nats service (%v): the stream would be lost with the container", sd[1], n.Volumes)
	}
	// The nats image runs as root, which owns a fresh named volume; any
	// other user would find it read-only.
	if n.User != "" {
		c.errorf("nats runs as user %q: its store volume is root's", n.User)
	}
	if confTarget == "" || !slices.Contains(n.Command, confTarget) || !strings.Contains(strings.Join(n.HealthCheck.Test, " "), "127.0.0.1:8222") {
		c.errorf("nats must run the generated config and check its health on the monitoring port: %v %v", n.Command, n.HealthCheck.Test)
	}

	owner := map[string]string{} // secret -> the one service mounting it
	for name, svc := range c.p.Services {
		for _, sec := range svc.Secrets {
			if prev, ok := owner[sec.Source]; ok {
				c.errorf("secret %s is mounted by %s and %s", sec.Source, prev, name)
			}
			owner[sec.Source] = name
		}
	}
	for sec, def := range c.p.Secrets {
		written(def.File)
		if owner[sec] == "" {
			c.errorf("secret %s is mounted by nobody", sec)
		}
	}
	mounts := func(svc types.ServiceConfig, sec string) bool {
		return slices.ContainsFunc(svc.Secrets, func(s types.ServiceSecretConfig) bool { return s.Source == sec })
	}
	for _, role := range natsauth.Roles {
		svc, ok := c.p.Services[role]
		if !ok {
			continue
		}
		// Every role serves its metrics to the network (the edge also at
		// GET /metrics on its HTTP port); without it nothing can graph or
		// alert on the breakers and the backlog.
		if ml := envOf(svc, "SENSORHUB_METRICS_LISTEN"); ml == "" {
			c.errorf("%s serves no Prometheus metrics: set SENSORHUB_METRICS_LISTEN", role)
		} else if _, port, err := net.SplitHostPort(ml); err != nil || port == "" || port == "0" {
			c.errorf("%s: SENSORHUB_METRICS_LISTEN %q is not host:port with a fixed port", role, ml)
		}
		file := envOf(svc, "SENSORHUB_NATS_NKEY_FILE")
		sec := strings.TrimPrefix(file, "/run/secrets/")
		if file == sec || !mounts(svc, sec) || filepath.Base(c.p.Secrets[sec].File) != natsauth.RoleFile(role) {
			c.errorf("%s connects with %q: want its own secret holding %s", role, file, natsauth.RoleFile(role))
		}
		for _, s := range svc.Secrets {
			base := filepath.Base(c.p.Secrets[s.Source].File)
			if (base == natsauth.IssuerFile || base == natsauth.XKeyFile) && role != "auth" {
				c.errorf("%s mounts the callout key %s", role, base)
			}
		}
	}
	a := c.p.Services["auth"]
	for e, file := range map[string]string{"SENSORHUB_CALLOUT_ISSUER_FILE": natsauth.IssuerFile, "SENSORHUB_CALLOUT_XKEY_FILE": natsauth.XKeyFile} {
		sec := strings.TrimPrefix(envOf(a, e), "/run/secrets/")
		if filepath.Base(c.p.Secrets[sec].File) != file {
			c.errorf("auth: %s = %q, want the secret holding %s", e, envOf(a, e), file)
		}
	}
}

// kafkaImageDirs are the directories the apache/kafka image creates for
// its user (appuser; its Dockerfile chowns /var/lib/kafka recursively and
// declares /var/lib/kafka/data a VOLUME). A named volume mounted there
// starts with that owner; mounted anywhere else it starts as root's, and
// Kafka cannot write its log.
var kafkaImageDirs = []string{"/var/lib/kafka", "/var/lib/kafka/data"}

// kafka: KRaft mode; every log directory on a volume the image's user
// owns (the image's default, /tmp/kraft-combined-logs, is inside the
// container and lost when it is recreated, with every event); the host's
// tools reach it on a listener published on loopback only.
func (c *composeCheck) kafka() {
	k, ok := c.p.Services["kafka"]
	if !ok {
		return
	}
	if envOf(k, "KAFKA_PROCESS_ROLES") == "" {
		c.errorf("kafka must run in KRaft mode (KAFKA_PROCESS_ROLES)")
	}
	dirs := envOf(k, "KAFKA_LOG_DIRS")
	if dirs == "" {
		c.errorf("KAFKA_LOG_DIRS is not set: Kafka keeps its log in the container (/tmp/kraft-combined-logs) and loses it with the container")
	}
	for _, dir := range strings.Split(dirs, ",") {
		if dir = strings.TrimSpace(dir); dir == "" {
			continue
		}
		v, ok := onVolume(k, dir)
		if !ok {
			c.errorf("KAFKA_LOG_DIRS %s is not on a volume (%v): Kafka would lose its events with the container", dir, k.Volumes)
			continue
		}
		if !slices.Contains(kafkaImageDirs, filepath.Clean(v.Target)) {
			c.errorf("kafka's volume %s is mounted at %s, which the image does not create for its user: a fresh volume there is root's and Kafka cannot write it", v.Source, v.Target)
		}
	}
	if k.User != "" {
		c.errorf("kafka runs as user %q, not the image's appuser who owns its data directory", k.User)
	}
	hostListener := false
	for _, p := range k.Ports {
		if p.Target != 29092 {
			continue
		}
		if p.HostIP != "127.0.0.1" || p.Published != "29092" {
			c.errorf("kafka's host listener is published on %q:%s, want loopback 127.0.0.1:29092 (it has no authentication)", p.HostIP, p.Published)
		}
		hostListener = true
	}
	if !hostListener || !strings.Contains(envOf(k, "KAFKA_ADVERTISED_LISTENERS"), "://127.0.0.1:29092") {
		c.errorf("kafka has no listener for the host's tools on loopback 127.0.0.1:29092: %q, ports %v", envOf(k, "KAFKA_ADVERTISED_LISTENERS"), k.Ports)
	}
}

// postgres: PGDATA (or the image's default for its major version) is on a
// volume. The official image starts as root, makes PGDATA the postgres
// user's and then drops to it, so a `user:` would skip that chown.
func (c *composeCheck) postgres() {
	pg, ok := c.p.Services["postgres"]
	if !ok {
		return
	}
	dir := envOf(pg, "PGDATA")
	if dir == "" {
		dir = "/var/lib/postgresql/data"
		_, tag, _ := strings.Cut(pg.Image, ":") // "16-alpine"
		digits := tag[:len(tag)-len(strings.TrimLeft(tag, "0123456789"))]
		if major, _ := strconv.Atoi(digits); major >= 18 {
			dir = fmt.Sprintf("/var/lib/postgresql/%d/docker", major)
		}
	}
	if _, ok := onVolume(pg, dir); !ok {
		c.errorf("postgres keeps its data (PGDATA %s) off its volumes (%v): the database would be lost with the container", dir, pg.Volumes)
	}
	if pg.User != "" {
		c.errorf("postgres runs as user %q: the image's entrypoint must start as root to own PGDATA", pg.User)
	}
}

// sensorhubVolumes: the sensorhub image runs as the Dockerfile's last USER,
// and a service may not run it as another; every named volume a sensorhub
// service mounts is a directory the Dockerfile creates owned by that user
// (COPY --chown), since a fresh volume takes the owner of the image's
// directory and would otherwise be root's.
func (c *composeCheck) sensorhubVolumes() {
	data, err := os.ReadFile(filepath.Join(c.dir, "Dockerfile"))
	if err != nil {
		c.errorf("no Dockerfile: %v", err)
		return
	}
	s := string(data)
	if i := strings.LastIndex(s, "\nFROM "); i >= 0 {
		s = s[i:] // the runtime stage
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(s, -1)
	if len(users) == 0 {
		c.errorf("the Dockerfile's runtime stage sets no USER")
		return
	}
	user := users[len(users)-1][1]
	owned := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^COPY\s+.*--chown=(\S+)\s+.*\s(\S+)\s*$`).FindAllStringSubmatch(s, -1) {
		if m[1] == user {
			owned[filepath.Clean(m[2])] = true
		}
	}
	for name, svc := range c.p.Services {
		if !isSensorhub(svc) {
			continue
		}
		if svc.User != "" && svc.User != user {
			c.errorf("service %s runs as user %q, not the image's %s who owns its directories", name, svc.User, user)
		}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeVolume && !owned[filepath.Clean(v.Target)] {
				c.errorf("service %s mounts volume %s at %s, which the Dockerfile does not create owned by %s: the role could not write it", name, v.Source, v.Target, user)
			}
		}
	}
}

// dockerignore: the build context leaves out what must never be in an
// image.
func (c *composeCheck) dockerignore() {
	data, err := os.ReadFile(filepath.Join(c.dir, ".dockerignore"))
	if err != nil {
		c.errorf("no .dockerignore: the build context would carry .git, dev's data dir and any key: %v", err)
		return
	}
	lines := strings.Fields(string(data))
	for _, want := range []string{".git", "sensorhub-data/", "deploy/", "*.pem", "*.nk"} {
		if !slices.Contains(lines, want) {
			c.errorf(".dockerignore does not leave out %s", want)
		}
	}
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
