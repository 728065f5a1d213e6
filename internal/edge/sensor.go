package edge

import (
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/messages"
)

// bearer returns the Authorization header when it carries a usable bearer
// token, else "".
func bearer(r *http.Request) string {
	h := r.Header.Get(messages.HeaderAuthorization)
	if messages.CallerToken(h, "") == "" {
		return ""
	}
	return h
}

// handleSubmit is POST /test/sensor/{sensor_type}: the body is checked here,
// so bad input costs no NATS trip, then forwarded to sensorhub.sensor.submit
// with the caller's Authorization and Idempotency-Key as NATS headers. A
// submission without a key gets one of the edge's (see submit), and every
// answer from then on carries the key in its Idempotency-Key header: after
// any 503 a retry with it is safe. A new or still processing test answers
// 202, a duplicate of a finished one 200, with the test's status.
//
// Its latency from admitted (limitSubmit's) to the sensor role's answer
// feeds the adaptive limit. A submission refused before it is sent (no
// token, a bad body) does not: it waited in no queue, and a flood of them
// would hide one. Nor does one whose client went away.
func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request, admitted int64) {
	var start time.Time // the dashboard's acceptance latency, only while watched
	if s.dash.Watching() {
		start = time.Now()
	}
	authz := bearer(r)
	if authz == "" {
		writeError(w, messages.ErrUnauthorized)
		return
	}
	body, rerr := readBody(w, r, s.cfg.MaxBodyBytes)
	if rerr != nil {
		writeError(w, rerr)
		return
	}
	req, err := decodeSubmit(body, r.PathValue("sensor_type"), r.Header.Values(messages.HeaderIdempotencyKey))
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	if req.IdempotencyKey == "" {
		if req.IdempotencyKey, err = newIdempotencyKey(); err != nil {
			s.log.ErrorContext(r.Context(), "new idempotency key", "err", err)
			writeError(w, errInternal)
			return
		}
	}
	w.Header().Set(messages.HeaderIdempotencyKey, req.IdempotencyKey)
	hdr := nats.Header{}
	hdr.Set(messages.HeaderAuthorization, authz)
	hdr.Set(messages.HeaderIdempotencyKey, req.IdempotencyKey)
	var acc messages.TestAccepted
	msg, err := s.submit(r.Context(), req, hdr, &acc)
	if r.Context().Err() == nil {
		s.submits.observe(admitted)
	}
	if err != nil {
		s.fail(w, r, s.sensor, errSensorRefused, err)
		return
	}
	if acc.AuthMode == messages.AuthModeOnline || acc.AuthMode == messages.AuthModeFallback {
		w.Header().Set(messages.HeaderAuthMode, acc.AuthMode)
	}
	if messages.ValidTestID(acc.TestID) {
		w.Header().Set("Location", "/test/"+acc.TestID)
	}
	status := http.StatusAccepted
	if acc.Status == messages.StatusCompleted || acc.Status == messages.StatusFailed {
		status = http.StatusOK
	}
	if !start.IsZero() {
		s.dash.ObserveAcceptance(time.Since(start))
	}
	writeJSON(w, status, msg.Data)
}

// decodeSubmit decodes and validates a submission. A non-empty
// Idempotency-Key header wins over the body's idempotency_key and is
// validated like it; more than one header is ambiguous and refused.
func decodeSubmit(body []byte, pathType string, idemKeys []string) (messages.SubmitTest, error) {
	if len(idemKeys) > 1 {
		return messages.SubmitTest{}, messages.NewError(messages.CodeBadRequest, "more than one Idempotency-Key header")
	}
	req, err := messages.DecodeSubmitTest(body, pathType)
	if err != nil {
		return messages.SubmitTest{}, err
	}
	if len(idemKeys) == 1 {
		if err := req.UseIdempotencyKey(idemKeys[0]); err != nil {
			return messages.SubmitTest{}, err
		}
	}
	return req, nil
}

// handleResult is GET /test/{test_id}: sensorhub.sensor.result with the
// caller's Authorization; the record, 404 and 403 come back as they are.
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request) {
	authz := bearer(r)
	if authz == "" {
		writeError(w, messages.ErrUnauthorized)
		return
	}
	req := messages.GetResult{TestID: r.PathValue("test_id")}
	if err := req.Validate(); err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	hdr := nats.Header{}
	hdr.Set(messages.HeaderAuthorization, authz)
	msg, err := s.call(r.Context(), s.sensor, s.subj.SensorResult(), req, hdr, &messages.TestRecord{})
	if err != nil {
		s.fail(w, r, s.sensor, messages.ErrSensorUnavailable, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, msg.Data)
}

// handleSensorTypes is GET /sensor/types: the catalogue.
func (s *Server) handleSensorTypes(w http.ResponseWriter, r *http.Request) {
	msg, err := s.call(r.Context(), s.sensor, s.subj.SensorTypes(), nil, nil, &messages.SensorTypesReply{})
	if err != nil {
		s.fail(w, r, s.sensor, messages.ErrSensorUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, msg.Data)
}
