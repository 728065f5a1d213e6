package acceptance

import "sensorhub/messages"

// Encode returns the evaluation as JSON, the bytes of json.Marshal(ev),
// without reflection: the sensor role stores one per test, and a reflective
// walk each cost about a twentieth of its CPU under load. encode_test.go
// holds it to encoding/json's bytes for every catalogue type and for hostile
// strings; the parts (checks, stats, strings) are messages' encoders.
func (ev *Evaluation) Encode() ([]byte, error) {
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
		b = messages.AppendJSONString(b, ev.Source)
	}
	if ev.Unit != "" {
		field("unit")
		b = messages.AppendJSONString(b, ev.Unit)
	}
	if ev.Verdict != "" {
		field("verdict")
		b = messages.AppendJSONString(b, ev.Verdict)
	}
	var err error
	if len(ev.Checks) > 0 {
		field("checks")
		b = append(b, '[')
		for i := range ev.Checks {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = ev.Checks[i].AppendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	field("stats")
	if b, err = ev.Stats.AppendJSON(b); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}
