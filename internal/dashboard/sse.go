package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"sensorhub/messages"
)

//go:embed static
var static embed.FS

// Paths of the page.
const (
	PathPage   = "/ui/"
	PathEvents = "/ui/events"
	PathState  = "/ui/state"
)

// writeWait bounds each write to a stream: a viewer that takes longer to
// read one sample is gone.
const writeWait = 10 * time.Second

// contentSecurityPolicy keeps the page to what the edge serves: no other
// origin is asked for anything.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Route is one of the dashboard's routes, for the edge's mux.
type Route struct {
	Pattern string
	Handler http.HandlerFunc
}

// Routes are the dashboard's routes: GET / (a redirect to the page), the
// page and its files under GET /ui/, the stream GET /ui/events and the
// snapshot GET /ui/state.
func (d *Dashboard) Routes() []Route {
	return []Route{
		{"GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, PathPage, http.StatusFound) }},
		{"GET " + PathPage, d.handleStatic},
		{"GET " + PathEvents, d.handleEvents},
		{"GET " + PathState, d.handleState},
	}
}

func writeError(w http.ResponseWriter, e *messages.Error) {
	if e.Code == messages.CodeOverloaded || e.Code == messages.CodeUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.HTTPStatus())
	_, _ = w.Write(e.JSON())
}

// handleStatic serves the embedded page: index.html for /ui/, its files by
// name, a JSON 404 for anything else.
func (d *Dashboard) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, PathPage)
	if name == "" {
		name = "index.html"
	}
	name = path.Clean(name)
	data, err := fs.ReadFile(static, "static/"+name)
	if err != nil || strings.Contains(name, "..") {
		writeError(w, messages.NewError(messages.CodeNotFound, "no such file of the dashboard: "+strconv.Quote(truncate(name, 64))))
		return
	}
	h := w.Header()
	switch path.Ext(name) {
	case ".html":
		h.Set("Content-Type", "text/html; charset=utf-8")
	case ".js":
		h.Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		h.Set("Content-Type", "text/css; charset=utf-8")
	case ".svg":
		h.Set("Content-Type", "image/svg+xml")
	default:
		h.Set("Content-Type", http.DetectContentType(data))
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// handleState is GET /ui/state: the snapshot as JSON. Without a viewer it
// takes one sample of its own (concurrent requests share the sampler);
// while the page is watched it answers the latest.
func (d *Dashboard) handleState(w http.ResponseWriter, r *http.Request) {
	snap := d.snapshot()
	if st := d.fresh(); st != nil {
		snap.State = st
	} else {
		snap.State = d.sample(r.Context())
		snap.History = append(snap.History, snap.State.Flow)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		writeError(w, messages.NewError(messages.CodeInternal, "encode the dashboard state"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// handleEvents is GET /ui/events: a server-sent event stream of one
// "snapshot" event (the latest state and the history) and a "state" event
// per sample after it. It ends when the client goes, when the viewer is
// dropped for reading too slowly, or when the dashboard closes.
func (d *Dashboard) handleEvents(w http.ResponseWriter, r *http.Request) {
	v, err := d.join()
	switch {
	case errors.Is(err, ErrTooManyViewers):
		writeError(w, messages.NewError(messages.CodeOverloaded, "too many dashboard viewers; retry later"))
		return
	case err != nil:
		writeError(w, messages.NewError(messages.CodeUnavailable, "the edge is shutting down"))
		return
	}
	defer d.leave(v)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	first, err := encodeEvent("snapshot", d.snapshot())
	if err != nil || !send(append([]byte("retry: 2000\n"), first...)) {
		return
	}
	for {
		select {
		case b := <-v.ch:
			if !send(b) {
				return
			}
		case <-v.gone:
			return
		case <-d.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// encodeEvent is one server-sent event named name with v as JSON data (a
// single line: encoding/json escapes newlines inside strings).
func encodeEvent(name string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(data)+len(name)+16)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...), nil
}
