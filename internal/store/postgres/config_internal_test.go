package postgres

import (
	"testing"
	"time"
)

func TestPoolConfig(t *testing.T) {
	cases := []struct {
		name        string
		cfg         Config
		wantTimeout time.Duration
		wantMax     int32
		wantMin     int32
	}{
		{"defaults", Config{URL: "postgres://h/db"}, DefaultConnectTimeout, DefaultMaxConns, DefaultMinConns},
		{"explicit", Config{URL: "postgres://h/db", ConnectTimeout: time.Second, MaxConns: 3, MinConns: 1}, time.Second, 3, 1},
		{"url wins", Config{URL: "postgres://h/db?connect_timeout=7", ConnectTimeout: time.Second}, 7 * time.Second, DefaultMaxConns, DefaultMinConns},
		{"min capped by max", Config{URL: "postgres://h/db", MaxConns: 1}, DefaultConnectTimeout, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.setDefaults()
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			pc, err := cfg.poolConfig()
			if err != nil {
				t.Fatalf("poolConfig: %v", err)
			}
			if pc.ConnConfig.ConnectTimeout != tc.wantTimeout {
				t.Errorf("ConnectTimeout = %v, want %v", pc.ConnConfig.ConnectTimeout, tc.wantTimeout)
			}
			if pc.MaxConns != tc.wantMax || pc.MinConns != tc.wantMin {
				t.Errorf("MaxConns/MinConns = %d/%d, want %d/%d", pc.MaxConns, pc.MinConns, tc.wantMax, tc.wantMin)
			}
		})
	}
}
