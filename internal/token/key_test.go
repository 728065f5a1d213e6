package token_test

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"sensorhub/internal/token"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "auth.pem")
	key, created, err := token.LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode = %04o, want 0600", fi.Mode().Perm())
		}
		di, err := os.Stat(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("key dir mode = %04o, want 0700", di.Mode().Perm())
		}
	}
	again, created, err := token.LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	if !again.Equal(key) {
		t.Error("reloaded key differs")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("key dir holds %d entries, want only the key (temp file left behind?)", len(entries))
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	dir := t.TempDir()
	if runtime.GOOS != "windows" {
		t.Run("group readable", func(t *testing.T) {
			path := filepath.Join(dir, "open.pem")
			if _, _, err := token.LoadOrCreateKey(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o640); err != nil {
				t.Fatal(err)
			}
			if _, _, err := token.LoadOrCreateKey(path); !errors.Is(err, token.ErrInsecureKeyFile) {
				t.Fatalf("err = %v, want ErrInsecureKeyFile", err)
			}
		})
	}
	t.Run("not a key", func(t *testing.T) {
		path := filepath.Join(dir, "junk.pem")
		if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := token.LoadOrCreateKey(path); err == nil {
			t.Fatal("junk loaded as a key")
		}
	})
	t.Run("PEM round trip", func(t *testing.T) {
		key := newKey(t)
		pemData, err := token.MarshalPrivateKeyPEM(key)
		if err != nil {
			t.Fatal(err)
		}
		back, err := token.ParsePrivateKeyPEM(pemData)
		if err != nil || !back.Equal(key) {
			t.Fatalf("round trip: %v", err)
		}
		if _, err := token.NewSigner(ed25519.PrivateKey("short"), token.SignerConfig{}); err == nil {
			t.Error("NewSigner accepted a short key")
		}
	})
}

func TestLoadOrCreateKeyConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.pem")
	const n = 8
	keys := make(chan ed25519.PrivateKey, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			k, _, err := token.LoadOrCreateKey(path)
			keys <- k
			errs <- err
		}()
	}
	var first ed25519.PrivateKey
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		k := <-keys
		if first == nil {
			first = k
		} else if !first.Equal(k) {
			t.Fatal("concurrent starts ended with different keys")
		}
	}
}
