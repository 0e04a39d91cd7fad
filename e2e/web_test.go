package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/tandemhq/tandem/internal/pgtest"
)

// webServer is a running `tandem web` on a SQLite file, with an audit key.
type webServer struct {
	*proc
	db       string // the --db value
	auditKey string // its key file
	url      string // e.g. http://127.0.0.1:40123 (no /admin)
}

var webLine = regexp.MustCompile(`(?m)^web: +(http://\S+)/admin$`)

// newWebDatabase migrates a fresh SQLite database and creates an owner with
// password through the CLI, and writes an audit key; it returns the --db
// value and the key's path.
func newWebDatabase(t *testing.T, owner, password string) (db, key string) {
	t.Helper()
	dir := t.TempDir()
	db = "sqlite:" + filepath.Join(dir, "tandem.db")
	if out, errOut, code := runProg(t, bins.tandem, "migrate", "up", "--db", db); code != 0 || !strings.Contains(out, "applied") {
		t.Fatalf("migrate up: exit %d\n%s%s", code, out, errOut)
	}
	key = writeAuditKey(t, dir)
	runWithStdin(t, password+"\n", bins.tandem, "admin", "create", "--db", db, "--audit-key", key, "--admin-name", owner, "--password-stdin")
	return db, key
}

// writeAuditKey writes a new audit key into dir and returns its path.
func writeAuditKey(t *testing.T, dir string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "audit-key.pem")
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// startWeb runs `tandem web` on db and waits for its URL.
func startWeb(t *testing.T, db, key string, extra ...string) *webServer {
	t.Helper()
	args := append([]string{"web", "--db", db, "--audit-key", key, "--key-encryption-key", writeKeyEncryptionKey(t, t.TempDir()),
		"--web-listen", "127.0.0.1:0"}, extra...)
	p := startProc(t, "tandem web", bins.tandem, args...)
	return &webServer{proc: p, db: db, auditKey: key, url: p.waitStdout(t, webLine)[1]}
}

func runWithStdin(t *testing.T, stdin, bin string, args ...string) string {
	t.Helper()
	out, errOut, code := runProgIn(t, stdin, bin, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s%s", filepath.Base(bin), strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestWebRefusesAnUnmigratedDatabaseAndMigrateStatusListsMigrations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, key := "sqlite:"+filepath.Join(dir, "tandem.db"), writeAuditKey(t, dir)
	_, errOut, code := runProg(t, bins.tandem, "web", "--db", db, "--audit-key", key, "--key-encryption-key", writeKeyEncryptionKey(t, dir),
		"--web-listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "tandem migrate up") {
		t.Fatalf("web on an empty database: exit %d, stderr %q; want exit 1 naming tandem migrate up", code, errOut)
	}
	out, _, code := runProg(t, bins.tandem, "migrate", "status", "--db", db)
	if code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("migrate status before up: exit %d\n%s", code, out)
	}
	runProg(t, bins.tandem, "migrate", "up", "--db", db)
	out, _, _ = runProg(t, bins.tandem, "migrate", "status", "--db", db)
	if strings.Contains(out, "pending") {
		t.Fatalf("migrate status after up:\n%s", out)
	}
	if _, errOut, code := runProg(t, bins.tandem, "migrate", "sideways", "--db", db); code != 2 {
		t.Fatalf("migrate sideways: exit %d (%s), want 2", code, errOut)
	}
}

func TestAuditVerifyPassesOnALiveLogAndAfterAStop(t *testing.T) {
	t.Parallel()
	db, key := newWebDatabase(t, "owner", "owner password 1")
	for _, name := range []string{"second", "third"} { // records 2 and 3; 2 carries a checkpoint
		runWithStdin(t, "a long enough password\n", bins.tandem, "admin", "create", "--db", db, "--audit-key", key,
			"--admin-name", name, "--role", "viewer", "--password-stdin", "--audit-checkpoint-every", "2")
	}
	verify := func(what string) string {
		t.Helper()
		out, errOut, code := runProg(t, bins.tandem, "audit", "verify", "--db", db, "--audit-key", key,
			"--audit-checkpoint-every", "2", "--min-records", "3")
		if code != 0 || !strings.Contains(out, "ok") {
			t.Fatalf("audit verify %s: exit %d\n%s%s", what, code, out, errOut)
		}
		return out
	}
	// The server's start adds record 4: its first token signing key.
	web := startWeb(t, db, key, "--audit-checkpoint-every", "2")
	verify("while the server runs")
	web.signal(t, syscall.SIGTERM)
	if code := web.waitExit(t); code != 0 {
		t.Fatalf("web exited %d after SIGTERM", code)
	}
	if out := verify("after a stop"); !strings.Contains(out, "records 1 to 4 are covered") {
		t.Errorf("audit verify output:\n%s", out)
	}
	// Asking for more records than there are is a cut-back log.
	out, _, code := runProg(t, bins.tandem, "audit", "verify", "--db", db, "--audit-key", key, "--min-records", "9")
	if code != 1 || !strings.Contains(out, "cut back to 4 records") {
		t.Errorf("audit verify --min-records 9: exit %d\n%s", code, out)
	}
}

func TestWebRunsOnPostgreSQL(t *testing.T) {
	t.Parallel()
	db := pgtest.URL(t) // a fresh database, cloned from the migrated template
	key := writeAuditKey(t, t.TempDir())
	if out, errOut, code := runProg(t, bins.tandem, "migrate", "up", "--db", db); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate up on a migrated database: exit %d\n%s%s", code, out, errOut)
	}
	runWithStdin(t, "owner password 1\n", bins.tandem, "admin", "create", "--db", db, "--audit-key", key,
		"--admin-name", "owner", "--password-stdin")
	web := startWeb(t, db, key)

	body, _ := json.Marshal(map[string]string{"name": "owner", "password": "owner password 1"})
	resp, err := http.Post(web.url+"/api/admin/v1/session", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login on PostgreSQL: %s", resp.Status)
	}
	web.signal(t, syscall.SIGTERM)
	if code := web.waitExit(t); code != 0 {
		t.Fatalf("web exited %d after SIGTERM", code)
	}
	out, errOut, code := runProg(t, bins.tandem, "audit", "verify", "--db", db, "--audit-key", key, "--min-records", "2")
	if code != 0 {
		t.Fatalf("audit verify on PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
}
