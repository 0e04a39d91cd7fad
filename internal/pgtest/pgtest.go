// Package pgtest owns the PostgreSQL databases of tests: each test gets a
// fresh database with every postgres/ migration applied, cloned from a
// template database that is built once per machine and migration set, and
// dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/postgres"
)

// EnvURL names the environment variable holding the base URL: a server and
// a maintenance database the test user may create databases from.
const EnvURL = "TANDEM_TEST_POSTGRES"

// templateLockKey is the advisory lock that serializes template builds
// across every test process of the machine.
const templateLockKey int64 = 0x74616e646d747031 // "tandmtp1"

// URL returns the URL of a fresh, migrated database for this test, dropped
// at cleanup. Without TANDEM_TEST_POSTGRES the test is skipped, or fails
// under CI=true, where a missing database must not pass unnoticed.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is empty: CI must run the PostgreSQL tests", EnvURL)
		}
		t.Skipf("%s is empty: skipping a PostgreSQL test", EnvURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	tmpl, err := ensureTemplate(ctx, conn, base)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := "tandem_t_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tmpl)); err != nil {
		t.Fatalf("pgtest: clone %s: %v", tmpl, err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(base, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	u, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// Open returns a Store on a fresh, migrated database, closed at cleanup
// (before the database is dropped).
func Open(t testing.TB) *postgres.Store {
	t.Helper()
	u := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A few connections each: go test runs packages in parallel and the
	// server allows 100 in all.
	s, err := postgres.Open(ctx, postgres.Config{URL: u, MaxConns: 4})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ensureTemplate returns the name of the template database for the current
// migrations, building it if no process has yet.
func ensureTemplate(ctx context.Context, conn *pgx.Conn, base string) (string, error) {
	tmpl := "tandem_tmpl_" + postgres.MigrationsHash()[:16]
	if ok, err := databaseExists(ctx, conn, tmpl); err != nil || ok {
		return tmpl, err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return "", fmt.Errorf("lock template build: %w", err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLockKey) }()
	// Another process may have built it while this one waited.
	if ok, err := databaseExists(ctx, conn, tmpl); err != nil || ok {
		return tmpl, err
	}
	// Build under another name and rename at the end, so the template's
	// name only ever denotes a completely migrated database; a crashed
	// build leaves only this name, dropped by the next attempt.
	build := tmpl + "_build"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(build)+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop stale template build: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(build)+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("create template build: %w", err)
	}
	if err := migrate(ctx, base, build); err != nil {
		return "", err
	}
	// Then no connections: a session on a template makes its clones fail.
	for _, q := range []string{
		"ALTER DATABASE " + ident(build) + " RENAME TO " + ident(tmpl),
		"ALTER DATABASE " + ident(tmpl) + " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("finish template: %w", err)
		}
	}
	return tmpl, nil
}

func migrate(ctx context.Context, base, name string) error {
	u, err := withDatabase(base, name)
	if err != nil {
		return err
	}
	s, err := postgres.Open(ctx, postgres.Config{URL: u, MaxConns: 2})
	if err != nil {
		return fmt.Errorf("open template build: %w", err)
	}
	defer s.Close()
	if _, err := s.MigrateUp(ctx); err != nil {
		return fmt.Errorf("migrate template build: %w", err)
	}
	return nil
}

func databaseExists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look for database %s: %w", name, err)
	}
	return ok, nil
}

// dropDatabase drops name on its own connection: cleanup runs after the
// test's context and the creating connection are gone.
func dropDatabase(base, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connect to drop %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	return nil
}

// withDatabase returns base with its database replaced by name. base is a
// URL or a keyword/value string, where a later dbname wins.
func withDatabase(base, name string) (string, error) {
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return base + " dbname=" + name, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		// The error would quote the URL, password included.
		return "", fmt.Errorf("%s is not a valid URL", EnvURL)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
