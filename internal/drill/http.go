package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"sensorhub/messages"
)

// reply is an HTTP answer as a user saw it.
type reply struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
	testID  string // of an accepted submission
}

func (r reply) code() messages.Code {
	var e messages.Error
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

// String is "503 database_unavailable ("Database unavailable") in 3ms".
func (r reply) String() string {
	var e messages.Error
	if r.status >= 400 && json.Unmarshal(r.body, &e) == nil && e.Code != "" {
		return fmt.Sprintf("%d %s (%q) in %s", r.status, e.Code, e.Message, ms(r.elapsed))
	}
	return fmt.Sprintf("%d in %s", r.status, ms(r.elapsed))
}

// maxBody bounds what the drill reads of an answer.
const maxBody = 1 << 20

// do sends one request with the drill's deadline.
func (d *run) do(ctx context.Context, method, path, contentType string, body []byte, auth bool) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, d.cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.Header.Set(messages.HeaderAuthorization, "Bearer "+d.token)
	}
	start := time.Now()
	resp, err := d.cfg.HTTPClient.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, d.cfg.URL+path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read the answer: %w", method, d.cfg.URL+path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b, elapsed: time.Since(start)}, nil
}

// login logs in over HTTP as a user would (form-encoded) and keeps the
// token of a 200.
func (d *run) login(ctx context.Context) (reply, error) {
	form := url.Values{"username": {d.cfg.Username}, "password": {d.cfg.Password}}.Encode()
	r, err := d.do(ctx, http.MethodPost, "/auth/token", "application/x-www-form-urlencoded", []byte(form), false)
	if err != nil || r.status != http.StatusOK {
		return r, err
	}
	var tok messages.TokenReply
	if err := json.Unmarshal(r.body, &tok); err != nil || tok.AccessToken == "" {
		return r, fmt.Errorf("login answered 200 without a token: %s", strings.TrimSpace(string(r.body)))
	}
	d.token = tok.AccessToken
	return r, nil
}

// submit submits a test with no body (a simulated acquisition).
func (d *run) submit(ctx context.Context) (reply, error) {
	r, err := d.do(ctx, http.MethodPost, "/test/sensor/"+url.PathEscape(d.cfg.Sensor), "", nil, true)
	if err != nil {
		return r, err
	}
	if r.status == http.StatusAccepted {
		var acc messages.TestAccepted
		if err := json.Unmarshal(r.body, &acc); err != nil || acc.TestID == "" {
			return r, fmt.Errorf("submission answered 202 without a test id: %s", strings.TrimSpace(string(r.body)))
		}
		r.testID = acc.TestID
	}
	return r, nil
}

// result reads one test.
func (d *run) result(ctx context.Context, id string) (messages.TestRecord, error) {
	var rec messages.TestRecord
	r, err := d.do(ctx, http.MethodGet, "/test/"+url.PathEscape(id), "", nil, true)
	if err != nil {
		return rec, err
	}
	if r.status != http.StatusOK {
		return rec, fmt.Errorf("GET /test/%s: %s", id, r)
	}
	return rec, json.Unmarshal(r.body, &rec)
}

func (d *run) kafkaStats(ctx context.Context) (messages.BridgeStats, error) {
	var s messages.BridgeStats
	r, err := d.do(ctx, http.MethodGet, "/kafka/stats", "", nil, false)
	if err != nil {
		return s, err
	}
	if r.status != http.StatusOK {
		return s, fmt.Errorf("GET /kafka/stats: %s", r)
	}
	return s, json.Unmarshal(r.body, &s)
}

func (d *run) health(ctx context.Context) (messages.EdgeHealth, error) {
	var h messages.EdgeHealth
	r, err := d.do(ctx, http.MethodGet, "/health", "", nil, false)
	if err != nil {
		return h, err
	}
	if r.status != http.StatusOK {
		return h, fmt.Errorf("GET /health: %s", r)
	}
	return h, json.Unmarshal(r.body, &h)
}
