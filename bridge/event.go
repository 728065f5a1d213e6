package bridge

import (
	"strconv"
	"time"
	"unicode/utf8"

	"sensorhub/messages"
)

// decodeEvent is messages.DecodeEvent, the same answer for every input, with
// a fast path for the events the sensor role writes. encoding/json spends
// about 12 µs on one event (a reflective walk, two time parses, a dozen
// allocations), the largest share of the bridge's CPU under load; the fast
// path reads the compact, escape-free form that json.Marshal (and the sensor
// role's hand-written encoder) produce in about a tenth of that. Whatever it
// is not sure to read exactly as encoding/json would (whitespace, escapes,
// unknown or repeated members, null, numbers of another form, invalid
// UTF-8, ...) goes to messages.DecodeEvent, which then decides, so an event
// is relayed or dead-lettered exactly as before.
func decodeEvent(data []byte) (messages.TestCompleted, error) {
	if ev, ok := decodeEventFast(data); ok {
		return ev, ev.Validate()
	}
	return messages.DecodeEvent(data)
}

// Members of an event, as bits, to refuse one given twice.
const (
	mSchema = 1 << iota
	mEventID
	mType
	mTestID
	mSensorType
	mSensorID
	mOwner
	mStatus
	mVerdict
	mSource
	mReason
	mStats
	mCreatedAt
	mCompletedAt
)

// Members of the stats object, as bits.
const (
	sCount = 1 << iota
	sMin
	sMax
	sMean
	sStdDev
	sNoise
	sDrift
	sSpikes
	sOutOfRange
	sReferenceError
)

// eventScanner reads one compact JSON document; ok turns false at the first
// thing the fast path does not handle.
type eventScanner struct {
	b  []byte
	i  int
	ok bool
}

// decodeEventFast reads data when it is a compact JSON object of the
// event's own members only, each once, with plain values; ok is false
// otherwise (not necessarily an error: the full decoder decides).
func decodeEventFast(data []byte) (ev messages.TestCompleted, ok bool) {
	s := eventScanner{b: data, ok: true}
	if !s.eat('{') {
		return ev, false
	}
	var seen int
	for first := true; s.ok; first = false {
		if s.peek('}') {
			if first {
				// "{}": valid, but nothing our encoder writes.
				return ev, false
			}
			s.i++
			break
		}
		if !first && !s.eat(',') {
			return ev, false
		}
		key := s.key()
		if !s.eat(':') {
			return ev, false
		}
		bit := 0
		switch string(key) {
		case "schema":
			bit = mSchema
			ev.Schema = s.integer()
		case "event_id":
			bit = mEventID
			ev.EventID = s.str()
		case "type":
			bit = mType
			ev.Type = s.str()
		case "test_id":
			bit = mTestID
			ev.TestID = s.str()
		case "sensor_type":
			bit = mSensorType
			ev.SensorType = s.str()
		case "sensor_id":
			bit = mSensorID
			ev.SensorID = s.str()
		case "owner":
			bit = mOwner
			ev.Owner = s.str()
		case "status":
			bit = mStatus
			ev.Status = s.str()
		case "verdict":
			bit = mVerdict
			ev.Verdict = s.str()
		case "source":
			bit = mSource
			ev.Source = s.str()
		case "reason":
			bit = mReason
			ev.Reason = s.str()
		case "stats":
			bit = mStats
			ev.Stats = s.stats()
		case "created_at":
			bit = mCreatedAt
			ev.CreatedAt = s.time()
		case "completed_at":
			bit = mCompletedAt
			ev.CompletedAt = s.time()
		default:
			return ev, false
		}
		if seen&bit != 0 {
			return ev, false
		}
		seen |= bit
	}
	if !s.ok || s.i != len(s.b) {
		return ev, false
	}
	return ev, true
}

func (s *eventScanner) peek(c byte) bool { return s.ok && s.i < len(s.b) && s.b[s.i] == c }

func (s *eventScanner) eat(c byte) bool {
	if s.peek(c) {
		s.i++
		return true
	}
	s.ok = false
	return false
}

// raw returns a string literal with its quotes: printable bytes only, no
// escape, valid UTF-8 (so that its value is the bytes between the quotes).
func (s *eventScanner) raw() []byte {
	if !s.eat('"') {
		return nil
	}
	b, start, ascii := s.b, s.i-1, true
	for i := s.i; i < len(b); i++ {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			continue
		}
		switch {
		case c == '"':
			s.i = i + 1
			lit := b[start:s.i]
			if !ascii && !utf8.Valid(lit) {
				s.ok = false
				return nil
			}
			return lit
		case c >= utf8.RuneSelf:
			ascii = false
		default: // a control character or an escape
			s.ok = false
			return nil
		}
	}
	s.ok = false
	return nil
}

// key returns a member name without its quotes (compared, never kept).
func (s *eventScanner) key() []byte {
	lit := s.raw()
	if len(lit) < 2 {
		return nil
	}
	return lit[1 : len(lit)-1]
}

func (s *eventScanner) str() string {
	lit := s.raw()
	if len(lit) < 2 {
		return ""
	}
	return string(lit[1 : len(lit)-1])
}

// time reads a time as encoding/json does: time.Time's UnmarshalJSON on the
// literal.
func (s *eventScanner) time() time.Time {
	var t time.Time
	lit := s.raw()
	if !s.ok {
		return t
	}
	if err := t.UnmarshalJSON(lit); err != nil {
		s.ok = false
	}
	return t
}

// number returns a JSON number literal: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// (integral: without fraction or exponent).
func (s *eventScanner) number(integral bool) []byte {
	if !s.ok {
		return nil
	}
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		s.ok = false
		return nil
	}
	if !integral {
		if i < len(b) && b[i] == '.' {
			i++
			if !digits() {
				s.ok = false
				return nil
			}
		}
		if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
			i++
			if i < len(b) && (b[i] == '+' || b[i] == '-') {
				i++
			}
			if !digits() {
				s.ok = false
				return nil
			}
		}
	}
	s.i = i
	return b[start:i]
}

// integer reads an int member as encoding/json does (ParseInt, refusing
// what overflows an int); a fraction or exponent is left to the full decoder.
func (s *eventScanner) integer() int {
	lit := s.number(true)
	if !s.ok {
		return 0
	}
	n, err := strconv.ParseInt(string(lit), 10, strconv.IntSize)
	if err != nil {
		s.ok = false
		return 0
	}
	return int(n)
}

// float reads a float64 member as encoding/json does (ParseFloat, refusing
// what is out of range).
func (s *eventScanner) float() float64 {
	lit := s.number(false)
	if !s.ok {
		return 0
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		s.ok = false
		return 0
	}
	return f
}

// stats reads the stats object (a new Stats, as encoding/json allocates one
// for the pointer).
func (s *eventScanner) stats() *messages.Stats {
	st := &messages.Stats{}
	if !s.eat('{') {
		return nil
	}
	var seen int
	for first := true; s.ok; first = false {
		if s.peek('}') {
			if first {
				s.ok = false
				return nil
			}
			s.i++
			return st
		}
		if !first && !s.eat(',') {
			return nil
		}
		key := s.key()
		if !s.eat(':') {
			return nil
		}
		bit := 0
		switch string(key) {
		case "count":
			bit = sCount
			st.Count = s.integer()
		case "min":
			bit = sMin
			st.Min = s.float()
		case "max":
			bit = sMax
			st.Max = s.float()
		case "mean":
			bit = sMean
			st.Mean = s.float()
		case "stddev":
			bit = sStdDev
			st.StdDev = s.float()
		case "noise":
			bit = sNoise
			st.Noise = s.float()
		case "drift_per_min":
			bit = sDrift
			st.DriftPerMinute = s.float()
		case "spikes":
			bit = sSpikes
			st.Spikes = s.integer()
		case "out_of_range":
			bit = sOutOfRange
			st.OutOfRange = s.integer()
		case "reference_error":
			bit = sReferenceError
			f := s.float()
			st.ReferenceError = &f
		default:
			s.ok = false
			return nil
		}
		if seen&bit != 0 {
			s.ok = false
			return nil
		}
		seen |= bit
	}
	return nil
}
