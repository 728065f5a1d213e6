package edge

import (
	"github.com/nats-io/nats.go/micro"

	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// startService registers the edge's micro service (sensorhub-edge), so
// that discovery (`nats micro ls`, the dashboard, `sensorhub status`)
// finds every edge instance like every other role's: its health endpoint
// answers the edge's own health, and its stats carry the edge's breakers
// and their latest transitions.
func (s *Server) startService() (micro.Service, error) {
	return natsx.AddService(s.nc, s.subj, messages.RoleEdge, "sensorhub edge: the HTTP API and the dashboard",
		natsx.Endpoint{
			Name: "health",
			Handler: func(req micro.Request) {
				if err := natsx.ReplyJSON(req, s.edgeHealth()); err != nil {
					s.log.Debug("reply failed", "subject", req.Subject(), "err", err)
				}
			},
			Stats: func() any {
				return messages.HealthStats{CircuitBreakers: s.breakers.Health(), BreakerTransitions: s.breakers.Recent()}
			},
		})
}
