package token_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/token"
)

func TestLoadOrCreateDevKeyCreatesAPrivateFileAndReloadsTheSameKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tandem-data", "keys")
	path := filepath.Join(dir, "token.pem")

	first, err := token.LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatalf("first LoadOrCreateDevKey: %v", err)
	}
	if runtime.GOOS != "windows" {
		assertMode(t, path, 0o600)
		assertMode(t, dir, 0o700)
	}
	if want := token.KeyID(first.PublicKey()); first.KeyID() != want || len(want) != 16 {
		t.Errorf("kid = %q, want %q (8 bytes of SHA-256 in hex)", first.KeyID(), want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "PRIVATE KEY" {
		t.Errorf("key file is not a PEM PRIVATE KEY block:\n%s", data)
	} else if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		t.Errorf("key file is not PKCS #8: %v", err)
	}

	second, err := token.LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatalf("second LoadOrCreateDevKey: %v", err)
	}
	if second.KeyID() != first.KeyID() || !second.PublicKey().Equal(first.PublicKey()) {
		t.Errorf("reloaded key %s differs from created key %s", second.KeyID(), first.KeyID())
	}

	// A token from the first process verifies with the reloaded public key.
	tok := mustSign(t, first, validClaims())
	keys := token.NewKeySet(map[string]ed25519.PublicKey{second.KeyID(): second.PublicKey()})
	if _, err := keys.Verify(tok, now, tandem.AudienceRealtime); err != nil {
		t.Errorf("Verify with the reloaded key: %v", err)
	}
}

func TestLoadOrCreateDevKeyConcurrentCallersShareOneKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.pem")
	kids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			s, err := token.LoadOrCreateDevKey(path)
			if err != nil {
				t.Errorf("LoadOrCreateDevKey: %v", err)
				return
			}
			kids[i] = s.KeyID()
		})
	}
	wg.Wait()
	for _, kid := range kids[1:] {
		if kid != kids[0] {
			t.Fatalf("callers got different keys: %v", kids)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file", len(entries))
	}
}

func TestLoadSignerFileRefusesAFileOthersCanRead(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits on Windows")
	}
	path := filepath.Join(t.TempDir(), "token.pem")
	if _, err := token.LoadOrCreateDevKey(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := token.LoadOrCreateDevKey(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: LoadOrCreateDevKey = %v, want an error telling to chmod 600", mode, err)
		}
		if _, err := token.LoadSignerFile(path); err == nil {
			t.Errorf("mode %04o: LoadSignerFile succeeded, want an error", mode)
		}
	}
	// Refusing must not replace the key with a new one.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := token.LoadSignerFile(path); err != nil {
		t.Errorf("after chmod 600: %v", err)
	}
}

func TestLoadSignerFileRefusesWhatIsNotAnEd25519PrivateKey(t *testing.T) {
	dir := t.TempDir()
	pubPEM, err := token.MarshalPublicKeyPEM(keyFromSeed(1).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"empty":      nil,
		"not PEM":    []byte("hello"),
		"public key": pubPEM,
		"bad DER":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := token.LoadSignerFile(path); err == nil {
			t.Errorf("%s: LoadSignerFile succeeded, want an error", name)
		}
	}
	if _, err := token.LoadSignerFile(dir); err == nil {
		t.Errorf("LoadSignerFile of a directory succeeded, want an error")
	}
}

func TestPublicKeyFilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s1, s2 := token.NewSigner("a", keyFromSeed(1)), token.NewSigner("b", keyFromSeed(2))
	pem1, err := token.MarshalPublicKeyPEM(s1.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	pem2, err := token.MarshalPublicKeyPEM(s2.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	// One file with both keys of a rollover, and a second file repeating one.
	both, single := filepath.Join(dir, "both.pub"), filepath.Join(dir, "single.pub")
	if err := os.WriteFile(both, append(pem1, pem2...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(single, pem1, 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := token.LoadPublicKeyFiles(both, single)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ed25519.PublicKey{
		token.KeyID(s1.PublicKey()): s1.PublicKey(),
		token.KeyID(s2.PublicKey()): s2.PublicKey(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestParsePublicKeysPEMRefusesOtherBlocks(t *testing.T) {
	der, err := x509.MarshalPKCS8PrivateKey(keyFromSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"nothing":     nil,
		"private key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"bad DER":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}),
	} {
		if _, err := token.ParsePublicKeysPEM(data); err == nil {
			t.Errorf("%s: ParsePublicKeysPEM succeeded, want an error", name)
		}
	}
	if _, err := token.LoadPublicKeyFiles(filepath.Join(t.TempDir(), "missing.pub")); err == nil {
		t.Error("LoadPublicKeyFiles of a missing file succeeded, want an error")
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}
