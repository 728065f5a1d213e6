package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hostileStrings for every string member: HTML characters, quotes, control
// characters, invalid UTF-8, line and paragraph separators.
var hostileStrings = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr\bbs\fff",
	"nul \x00 and \x1f", "bad \xff utf8 \xc3", "sep \u2028 and \u2029", "ünïcödé °C ✓", "emoji 😀",
}

// statsCases are numbers at the edges of encoding/json's float format.
func statsCases() []*Stats {
	tiny, neg := 1e-9, math.Copysign(0, -1)
	return []*Stats{
		nil,
		{},
		{Count: 3, Min: 1e-6, Max: 123456789.123, Mean: -1e-7, StdDev: 0.1, Noise: 5e-324, DriftPerMinute: math.MaxFloat64, ReferenceError: &tiny},
		{Count: 60, Min: -40, Max: 1e21, Mean: 22.47, StdDev: 1e20, Noise: -3.5e22, DriftPerMinute: neg, Spikes: 2, OutOfRange: 1, ReferenceError: &neg},
	}
}

// The hand-written encoders produce exactly the bytes of encoding/json.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	i := 0
	for _, s := range hostileStrings {
		for _, stats := range statsCases() {
			i++
			e := TestCompleted{
				Schema: EventSchema, EventID: "e-" + s, Type: EventTypeCompleted, TestID: "t" + s,
				SensorType: "temperature", SensorID: s, Owner: s, Status: StatusCompleted,
				Verdict: s, Source: s, Reason: s, Stats: stats, CreatedAt: at,
				CompletedAt: at.Add(time.Duration(i) * time.Millisecond).In(time.FixedZone("x", 3600)),
			}
			assertSameJSON(t, fmt.Sprintf("event %d", i), e, e.Encode)
			c := Check{Name: s, Passed: i%2 == 0, Value: float64(i) * 1e-8, Limit: -3.5e22, Detail: s}
			assertSameJSON(t, fmt.Sprintf("check %d", i), c, func() ([]byte, error) { return c.AppendJSON(nil) })
			if stats != nil {
				assertSameJSON(t, fmt.Sprintf("stats %d", i), stats, func() ([]byte, error) { return stats.AppendJSON(nil) })
			}
		}
	}
}

func assertSameJSON(t *testing.T, what string, v any, encode func() ([]byte, error)) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: encoding/json: %v", what, err)
	}
	got, err := encode()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got %s (%v)\nwant %s", what, got, err, want)
	}
}

// TestEncodersCoverEveryField fills every field of each hand-encoded type
// with a value that is not zero, so that a field added to a type and
// forgotten by its encoder (or dropped by omitempty) fails here: the hand
// encoding must decode to exactly what encoding/json's decodes to.
func TestEncodersCoverEveryField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		v      any // a pointer to a fresh value of the type
		encode func(v any) ([]byte, error)
	}{
		{"TestCompleted", new(TestCompleted), func(v any) ([]byte, error) { return v.(*TestCompleted).Encode() }},
		{"Stats", new(Stats), func(v any) ([]byte, error) { return v.(*Stats).AppendJSON(nil) }},
		{"Check", new(Check), func(v any) ([]byte, error) { return v.(*Check).AppendJSON(nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			fillNonZero(t, reflect.ValueOf(tc.v).Elem(), tc.name, &n)
			want, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.encode(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			typ := reflect.TypeOf(tc.v).Elem()
			fromJSON, fromHand := reflect.New(typ), reflect.New(typ)
			if err := json.Unmarshal(want, fromJSON.Interface()); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, fromHand.Interface()); err != nil {
				t.Fatalf("hand-written encoding does not decode: %v\n%s", err, got)
			}
			if !reflect.DeepEqual(fromHand.Interface(), fromJSON.Interface()) {
				t.Fatalf("hand-written encoding decodes to\n%+v\nencoding/json's to\n%+v\n(got %s\nwant %s)",
					fromHand.Elem(), fromJSON.Elem(), got, want)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("same value, other bytes:\n got %s\nwant %s", got, want)
			}
		})
	}
}

var timeType = reflect.TypeFor[time.Time]()

// fillNonZero sets v, and everything it contains, to values that are not
// zero and differ from each other (n numbers them). A kind it does not know
// fails the test, so that a new kind of field gets a rule rather than a
// silent zero.
func fillNonZero(t *testing.T, v reflect.Value, path string, n *int) {
	t.Helper()
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s-%d <&>\u2028\"", strings.ToLower(path), *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillNonZero(t, p.Elem(), path, n)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range s.Len() {
			fillNonZero(t, s.Index(i), fmt.Sprintf("%s[%d]", path, i), n)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillNonZero(t, k, path+".key", n)
		fillNonZero(t, e, path+".value", n)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 1000*(*n), time.UTC)))
			break
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s: unexported field in a wire type", path, f.Name)
			}
			fillNonZero(t, v.Field(i), path+"."+f.Name, n)
		}
	default:
		t.Fatalf("%s: fillNonZero has no rule for kind %s; add one", path, v.Kind())
	}
	if v.IsZero() {
		t.Fatalf("%s: still zero after filling", path)
	}
}

func TestEncodeRefusesWhatEncodingJSONRefuses(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		e := TestCompleted{Stats: &Stats{Noise: f}}
		if _, err := e.Encode(); err == nil {
			t.Errorf("event with %v encoded", f)
		}
		c := Check{Limit: f}
		if _, err := c.AppendJSON(nil); err == nil {
			t.Errorf("check with %v encoded", f)
		}
	}
	e := TestCompleted{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := e.Encode(); err == nil || !strings.Contains(err.Error(), "year") {
		t.Errorf("year 10000: %v", err)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	ref := 0.12
	e := TestCompleted{
		Schema: EventSchema, EventID: "0190a0b0-c0d0-7000-8000-000000000002", Type: EventTypeCompleted,
		TestID: "0190a0b0-c0d0-7000-8000-000000000001", SensorType: "temperature", SensorID: "bench-1",
		Owner: "alice", Status: StatusCompleted, Verdict: VerdictPass, Source: SourceSimulated,
		Stats:     &Stats{Count: 60, Min: 22.31, Max: 22.74, Mean: 22.5213, StdDev: 0.0912, Noise: 0.0431, DriftPerMinute: 0.0123, ReferenceError: &ref},
		CreatedAt: time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC), CompletedAt: time.Date(2026, 11, 27, 10, 0, 0, 223456789, time.UTC),
	}
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			_, _ = e.Encode()
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(e)
		}
	})
}
