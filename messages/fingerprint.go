package messages

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
)

// fingerprintVersion is the first byte hashed: a change of the encoding
// below gets a new version, so that old and new fingerprints never match
// by accident (they differ, and a key reused across the change is refused
// rather than wrongly accepted; see Fingerprint).
const fingerprintVersion = 1

// Fingerprint identifies what a (normalized) submission asks for: its
// sensor type, sensor id, readings, interval and reference, and nothing
// else (not the idempotency key, not the token). Two submissions with the
// same fingerprint ask for the same test, so a retry under one
// idempotency key is recognised exactly, and a key reused for another
// body is refused (CodeIdempotencyReused).
//
// It is the hex SHA-256 of a canonical binary encoding: length-prefixed
// strings, the IEEE 754 bits of each number (negative zero counted as
// zero), and a flag for a reference that is absent. It does not depend on
// how the JSON was spelt (spaces, field order, 1 or 1.0).
func (r SubmitTest) Fingerprint() string {
	h := sha256.New()
	// The encoding goes through a buffer: one Write per reading would cost
	// three times the hashing itself.
	buf := make([]byte, 0, 4096)
	putUint := func(v uint64) {
		if len(buf)+8 > cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = binary.BigEndian.AppendUint64(buf, v)
	}
	putFloat := func(v float64) {
		if v == 0 {
			v = 0 // -0 and 0 are one reading
		}
		putUint(math.Float64bits(v))
	}
	putString := func(s string) {
		putUint(uint64(len(s)))
		h.Write(buf)
		buf = buf[:0]
		h.Write([]byte(s))
	}
	buf = append(buf, fingerprintVersion)
	putString(r.SensorType)
	putString(r.SensorID)
	putUint(uint64(int64(r.IntervalMS)))
	if r.Reference == nil {
		putUint(0)
	} else {
		putUint(1)
		putFloat(*r.Reference)
	}
	putUint(uint64(len(r.Readings)))
	for _, v := range r.Readings {
		putFloat(v)
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}
