package edge

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"sensorhub/messages"
)

// writeJSON answers status with body, which must already be JSON.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeValue answers status with v encoded as JSON.
func writeValue(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, errInternal)
		return
	}
	writeJSON(w, status, b)
}

// writeError answers the envelope with its code's status. Rate limited and
// overloaded answers carry Retry-After (the envelope's, or 1 second).
func writeError(w http.ResponseWriter, e *messages.Error) {
	retry := e.RetryAfter
	if retry <= 0 && (e.Code == messages.CodeRateLimited || e.Code == messages.CodeOverloaded) {
		retry = 1
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	writeJSON(w, e.HTTPStatus(), e.JSON())
}

// readBody reads the whole body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *messages.Error) {
	if r.ContentLength > limit {
		return nil, bodyTooLarge(limit)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return nil, bodyTooLarge(limit)
	case err != nil:
		return nil, errReadBody
	}
	return body, nil
}

// bodyTooLarge refuses a body past limit bytes (built only then: readBody
// runs for every submission).
func bodyTooLarge(limit int64) *messages.Error {
	return messages.NewError(messages.CodeBodyTooLarge, "body larger than "+strconv.FormatInt(limit, 10)+" bytes")
}
