package bench

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{Rate: 10, Duration: time.Second, URL: "http://127.0.0.1:8000/"}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.URL != "http://127.0.0.1:8000" || c.Sensor != DefaultSensor || c.Wait != DefaultWait || c.Connections != DefaultConnections {
		t.Errorf("defaults: %+v", c)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no load", func(c *Config) { c.Rate, c.Burst = 0, 0 }, "--rate and --duration"},
		{"negative burst", func(c *Config) { c.Burst = -1 }, "burst"},
		{"bad url", func(c *Config) { c.URL = "ftp://x" }, "url"},
		{"bad sensor", func(c *Config) { c.Sensor = "Temp!" }, "sensor"},
		{"too many readings", func(c *Config) { c.Readings = 10_001 }, "readings"},
		{"bad prefix", func(c *Config) { c.SubjectPrefix = "a.>" }, "prefix"},
		{"no pollers", func(c *Config) { c.PollWorkers = -1 }, "poll workers"},
		{"bad cpu profile url", func(c *Config) { c.CPUProfileURL = "ftp://127.0.0.1:6060" }, "cpu profile url"},
		{"cpu profile url with a query", func(c *Config) { c.CPUProfileURL = "http://127.0.0.1:6060/?seconds=5" }, "cpu profile url"},
		{"cpu profile url of the profile", func(c *Config) { c.CPUProfileURL = "http://127.0.0.1:6060/debug/pprof/profile" }, "cpu profile url"},
	} {
		c := Config{Rate: 10, Duration: time.Second}
		c.setDefaults()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %q", tc.name, err, tc.want)
		}
	}
	// The base URL is taken as given, as dev --pprof's address, or as the
	// pprof index's.
	for _, u := range []string{"http://127.0.0.1:6060", "http://127.0.0.1:6060/", "127.0.0.1:6060", "http://127.0.0.1:6060/debug/pprof/"} {
		c := Config{Rate: 10, Duration: time.Second, CPUProfileURL: u}
		c.setDefaults()
		if err := c.Validate(); err != nil || c.CPUProfileURL != "http://127.0.0.1:6060" {
			t.Errorf("cpu profile url %q: %q, %v", u, c.CPUProfileURL, err)
		}
	}
	burst := Config{Burst: 5}
	burst.setDefaults()
	if err := burst.Validate(); err != nil {
		t.Errorf("a burst alone is a load: %v", err)
	}
}
