package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// KeyID returns the key id of pub: the first 8 bytes of its SHA-256, in hex.
// Deriving it from the key means a key file needs no separate name and two
// different keys cannot share an id by accident.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// LoadOrCreateDevKey returns a Signer for the private key in path, first
// creating the file (mode 0600, missing directories 0700) with a new key if
// it does not exist. It is meant for `tandem dev` and tests; see
// LoadSignerFile for the checks on an existing file.
func LoadOrCreateDevKey(path string) (*Signer, error) {
	key, err := LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return NewSigner(KeyID(key.Public().(ed25519.PublicKey)), key), nil
}

// LoadSignerFile returns a Signer for the Ed25519 private key in path (see
// LoadKeyFile). The key id is KeyID of its public key.
func LoadSignerFile(path string) (*Signer, error) {
	key, err := LoadKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return NewSigner(KeyID(key.Public().(ed25519.PublicKey)), key), nil
}

// LoadOrCreateKeyFile returns the Ed25519 private key in path, first
// creating the file (mode 0600, missing directories 0700) with a new key if
// it does not exist. The audit checkpoint key of `tandem dev` is made this
// way too.
func LoadOrCreateKeyFile(path string) (ed25519.PrivateKey, error) {
	key, err := LoadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKeyFile(path); err != nil {
		return nil, err
	}
	return LoadKeyFile(path)
}

// LoadKeyFile returns the Ed25519 private key in path, a PEM "PRIVATE KEY"
// block (PKCS #8). It refuses a file that its group or others may read or
// write, since anyone who reads it can sign in the key's name.
func LoadKeyFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat() // of the opened file, so a swap after the check does not matter
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("key %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key %s is accessible by group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10)) // a PEM key is a few hundred bytes
	if err != nil {
		return nil, err
	}
	key, err := parsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return key, nil
}

func parsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New(`no PEM "PRIVATE KEY" block`)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	edKey, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, not Ed25519", key)
	}
	return edKey, nil
}

// createKeyFile writes a new key to a temporary file and links it into
// place, so that a crash never leaves a half-written key and two processes
// starting at once end up sharing the one that won.
func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".token-key-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// MarshalPublicKeyPEM returns pub as a PEM "PUBLIC KEY" block (PKIX), the
// form realtime nodes read with LoadPublicKeyFiles.
func MarshalPublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKeysPEM returns every Ed25519 "PUBLIC KEY" block in data, by
// KeyID. Any other block, or data with no block at all, is an error.
func ParsePublicKeysPEM(data []byte) (map[string]ed25519.PublicKey, error) {
	keys := make(map[string]ed25519.PublicKey)
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block %q is not a PUBLIC KEY", block.Type)
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is %T, not Ed25519", key)
		}
		keys[KeyID(pub)] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New(`no PEM "PUBLIC KEY" block`)
	}
	return keys, nil
}

// LoadPublicKeyFiles reads the public keys in every file of paths (see
// ParsePublicKeysPEM), for NewKeySet.
func LoadPublicKeyFiles(paths ...string) (map[string]ed25519.PublicKey, error) {
	keys := make(map[string]ed25519.PublicKey)
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("token public key: %w", err)
		}
		fileKeys, err := ParsePublicKeysPEM(data)
		if err != nil {
			return nil, fmt.Errorf("token public key %s: %w", path, err)
		}
		for kid, pub := range fileKeys {
			keys[kid] = pub
		}
	}
	return keys, nil
}
