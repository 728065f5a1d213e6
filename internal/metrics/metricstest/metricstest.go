// Package metricstest reads a /metrics endpoint back in tests: Scrape
// fetches and parses the text format, Promtool lints it with
// `promtool check metrics`.
package metricstest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Samples are the samples of one scrape, keyed by name and labels as the
// text format writes them (labels sorted by name): `name{a="1",b="2"}`,
// or `name` without labels.
type Samples map[string]float64

// Key is the key of the sample name{labels}.
func Key(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Get is the value of name{labels}, and whether it was there.
func (s Samples) Get(name string, labels map[string]string) (float64, bool) {
	v, ok := s[Key(name, labels)]
	return v, ok
}

// Value is the value of name{labels}, 0 when absent.
func (s Samples) Value(name string, labels map[string]string) float64 {
	return s[Key(name, labels)]
}

// Sum adds every sample of name whose labels include match.
func (s Samples) Sum(name string, match map[string]string) float64 {
	var sum float64
	for k, v := range s {
		n, labels := parseKey(k)
		if n != name {
			continue
		}
		ok := true
		for mk, mv := range match {
			if labels[mk] != mv {
				ok = false
				break
			}
		}
		if ok {
			sum += v
		}
	}
	return sum
}

func parseKey(k string) (string, map[string]string) {
	i := strings.IndexByte(k, '{')
	if i < 0 {
		return k, nil
	}
	labels := map[string]string{}
	rest := k[i+1 : len(k)-1]
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			break
		}
		name := rest[:eq]
		val, tail, err := unquote(rest[eq+1:])
		if err != nil {
			break
		}
		labels[name] = val
		rest = strings.TrimPrefix(tail, ",")
	}
	return k[:i], labels
}

// unquote reads one quoted label value off the front of s.
func unquote(s string) (string, string, error) {
	if s == "" || s[0] != '"' {
		return "", s, fmt.Errorf("no quote in %q", s)
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			return v, s[i+1:], err
		}
	}
	return "", s, fmt.Errorf("unterminated %q", s)
}

// Parse reads the Prometheus text format (comments skipped).
func Parse(body []byte) (Samples, error) {
	out := Samples{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The value follows the last space outside the labels' braces.
		end := strings.LastIndexByte(line, '}')
		sp := strings.IndexByte(line[end+1:], ' ')
		if sp < 0 {
			return nil, fmt.Errorf("no value in %q", line)
		}
		key, rest := line[:end+1+sp], strings.Fields(line[end+1+sp:])
		v, err := strconv.ParseFloat(rest[0], 64)
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", line, err)
		}
		name, labels := parseKey(key)
		out[Key(name, labels)] = v
	}
	return out, sc.Err()
}

// Fetch GETs url and returns the body, failing the test on any error or
// a status other than 200.
func Fetch(t testing.TB, ctx context.Context, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return body
}

// Scrape fetches url and parses it.
func Scrape(t testing.TB, ctx context.Context, url string) Samples {
	t.Helper()
	s, err := Parse(Fetch(t, ctx, url))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return s
}

// PromtoolPath is where Debian's prometheus package puts promtool.
const PromtoolPath = "/usr/bin/promtool"

// Promtool runs `promtool check metrics` on body and fails the test with
// its findings. Without promtool the test is skipped, unless
// SENSORHUB_REQUIRE_TOOLS=1 (CI installs it: Debian package prometheus).
func Promtool(t testing.TB, ctx context.Context, what string, body []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if _, serr := os.Stat(PromtoolPath); serr == nil {
			bin = PromtoolPath
		} else if os.Getenv("SENSORHUB_REQUIRE_TOOLS") == "1" {
			t.Fatalf("promtool not found and SENSORHUB_REQUIRE_TOOLS=1: install the Debian package prometheus")
		} else {
			t.Skip("promtool not found (Debian package prometheus); set SENSORHUB_REQUIRE_TOOLS=1 to make this a failure")
		}
	}
	cmd := exec.CommandContext(ctx, bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics on %s: %v\n%s", what, err, out)
	}
}
