package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"sensorhub/messages"
)

// login gets a token from POST /auth/token (form-encoded, as OAuth2).
func login(ctx context.Context, c *http.Client, base, username, password string) (string, error) {
	form := url.Values{"username": {username}, "password": {password}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/auth/token", strings.NewReader(form))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrLogin, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrLogin, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w as %s: status %d: %s", ErrLogin, username, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	var tok messages.TokenReply
	if err := json.Unmarshal(data, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("%w: no access_token in %q", ErrLogin, data)
	}
	return tok.AccessToken, nil
}

// nominal is the catalogue's typical value of sensor (GET /sensor/types),
// so that generated readings pass; 20 when it cannot be read.
func nominal(ctx context.Context, c *http.Client, base, sensor string) float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sensor/types", nil)
	if err != nil {
		return 20
	}
	resp, err := c.Do(req)
	if err != nil {
		return 20
	}
	defer resp.Body.Close()
	var types messages.SensorTypesReply
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&types) != nil {
		return 20
	}
	for _, s := range types.Types {
		if s.Type == sensor {
			return s.Nominal
		}
	}
	return 20
}

// submitBody is the body of a submission for sensorID: none for the
// simulated path of the default sensor (n 0, sensorID ""), else the sensor
// id and n readings close to nominal (a smooth, healthy series; none: the
// simulated path).
func submitBody(n int, nominal float64, sensorID string) []byte {
	if n == 0 && sensorID == "" {
		return nil
	}
	if sensorID == "" {
		sensorID = "bench"
	}
	var b strings.Builder
	b.WriteString(`{"sensor_id":"` + sensorID + `"`)
	if n == 0 {
		b.WriteString(`}`)
		return []byte(b.String())
	}
	b.WriteString(`,"readings":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		v := nominal + 0.01*math.Sin(float64(i)/10)
		b.WriteString(strconv.FormatFloat(v, 'f', 4, 64))
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// submitTargets are the requests the load sends, in turn: one per sensor
// id (bench-0, bench-1...) with sensorIDs above 1, else the one request.
func submitTargets(base, sensor string, readings int, nominal float64, sensorIDs int, token string) []vegeta.Target {
	if sensorIDs <= 1 {
		return []vegeta.Target{submitTarget(base, sensor, submitBody(readings, nominal, ""), token)}
	}
	targets := make([]vegeta.Target, sensorIDs)
	for i := range targets {
		targets[i] = submitTarget(base, sensor, submitBody(readings, nominal, "bench-"+strconv.Itoa(i)), token)
	}
	return targets
}

// submitTarget is one request the load sends.
func submitTarget(base, sensor string, body []byte, token string) vegeta.Target {
	h := http.Header{messages.HeaderAuthorization: {"Bearer " + token}}
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	return vegeta.Target{Method: http.MethodPost, URL: base + "/test/sensor/" + sensor, Body: body, Header: h}
}
