package sensor

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"sensorhub/messages"
)

// The processor encodes two documents per test: the evaluation (stored as
// the test's result) and the completed event (the outbox payload). With
// encoding/json they cost a reflective walk each, about a twentieth of the
// sensor role's CPU under load, so they are written by hand here. The bytes
// are exactly those encoding/json produces (same member order, omitempty,
// float format and HTML-safe string escaping); encode_test.go holds them to
// that for every catalogue type and for hostile strings.

// errNotFinite refuses a NaN or infinite number, as encoding/json does.
var errNotFinite = errors.New("json: unsupported value: NaN or infinity")

// encodeEvaluation is json.Marshal(ev).
func encodeEvaluation(ev *Evaluation) ([]byte, error) {
	b := make([]byte, 0, 256+160*len(ev.Checks))
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if ev.Source != "" {
		field("source")
		b = appendJSONString(b, ev.Source)
	}
	if ev.Unit != "" {
		field("unit")
		b = appendJSONString(b, ev.Unit)
	}
	if ev.Verdict != "" {
		field("verdict")
		b = appendJSONString(b, ev.Verdict)
	}
	var err error
	if len(ev.Checks) > 0 {
		field("checks")
		b = append(b, '[')
		for i, c := range ev.Checks {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, c.Name)
			b = append(b, `,"passed":`...)
			b = strconv.AppendBool(b, c.Passed)
			b = append(b, `,"value":`...)
			b, err = appendJSONFloat(b, c.Value, err)
			b = append(b, `,"limit":`...)
			b, err = appendJSONFloat(b, c.Limit, err)
			b = append(b, `,"detail":`...)
			b = appendJSONString(b, c.Detail)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	field("stats")
	b, err = appendStats(b, &ev.Stats, err)
	b = append(b, '}')
	if err != nil {
		return nil, err
	}
	return b, nil
}

// encodeEvent is e.Encode() (json.Marshal of the event).
func encodeEvent(e *messages.TestCompleted) ([]byte, error) {
	b := make([]byte, 0, 640)
	b = append(b, `{"schema":`...)
	b = strconv.AppendInt(b, int64(e.Schema), 10)
	b = append(b, `,"event_id":`...)
	b = appendJSONString(b, e.EventID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"test_id":`...)
	b = appendJSONString(b, e.TestID)
	b = append(b, `,"sensor_type":`...)
	b = appendJSONString(b, e.SensorType)
	b = append(b, `,"sensor_id":`...)
	b = appendJSONString(b, e.SensorID)
	b = append(b, `,"owner":`...)
	b = appendJSONString(b, e.Owner)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, e.Status)
	if e.Verdict != "" {
		b = append(b, `,"verdict":`...)
		b = appendJSONString(b, e.Verdict)
	}
	if e.Source != "" {
		b = append(b, `,"source":`...)
		b = appendJSONString(b, e.Source)
	}
	if e.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, e.Reason)
	}
	var err error
	if e.Stats != nil {
		b = append(b, `,"stats":`...)
		b, err = appendStats(b, e.Stats, err)
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

// appendStats appends a messages.Stats object; err carries the first error.
func appendStats(b []byte, s *messages.Stats, err error) ([]byte, error) {
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
// with a two-digit exponent cleaned up to one ("1e-07" is "1e-7").
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

// appendJSONString quotes s as encoding/json does by default: the HTML
// characters <, > and & escaped, control characters escaped, invalid UTF-8
// replaced by U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
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
