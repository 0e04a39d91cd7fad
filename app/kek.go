package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// devKEKFile is tandem dev's key encryption key inside --data-dir.
const devKEKFile = "key-encryption-key"

// loadKEKFile reads a key encryption key: 32 bytes written as 64 hex
// characters (surrounding white space ignored), in a file only its owner
// may read, since whoever reads it can open the token signing keys.
func loadKEKFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key encryption key: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key encryption key: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key encryption key %s is accessible by group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("key encryption key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("key encryption key %s: want 64 hex characters (32 bytes), as `openssl rand -hex 32` writes", path)
	}
	return key, nil
}

// loadOrCreateKEKFile reads the key encryption key in path, first creating
// the file (mode 0600) with a new key if there is none. The key is written
// to a temporary file, synced, and linked into place: a crash never leaves
// an empty key, and of two processes starting at once both use the one
// that was linked first.
func loadOrCreateKEKFile(path string) ([]byte, error) {
	key, err := loadKEKFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var b [32]byte
	rand.Read(b[:])
	tmp, err := os.CreateTemp(dir, ".key-encryption-key-*") // mode 0600
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(b[:]) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the link itself survives a crash
		d.Close()
	}
	return loadKEKFile(path)
}
