package service_test

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/postgres"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/sqlite"
)

// backend is one database the service tests run on.
type backend struct {
	name string
	open func(t *testing.T) (tandem.Store, rawDB)
}

// rawDB runs SQL straight against a test's database with the append-only
// triggers out of the way: it plays the attacker who owns the database.
type rawDB func(t *testing.T, query string, args ...any)

var backends = []backend{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

// forEachBackend runs test on every database, in parallel subtests.
func forEachBackend(t *testing.T, test func(t *testing.T, store tandem.Store, raw rawDB)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			store, raw := b.open(t)
			test(t, store, raw)
		})
	}
}

func openSQLite(t *testing.T) (tandem.Store, rawDB) {
	path := filepath.Join(t.TempDir(), "tandem.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	raw := func(t *testing.T, query string, args ...any) {
		t.Helper()
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// SQLite has no switch for triggers: drop them, tamper, put them back.
		rows, err := db.Query(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger'`)
		if err != nil {
			t.Fatal(err)
		}
		triggers := map[string]string{}
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				t.Fatal(err)
			}
			triggers[name] = def
		}
		rows.Close()
		for name := range triggers {
			mustExec(t, db, `DROP TRIGGER "`+name+`"`)
		}
		mustExec(t, db, query, args...)
		for _, def := range triggers {
			mustExec(t, db, def)
		}
	}
	return st, raw
}

func mustExec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func openPostgres(t *testing.T) (tandem.Store, rawDB) {
	url := pgtest.URL(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw := func(t *testing.T, query string, args ...any) {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		// As a superuser, replica mode skips ordinary triggers.
		if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, dollarParams(query), args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	return st, raw
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is a service over one database with an owner admin.
type fixture struct {
	store tandem.Store
	raw   rawDB
	svc   *service.Service
	clock *clock
	key   ed25519.PrivateKey
	cli   *service.Actor
	roles map[string]int64
}

const ownerPassword = "correct horse battery staple"

// testKEK is the key encryption key of every fixture (32 bytes).
const testKEK = "0123456789abcdef0123456789abcdef"

func newFixture(t *testing.T, store tandem.Store, raw rawDB, edit func(*service.Config)) *fixture {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, raw: raw, clock: newClock(), key: key, cli: service.CLIActor("test"), roles: map[string]int64{}}
	cfg := service.Config{
		Store:     store,
		Now:       f.clock.Now,
		AuditKey:  key,
		Passwords: service.PasswordConfig{MemoryKiB: 64, Iterations: 1},
		Players:   service.PlayerConfig{KeyEncryptionKey: []byte(testKEK)},
	}
	if edit != nil {
		edit(&cfg)
	}
	if f.svc, err = service.New(cfg); err != nil {
		t.Fatal(err)
	}
	roles, err := f.svc.Roles(context.Background(), f.cli)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		f.roles[r.Name] = r.ID
	}
	f.createAdmin(t, "owner", ownerPassword, tandem.RoleOwner)
	return f
}

func (f *fixture) createAdmin(t *testing.T, name, password, role string) *tandem.Admin {
	t.Helper()
	a, err := f.svc.CreateAdmin(context.Background(), f.cli, service.NewAdmin{Name: name, Password: password, RoleID: f.roles[role]})
	if err != nil {
		t.Fatalf("create admin %s: %v", name, err)
	}
	return a
}

func (f *fixture) login(t *testing.T, name, password, addr, device string) *service.LoginResult {
	t.Helper()
	res, err := f.svc.Login(context.Background(), service.LoginRequest{Name: name, Password: password, Address: addr, Device: device})
	if err != nil {
		t.Fatalf("login %s from %s: %v", name, addr, err)
	}
	return res
}

// code returns the TOTP code of secret at the clock's time.
func (f *fixture) code(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, f.clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrol logs in as an owner and enrols MFA; it returns the secret and the
// recovery codes.
func (f *fixture) enrol(t *testing.T, name, password string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	res := f.login(t, name, password, "10.0.0.1", "")
	if got := res.Actor.MFAOutstanding(); got != service.MFAEnrol {
		t.Fatalf("owner's first login asks for %q, want enrol", got)
	}
	en, err := f.svc.BeginMFAEnrolment(ctx, res.Actor)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := f.svc.ConfirmMFAEnrolment(ctx, res.Actor, f.code(t, en.Secret))
	if err != nil {
		t.Fatal(err)
	}
	return en.Secret, codes
}

func wantCode(t *testing.T, err error, want tandem.ErrorCode) {
	t.Helper()
	if got := tandem.ErrorCodeOf(err); got != want {
		t.Fatalf("error %v: code %s, want %s", err, got, want)
	}
}

func auditRecords(t *testing.T, f *fixture, filter tandem.AuditFilter) []*tandem.AuditRecord {
	t.Helper()
	recs, err := f.svc.AuditLog(context.Background(), f.cli, filter)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// dollarParams turns the ? placeholders of a raw query into PostgreSQL's $n.
func dollarParams(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mfaSession enrols the admin named name (password "a long enough
// password") and returns a session that has passed its challenge.
func (f *fixture) mfaSession(t *testing.T, name string) *service.Actor {
	t.Helper()
	secret, _ := f.enrol(t, name, "a long enough password")
	f.clock.Add(30 * time.Second)
	res := f.login(t, name, "a long enough password", "10.0.0.5", "")
	if err := f.svc.CompleteMFA(context.Background(), res.Actor, f.code(t, secret)); err != nil {
		t.Fatal(err)
	}
	return res.Actor
}
