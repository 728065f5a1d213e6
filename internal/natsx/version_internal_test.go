package natsx

import (
	"regexp"
	"runtime/debug"
	"testing"
)

// The micro protocol refuses a service whose version is not semantic
// (its own pattern, abridged to what sensorhub produces).
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

func TestVersionOf(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "1ce95d0e1b2c3d4e5f60718293a4b5c6d7e8f901"
	for _, c := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "0.0.0-devel"},
		{"go test or go run", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "0.0.0-devel"},
		{"a release tag", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.2"}, Settings: vcs(rev, "false")}, "1.4.2"},
		{"a pseudo-version of a dirty tree", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202015204-1ce95d0e1b2c+dirty"}},
			"0.0.0-20261202015204-1ce95d0e1b2c+dirty"},
		{"only a revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")}, "0.0.0-devel+1ce95d0e1b2c"},
		{"only a revision, modified", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")}, "0.0.0-devel+1ce95d0e1b2c.dirty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := versionOf(c.info)
			if got != c.want {
				t.Errorf("versionOf = %q, want %q", got, c.want)
			}
			if !semver.MatchString(got) {
				t.Errorf("%q is not a semantic version", got)
			}
		})
	}
	if v := BuildVersion(); !semver.MatchString(v) {
		t.Errorf("BuildVersion() = %q, not a semantic version", v)
	}
}
