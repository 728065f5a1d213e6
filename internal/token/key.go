package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

const pemTypePrivateKey = "PRIVATE KEY"

// LoadOrCreateKey reads the Ed25519 private key at path (PKCS#8 in PEM, as
// `openssl genpkey -algorithm ed25519` writes it). When the file does not
// exist it generates a key and writes it with mode 0600, creating the parent
// directory with mode 0700 if needed; created reports that. A file that its
// group or others may access is refused with ErrInsecureKeyFile (not checked
// on Windows, where mode bits mean nothing).
//
// Two processes starting together on one shared volume end up with the same
// key: the file appears atomically (written aside, then linked into place),
// and the loser of the race loads the winner's key.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	if path == "" {
		return nil, false, errors.New("load private key: no path")
	}
	key, err = loadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate ed25519 key: %w", err)
	}
	won, err := writeKeyExclusive(path, key)
	if err != nil {
		return nil, false, err
	}
	if !won {
		key, err = loadKey(path)
		return key, false, err
	}
	return key, true, nil
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load private key %s (mode %04o): %w", path, fi.Mode().Perm(), ErrInsecureKeyFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	key, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("load private key %s: %w", path, err)
	}
	return key, nil
}

// ParsePrivateKeyPEM parses an Ed25519 private key in PKCS#8 PEM.
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemTypePrivateKey {
		return nil, errors.New("no PKCS#8 \"PRIVATE KEY\" PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want Ed25519", k)
	}
	return key, nil
}

// MarshalPrivateKeyPEM encodes key as PKCS#8 PEM.
func MarshalPrivateKeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal PKCS#8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: der}), nil
}

// writeKeyExclusive writes key to path unless the file exists; won is false
// when another writer got there first.
func writeKeyExclusive(path string, key ed25519.PrivateKey) (won bool, err error) {
	data, err := MarshalPrivateKeyPEM(key)
	if err != nil {
		return false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*") // mode 0600
	if err != nil {
		return false, fmt.Errorf("write private key: %w", err)
	}
	tmpName := tmp.Name()
	defer func() { _ = os.Remove(tmpName) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return false, fmt.Errorf("write private key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return false, fmt.Errorf("write private key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return false, fmt.Errorf("write private key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write private key: %w", err)
	}
	// Link fails if path exists, unlike Rename: the first writer wins.
	err = os.Link(tmpName, path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}
	// No hard links on this file system: create the file exclusively
	// instead (a crash mid-write leaves a file that fails to parse, which
	// is reported rather than silently replaced).
	return writeExclusive(path, data)
}

func writeExclusive(path string, data []byte) (won bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write private key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return false, fmt.Errorf("write private key: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return false, fmt.Errorf("write private key: %w", err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("write private key: %w", err)
	}
	return true, nil
}

// KeyID is the kid of a public key: base64url (no padding) of the first 8
// bytes of its SHA-256. It is stable for a key and differs between keys.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}
