package natsx

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"sensorhub/messages"
)

// Version is reported by every micro service.
const Version = "1.0.0"

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

// AddService registers the micro service of role (named
// messages.Subjects.ServiceName(role)) with its endpoints under the role's
// group, e.g. sensorhub.auth.token. All instances share a queue group, so
// running more copies spreads the load.
func AddService(nc *nats.Conn, subj messages.Subjects, role, description string, endpoints ...Endpoint) (micro.Service, error) {
	cfg := micro.Config{
		Name:        subj.ServiceName(role),
		Version:     Version,
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
