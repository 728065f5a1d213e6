package edge

import (
	"net/http"
	"sync/atomic"

	"sensorhub/messages"
)

// errEdgeOverloaded is the answer past MaxConcurrent requests in flight,
// and past the adaptive bound on submissions (limitSubmit).
var errEdgeOverloaded = &messages.Error{Code: messages.CodeOverloaded, Message: "edge overloaded, retry later", RetryAfter: 1}

// overloadedBody is errEdgeOverloaded encoded once: a refusal is the answer
// the edge gives most often when it can least afford the work.
var overloadedBody = errEdgeOverloaded.JSON()

// writeOverloaded answers errEdgeOverloaded (as writeError would).
func writeOverloaded(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Retry-After", "1")
	writeJSON(w, errEdgeOverloaded.HTTPStatus(), overloadedBody)
}

// requestStats is the edge's account of its requests, reported in its
// /health entry (messages.EdgeRequests). inFlight is raised and lowered by
// limit alone; the others only grow.
type requestStats struct {
	max                       int64
	inFlight, overloaded      atomic.Int64
	submitRetries             atomic.Int64
	submitsRecovered          atomic.Int64
	outcomeUnknown, sensorRef atomic.Int64
}

func (r *requestStats) snapshot() *messages.EdgeRequests {
	return &messages.EdgeRequests{
		InFlight:         r.inFlight.Load(),
		MaxConcurrent:    r.max,
		Overloaded:       r.overloaded.Load(),
		SubmitRetries:    r.submitRetries.Load(),
		SubmitsRecovered: r.submitsRecovered.Load(),
		OutcomeUnknown:   r.outcomeUnknown.Load(),
		SensorRefused:    r.sensorRef.Load(),
	}
}

// limit bounds the requests of next in flight at MaxConcurrent: one more
// is refused at once, before its body is read, with 503 overloaded and
// Retry-After, so that a flood costs the edge a counter and an answer, not
// a goroutine waiting on NATS and a body in memory.
func (s *Server) limit(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.stats.inFlight.Add(1) > s.stats.max {
			s.stats.inFlight.Add(-1)
			s.stats.overloaded.Add(1)
			writeOverloaded(w)
			return
		}
		defer s.stats.inFlight.Add(-1)
		next(w, r)
	}
}
