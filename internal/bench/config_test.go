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
	} {
		c := Config{Rate: 10, Duration: time.Second}
		c.setDefaults()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %q", tc.name, err, tc.want)
		}
	}
	burst := Config{Burst: 5}
	burst.setDefaults()
	if err := burst.Validate(); err != nil {
		t.Errorf("a burst alone is a load: %v", err)
	}
}
