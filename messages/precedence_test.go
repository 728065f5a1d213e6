package messages

import (
	"strings"
	"testing"
)

func TestCallerToken(t *testing.T) {
	long := strings.Repeat("a", MaxTokenLen+1)
	tests := []struct {
		name, header, field, want string
	}{
		{"header wins", "Bearer hdr", "body", "hdr"},
		{"scheme in any case", "bearer hdr", "", "hdr"},
		{"body when no header", "", "body", "body"},
		{"neither", "", "", ""},
		{"a header that is not bearer refuses, not falls back", "Basic abc", "body", ""},
		{"too long in the header", "Bearer " + long, "", ""},
		{"too long in the body", "", long, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CallerToken(tt.header, tt.field); got != tt.want {
				t.Errorf("CallerToken(%q, %q) = %q, want %q", tt.header, tt.field, got, tt.want)
			}
		})
	}
}

func TestUseIdempotencyKey(t *testing.T) {
	tests := []struct {
		name, body, header, want string
		wantErr                  bool
	}{
		{"header wins", "from-body", "from-header", "from-header", false},
		{"no header keeps the body's", "from-body", "", "from-body", false},
		{"neither", "", "", "", false},
		{"a bad header is refused", "from-body", "has space", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := SubmitTest{SensorType: "light", SensorID: DefaultSensorID, IntervalMS: DefaultIntervalMS, IdempotencyKey: tt.body}
			err := s.UseIdempotencyKey(tt.header)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && s.IdempotencyKey != tt.want {
				t.Errorf("key = %q, want %q", s.IdempotencyKey, tt.want)
			}
		})
	}
}
