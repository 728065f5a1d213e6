package edge

import (
	"net/http"

	"sensorhub/messages"
)

// handleBridgeStats is GET /kafka/stats: the bridge tier's report, which
// whichever bridge answers gathers from every bridge instance.
func (s *Server) handleBridgeStats(w http.ResponseWriter, r *http.Request) {
	msg, err := s.call(r.Context(), s.bridge, s.subj.BridgeStats(), nil, nil, &messages.BridgeStats{})
	if err != nil {
		s.fail(w, r, s.bridge, messages.ErrBridgeUnavailable, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, msg.Data)
}
