// Package servicetest gives tests of the web side a real service.Service
// over a migrated SQLite database in the test's temporary directory, with a
// clock the test can move and password hashing cheap enough for tests.
package servicetest

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/sqlite"
)

// Clock is real time plus an offset the test moves, so TOTP steps, idle
// expiry and the reauth window pass without sleeping.
type Clock struct{ offset atomic.Int64 }

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// Env is a service over its own database.
type Env struct {
	// Store is the SQLite store of New; nil for NewOn.
	Store *sqlite.Store
	// DB is the store the service runs on, whichever it is.
	DB       tandem.Store
	Service  *service.Service
	Clock    *Clock
	AuditKey ed25519.PrivateKey
	// Roles are the role ids by name (the built-in ones).
	Roles map[string]int64
}

// New returns an Env; edit, if not nil, changes the service's Config
// before it is built. Everything is closed at the test's end.
func New(t testing.TB, edit func(*service.Config)) *Env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "tandem.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	e := NewOn(t, store, edit)
	e.Store = store
	return e
}

// keyEncryptionKey is the key encryption key of every Env's service.
const keyEncryptionKey = "servicetest key encryption key!!"

// NewOn returns an Env on a migrated store the caller owns (pgtest.Open
// gives a PostgreSQL one).
func NewOn(t testing.TB, store tandem.Store, edit func(*service.Config)) *Env {
	t.Helper()
	ctx := context.Background()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{DB: store, Clock: &Clock{}, AuditKey: key, Roles: map[string]int64{}}
	cfg := service.Config{Store: store, Now: e.Clock.Now, AuditKey: key,
		Passwords: service.PasswordConfig{MemoryKiB: 64, Iterations: 1},
		Players:   service.PlayerConfig{KeyEncryptionKey: []byte(keyEncryptionKey)}}
	if edit != nil {
		edit(&cfg)
	}
	if e.Service, err = service.New(cfg); err != nil {
		t.Fatal(err)
	}
	roles, err := e.Service.Roles(ctx, service.CLIActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		e.Roles[r.Name] = r.ID
	}
	return e
}

// CreateAdmin makes an admin as the CLI would.
func (e *Env) CreateAdmin(t testing.TB, name, password, role string) *tandem.Admin {
	t.Helper()
	a, err := e.Service.CreateAdmin(context.Background(), service.CLIActor("test"),
		service.NewAdmin{Name: name, Password: password, RoleID: e.Roles[role]})
	if err != nil {
		t.Fatalf("create admin %q: %v", name, err)
	}
	return a
}
