package natsx

import (
	"cmp"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/apispec"
	"sensorhub/messages"
)

// BuildVersion is the version of this binary, as every micro service
// reports it (`nats micro ls|info`), in the semantic-version form the micro
// protocol requires: the main module's version without its "v" (a release
// tag, or the pseudo-version go build stamps from the VCS, "+dirty" when
// the tree had changes); else, when the build recorded only a VCS
// revision, 0.0.0-devel+<revision> (".dirty" appended when modified); else
// 0.0.0-devel (go test, go run).
func BuildVersion() string {
	buildVersionOnce.Do(func() {
		info, _ := debug.ReadBuildInfo()
		buildVersion = versionOf(info)
	})
	return buildVersion
}

var (
	buildVersionOnce sync.Once
	buildVersion     string
)

// develVersion is the version of a build that recorded none.
const develVersion = "0.0.0-devel"

func versionOf(info *debug.BuildInfo) string {
	if info == nil {
		return develVersion
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return strings.TrimPrefix(v, "v")
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return develVersion
	}
	v := develVersion + "+" + rev[:min(len(rev), 12)]
	if modified == "true" {
		v += ".dirty"
	}
	return v
}

// Endpoint is one endpoint of a role's micro service. Name is the last
// subject token ("token" for sensorhub.auth.token).
type Endpoint struct {
	Name    string
	Handler micro.HandlerFunc
	// Subject, when set, is the endpoint's whole subject instead of the
	// group's "<group>.<Name>" (for a subject below another endpoint's).
	Subject string
	// PendingMsgs bounds the endpoint's subscription buffer (0: the library
	// default). A full buffer drops at the server, so handlers must hand off
	// work quickly and refuse with "overloaded" rather than block.
	PendingMsgs int
	// Stats, when set, is the endpoint's data in the service's stats
	// ($SRV.STATS, `nats micro stats`). It runs under the service's lock:
	// it must be quick and must not call the service.
	Stats func() any
}

// endpointMetadata is the metadata of the endpoint on subject
// ($SRV.INFO, `nats micro info`): the request and reply schemas and the
// AsyncAPI operation of apispec.Operations, the one description of every
// subject; nil for a subject it does not describe.
func endpointMetadata(subj messages.Subjects, subject string) map[string]string {
	op, ok := apispec.OperationOn(subj, subject)
	if !ok {
		return nil
	}
	return op.Metadata()
}

// AddService registers the micro service of role (named
// messages.Subjects.ServiceName(role)) with its endpoints under the role's
// group, e.g. sensorhub.auth.token. All instances share a queue group, so
// running more copies spreads the load. The service reports BuildVersion
// and description, and each endpoint the schemas apispec gives its
// subject.
func AddService(nc *nats.Conn, subj messages.Subjects, role, description string, endpoints ...Endpoint) (micro.Service, error) {
	cfg := micro.Config{
		Name:        subj.ServiceName(role),
		Version:     BuildVersion(),
		Description: description,
	}
	stats := map[string]func() any{}
	for _, ep := range endpoints {
		if ep.Stats != nil {
			stats[ep.Name] = ep.Stats
		}
	}
	if len(stats) > 0 {
		cfg.StatsHandler = func(e *micro.Endpoint) any {
			if f := stats[e.Name]; f != nil {
				return f()
			}
			return nil
		}
	}
	svc, err := micro.AddService(nc, cfg)
	if err != nil {
		return nil, fmt.Errorf("add %s service: %w", role, err)
	}
	g := svc.AddGroup(subj.Group(role))
	for _, ep := range endpoints {
		var opts []micro.EndpointOpt
		subject := cmp.Or(ep.Subject, subj.Group(role)+"."+ep.Name)
		if md := endpointMetadata(subj, subject); md != nil {
			opts = append(opts, micro.WithEndpointMetadata(md))
		}
		if ep.Subject != "" {
			opts = append(opts, micro.WithEndpointSubject(ep.Subject))
			if err := svc.AddEndpoint(ep.Name, ep.Handler, opts...); err != nil {
				_ = svc.Stop()
				return nil, fmt.Errorf("add endpoint %s: %w", ep.Subject, err)
			}
			continue
		}
		if ep.PendingMsgs > 0 {
			opts = append(opts, micro.WithEndpointPendingLimits(ep.PendingMsgs, ep.PendingMsgs*64*1024))
		}
		if err := g.AddEndpoint(ep.Name, ep.Handler, opts...); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("add endpoint %s.%s: %w", subj.Group(role), ep.Name, err)
		}
	}
	return svc, nil
}
