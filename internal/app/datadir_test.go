package app

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"sensorhub/internal/testenv"
	"sensorhub/messages"
)

func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockDataDir(dir)
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: %v, want ErrDataDirInUse naming this pid", err)
	}
	unlock()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
}

// A second dev on the same data dir is refused at once, and the first
// keeps serving.
func TestSecondDevOnOneDataDirIsRefused(t *testing.T) {
	testenv.SkipIfShort(t)
	dir := t.TempDir()
	ready := make(chan DevAddrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := DevConfig{Common: Common{SubjectPrefix: messages.DefaultPrefix}, HTTP: "127.0.0.1:0", DataDir: dir,
		NATSListen: "127.0.0.1:0", KafkaListen: "127.0.0.1:0", Ready: ready}
	go func() { done <- RunDev(ctx, cfg, discardLogger()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("first dev: %v", err)
		}
	})
	var addrs DevAddrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("first dev stopped: %v", err)
	}
	second := cfg
	second.Ready = nil
	if err := RunDev(t.Context(), second, discardLogger()); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second dev on the same data dir: %v, want ErrDataDirInUse", err)
	}
	resp, err := http.Get("http://" + addrs.HTTP + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the first dev's /healthz: %d", resp.StatusCode)
	}
}
