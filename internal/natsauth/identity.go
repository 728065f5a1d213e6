package natsauth

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"

	"sensorhub/messages"
)

// File names inside an identity directory. Each holds one nkey seed, mode
// 0600: a role's file goes to that role's process only; the issuer and
// xkey files belong to the auth role.
const (
	// IssuerFile holds the account seed that signs the user claims the
	// callout hands out. Whoever has it can admit anyone: auth only.
	IssuerFile = "callout-issuer.nk"
	// XKeyFile holds the curve seed that opens the server's callout
	// requests and seals the replies: auth only.
	XKeyFile = "callout-xkey.nk"
)

// Roles are the processes that connect to NATS with their own nkey.
var Roles = []string{messages.RoleAuth, messages.RoleSensor, messages.RoleBridge, messages.RoleEdge}

// RoleFile is the seed file of role inside an identity directory.
func RoleFile(role string) string { return role + ".nk" }

// Identities are the keys of one deployment.
type Identities struct {
	// Roles maps each of Roles to its user key pair.
	Roles map[string]nkeys.KeyPair
	// Issuer is the account key pair that signs people's user claims.
	Issuer nkeys.KeyPair
	// XKey is the curve key pair of the callout.
	XKey nkeys.KeyPair
}

// LoadOrCreate reads the identities from dir, creating any missing file
// (and dir, mode 0700). created lists the files it wrote. Existing keys
// are never replaced: rotate by deleting a file and running it again.
func LoadOrCreate(dir string) (ids *Identities, created []string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create identity dir: %w", err)
	}
	ids = &Identities{Roles: map[string]nkeys.KeyPair{}}
	load := func(name string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
		path := filepath.Join(dir, name)
		kp, err := ReadSeedFile(path)
		if err == nil {
			return kp, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if kp, err = create(); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		if err := writeSecret(path, append(seed, '\n')); err != nil {
			return nil, err
		}
		created = append(created, name)
		return kp, nil
	}
	for _, role := range Roles {
		kp, err := load(RoleFile(role), nkeys.CreateUser)
		if err != nil {
			return nil, nil, err
		}
		ids.Roles[role] = kp
	}
	if ids.Issuer, err = load(IssuerFile, nkeys.CreateAccount); err != nil {
		return nil, nil, err
	}
	if ids.XKey, err = load(XKeyFile, nkeys.CreateCurveKeys); err != nil {
		return nil, nil, err
	}
	return ids, created, nil
}

// ReadSeedFile reads one nkey seed (the first non-empty line) from path.
func ReadSeedFile(path string) (nkeys.KeyPair, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read nkey seed: %w", err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) == 0 || line[0] == '#' {
			continue
		}
		kp, err := nkeys.FromSeed(line)
		if err != nil {
			return nil, fmt.Errorf("read nkey seed %s: %w", path, err)
		}
		return kp, nil
	}
	return nil, fmt.Errorf("read nkey seed %s: no seed in the file", path)
}

// PublicKey is kp's public key (kp comes from this package: it always has one).
func PublicKey(kp nkeys.KeyPair) string {
	pk, err := kp.PublicKey()
	if err != nil {
		panic(fmt.Sprintf("nkey without a public key: %v", err))
	}
	return pk
}

// Public is what the server configuration needs of Identities: public keys only.
func (ids *Identities) Public() PublicKeys {
	p := PublicKeys{Roles: map[string]string{}, Issuer: PublicKey(ids.Issuer), XKey: PublicKey(ids.XKey)}
	for role, kp := range ids.Roles {
		p.Roles[role] = PublicKey(kp)
	}
	return p
}

// PublicKeys are the public halves of Identities.
type PublicKeys struct {
	Roles  map[string]string
	Issuer string
	XKey   string
}

// writeSecret writes data to path with mode 0600, atomically (a crash never
// leaves half a key).
func writeSecret(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
