package app

import "testing"

func TestByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want ByteSize
		str  string
	}{
		{"0", 0, "0"},
		{"1234", 1234, "1234B"},
		{"256MiB", 256 << 20, "256MiB"},
		{" 1GiB ", 1 << 30, "1GiB"},
		{"3 KiB", 3 << 10, "3KiB"},
		{"1536MiB", 1536 << 20, "1536MiB"},
		{"7B", 7, "7B"},
	}
	for _, tc := range cases {
		var b ByteSize
		if err := b.Set(tc.in); err != nil || b != tc.want {
			t.Errorf("Set(%q) = %d, %v; want %d", tc.in, b, err, tc.want)
		}
		if s := b.String(); s != tc.str {
			t.Errorf("ByteSize(%d).String() = %q, want %q", b, s, tc.str)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5GiB", "12MB", "1TiB", "9999999999999GiB"} {
		var b ByteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) = %d, want an error", bad, b)
		}
	}
}
