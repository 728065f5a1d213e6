package natsx

import "testing"

func TestVersionAtLeast(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{
		{"2.12.0", true}, {"2.15.2", true}, {"v2.12.1", true}, {"3.0.0", true}, {"2.12.0-beta.1", true},
		{"2.11.9", false}, {"2.9.25", false}, {"1.20.0", false}, {"", false}, {"x.y", false},
	} {
		if got := versionAtLeast(c.v, 2, 12); got != c.want {
			t.Errorf("versionAtLeast(%q, 2, 12) = %v, want %v", c.v, got, c.want)
		}
	}
}
