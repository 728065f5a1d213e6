package edge

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"sensorhub/messages"
)

// jwksCache holds the last good JWKS, served while auth does not answer so
// that clients verifying tokens keep working through an auth outage.
type jwksCache struct {
	mu   sync.Mutex
	body []byte
	at   time.Time
}

func (c *jwksCache) put(body []byte, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.body, c.at = body, at
}

func (c *jwksCache) get() ([]byte, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.body, c.at, c.body != nil
}

// handleJWKS is GET /.well-known/jwks.json: the keys from
// sensorhub.auth.jwks, or the last good ones marked "X-Cache: stale" (with
// Age) when auth fails to give them.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	msg, err := s.call(r.Context(), s.auth, s.subj.AuthJWKS(), nil, nil, nil)
	if err == nil {
		set, derr := messages.DecodeJWKS(msg.Data)
		if derr == nil {
			if len(set.Keys) > 0 {
				s.jwks.put(msg.Data, s.now())
			}
			w.Header().Set("Cache-Control", "public, max-age=60")
			writeJSON(w, http.StatusOK, msg.Data)
			return
		}
		// Not the envelope itself: a bad document from auth is our fault, not
		// the client's, and must not pass through as a 400.
		err = fmt.Errorf("decode jwks from auth: %s", derr)
	}
	if body, at, ok := s.jwks.get(); ok && r.Context().Err() == nil {
		s.log.Debug("serving cached jwks", "err", err)
		w.Header().Set("X-Cache", "stale")
		w.Header().Set("Age", strconv.Itoa(max(0, int(s.now().Sub(at).Seconds()))))
		w.Header().Set("Cache-Control", "no-cache")
		writeJSON(w, http.StatusOK, body)
		return
	}
	s.fail(w, r, s.auth, messages.ErrAuthUnavailable, err)
}
