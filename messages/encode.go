package messages

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// The sensor role encodes two documents per test: the evaluation (stored as
// the test's result) and the completed event (the outbox payload). With
// encoding/json they cost a reflective walk each, about a twentieth of the
// sensor role's CPU under load, so the event and its parts are written by
// hand here, next to their types. The bytes are exactly those encoding/json
// produces (same member order, omitempty, float format and HTML-safe string
// escaping); encode_test.go holds them to that, and fills every field of the
// types by reflection so that a field added to a type but not here fails.

// errNotFinite refuses a NaN or infinite number, as encoding/json does.
var errNotFinite = errors.New("json: unsupported value: NaN or infinity")

// Encode returns the JSON payload of the event: the bytes of
// json.Marshal(e), without reflection.
func (e TestCompleted) Encode() ([]byte, error) {
	b := make([]byte, 0, 640)
	b = append(b, `{"schema":`...)
	b = strconv.AppendInt(b, int64(e.Schema), 10)
	b = append(b, `,"event_id":`...)
	b = AppendJSONString(b, e.EventID)
	b = append(b, `,"type":`...)
	b = AppendJSONString(b, e.Type)
	b = append(b, `,"test_id":`...)
	b = AppendJSONString(b, e.TestID)
	b = append(b, `,"sensor_type":`...)
	b = AppendJSONString(b, e.SensorType)
	b = append(b, `,"sensor_id":`...)
	b = AppendJSONString(b, e.SensorID)
	b = append(b, `,"owner":`...)
	b = AppendJSONString(b, e.Owner)
	b = append(b, `,"status":`...)
	b = AppendJSONString(b, e.Status)
	if e.Verdict != "" {
		b = append(b, `,"verdict":`...)
		b = AppendJSONString(b, e.Verdict)
	}
	if e.Source != "" {
		b = append(b, `,"source":`...)
		b = AppendJSONString(b, e.Source)
	}
	if e.Reason != "" {
		b = append(b, `,"reason":`...)
		b = AppendJSONString(b, e.Reason)
	}
	var err error
	if e.Stats != nil {
		b = append(b, `,"stats":`...)
		b, err = e.Stats.AppendJSON(b)
	}
	b = append(b, `,"created_at":`...)
	b, err = appendJSONTime(b, e.CreatedAt, err)
	b = append(b, `,"completed_at":`...)
	b, err = appendJSONTime(b, e.CompletedAt, err)
	b = append(b, '}')
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendJSON appends the bytes of json.Marshal(c) to b. The error is
// encoding/json's for a NaN or infinite number (b is then incomplete).
func (c *Check) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"name":`...)
	b = AppendJSONString(b, c.Name)
	b = append(b, `,"passed":`...)
	b = strconv.AppendBool(b, c.Passed)
	b = append(b, `,"value":`...)
	b, err = appendJSONFloat(b, c.Value, err)
	b = append(b, `,"limit":`...)
	b, err = appendJSONFloat(b, c.Limit, err)
	b = append(b, `,"detail":`...)
	b = AppendJSONString(b, c.Detail)
	return append(b, '}'), err
}

// AppendJSON appends the bytes of json.Marshal(s) to b. The error is
// encoding/json's for a NaN or infinite number (b is then incomplete).
func (s *Stats) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, int64(s.Count), 10)
	b = append(b, `,"min":`...)
	b, err = appendJSONFloat(b, s.Min, err)
	b = append(b, `,"max":`...)
	b, err = appendJSONFloat(b, s.Max, err)
	b = append(b, `,"mean":`...)
	b, err = appendJSONFloat(b, s.Mean, err)
	b = append(b, `,"stddev":`...)
	b, err = appendJSONFloat(b, s.StdDev, err)
	b = append(b, `,"noise":`...)
	b, err = appendJSONFloat(b, s.Noise, err)
	b = append(b, `,"drift_per_min":`...)
	b, err = appendJSONFloat(b, s.DriftPerMinute, err)
	b = append(b, `,"spikes":`...)
	b = strconv.AppendInt(b, int64(s.Spikes), 10)
	b = append(b, `,"out_of_range":`...)
	b = strconv.AppendInt(b, int64(s.OutOfRange), 10)
	if s.ReferenceError != nil {
		b = append(b, `,"reference_error":`...)
		b, err = appendJSONFloat(b, *s.ReferenceError, err)
	}
	return append(b, '}'), err
}

// appendJSONFloat formats f as encoding/json does for a float64: the
// shortest representation, in exponent form only below 1e-6 or from 1e21,
// with a two-digit exponent cleaned up to one ("1e-07" is "1e-7"). err
// carries the first error of the document.
func appendJSONFloat(b []byte, f float64, err error) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		if err == nil {
			err = errNotFinite
		}
		return append(b, '0'), err
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, err
}

// appendJSONTime formats t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds, quoted; a year outside 0-9999 is an error there too).
func appendJSONTime(b []byte, t time.Time, err error) ([]byte, error) {
	if y := t.Year(); (y < 0 || y > 9999) && err == nil {
		err = errors.New("Time.MarshalJSON: year outside of range [0,9999]")
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), err
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s quoted as encoding/json does by default: the
// HTML characters <, > and & escaped, control characters escaped, invalid
// UTF-8 replaced by U+FFFD, and U+2028 and U+2029 escaped.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
