package edge

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"sensorhub/internal/health"
	"sensorhub/internal/natsx"
	"sensorhub/messages"
)

// handleHealth is GET /health: every role asked at once (each within
// HealthTimeout, bypassing the breakers so it shows the truth), a role that
// does not answer shown "down", and every breaker of every role plus the
// edge's own. Its status is health.Summary of them all: "ok" only when every
// role is ok by the one rule. It answers 200 whatever the state: the edge
// itself serves.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeValue(w, http.StatusOK, s.Health(r.Context()))
}

// Health is what GET /health answers (the dashboard samples it too).
func (s *Server) Health(ctx context.Context) messages.EdgeHealth {
	replies := make([]messages.HealthReply, len(messages.Roles))
	var wg sync.WaitGroup
	for i, role := range messages.Roles {
		wg.Go(func() { replies[i] = s.roleHealth(ctx, role) })
	}
	wg.Wait()

	edge := s.edgeHealth()
	out := messages.EdgeHealth{
		Status:          health.Summary(append(replies, edge)...),
		Services:        make(map[string]messages.HealthReply, len(replies)+1),
		CircuitBreakers: map[string]messages.BreakerHealth{},
	}
	for _, h := range replies {
		out.Services[h.Role] = h
		for name, b := range h.CircuitBreakers {
			out.CircuitBreakers[name] = b
		}
	}
	out.Services[edge.Role] = edge
	for name, b := range edge.CircuitBreakers {
		out.CircuitBreakers[name] = b
	}
	return out
}

// roleHealth asks one role for its health; no answer (or an error answer)
// means "down".
func (s *Server) roleHealth(ctx context.Context, role string) messages.HealthReply {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HealthTimeout)
	defer cancel()
	var h messages.HealthReply
	if _, err := natsx.Request(ctx, s.nc, s.subj.Health(role), nil, nil, &h); err != nil {
		s.log.Debug("role health unavailable", "health_of", role, "err", err)
		return messages.HealthReply{
			Role:            role,
			Status:          messages.HealthDown,
			Dependencies:    map[string]messages.DependencyHealth{},
			CircuitBreakers: map[string]messages.BreakerHealth{},
		}
	}
	h.Role = role
	if h.Status == "" {
		h.Status = messages.HealthDegraded
	}
	// Roles key their breakers "<role>.<dependency>"; one that does not is
	// prefixed here so that two roles can never collide in the merged map.
	breakers := make(map[string]messages.BreakerHealth, len(h.CircuitBreakers))
	for name, b := range h.CircuitBreakers {
		if !strings.HasPrefix(name, role+".") {
			name = role + "." + name
		}
		breakers[name] = b
	}
	h.CircuitBreakers = breakers
	if h.Dependencies == nil {
		h.Dependencies = map[string]messages.DependencyHealth{}
	}
	return h
}

// edgeHealth is the edge's own entry: its NATS connection and its breakers.
func (s *Server) edgeHealth() messages.HealthReply {
	var natsErr error
	if !s.nc.IsConnected() {
		natsErr = fmt.Errorf("%w (%s)", natsx.ErrNotConnected, s.nc.Status())
	}
	s.health.Set("nats", natsErr)
	h := s.health.Report("")
	h.Requests = s.stats.snapshot()
	a := s.submits.snapshot()
	h.Requests.SubmitLimit = a.Limit
	h.Requests.SubmitInFlight = a.InFlight
	h.Requests.SubmitOverloaded = a.Refused
	h.Requests.SubmitMinLatencyMS = ms(a.MinLatency)
	h.Requests.QueueTargetMS = ms(a.Target)
	return h
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// handleHealthz is GET /healthz: liveness, 200 while the process serves.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

// handleReadyz is GET /readyz: ready while the NATS connection is up.
func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	if !s.nc.IsConnected() {
		writeError(w, errNATSDown)
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}
