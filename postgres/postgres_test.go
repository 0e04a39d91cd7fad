package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/postgres"
	"github.com/tandemhq/tandem/storetest"
)

func TestStoreConformsToTheSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tandem.Store { return pgtest.Open(t) })
}

// freshSchema returns a URL whose tables live in a new, empty schema of a
// test database, for tests that migrate from nothing.
func freshSchema(t *testing.T) string {
	t.Helper()
	u := pgtest.URL(t)
	conn := connect(t, u)
	if _, err := conn.Exec(t.Context(), `CREATE SCHEMA fresh`); err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := parsed.Query()
	q.Set("search_path", "fresh")
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

func connect(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func open(t *testing.T, u string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Config{URL: u, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// migrationOpts compares migrations without their application time, which
// the test can only bound.
var migrationOpts = cmpopts.IgnoreFields(tandem.Migration{}, "AppliedAt")

func TestMigrateUpAppliesEveryMigrationOnceAndStatusListsThem(t *testing.T) {
	s := open(t, freshSchema(t))
	ctx := t.Context()

	before, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 {
		t.Fatal("no embedded migrations")
	}
	for i := range before {
		if before[i].Applied || !before[i].AppliedAt.IsZero() {
			t.Errorf("fresh schema: migration %+v is applied", before[i])
		}
		before[i].Applied = true
	}

	start := time.Now().Add(-time.Minute)
	applied, err := s.MigrateUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, applied, migrationOpts); diff != "" {
		t.Errorf("MigrateUp applied (-want +got):\n%s", diff)
	}
	for _, m := range applied {
		if m.AppliedAt.Before(start) || m.AppliedAt.Location() != time.UTC {
			t.Errorf("migration %s: AppliedAt %v, want a UTC time after %v", m.Name, m.AppliedAt, start)
		}
	}
	if !strings.HasSuffix(applied[0].Name, ".sql") || applied[0].Version != 1 {
		t.Errorf("first migration %+v, want version 1 named after its .sql file", applied[0])
	}

	again, err := s.MigrateUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second MigrateUp applied %+v, want nothing", again)
	}
	status, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(applied, status); diff != "" {
		t.Errorf("status after MigrateUp (-applied +status):\n%s", diff)
	}
}

func TestConcurrentMigrateUpAppliesEachMigrationOnce(t *testing.T) {
	u := freshSchema(t)
	const migrators = 4
	results := make([][]tandem.Migration, migrators)
	errs := make([]error, migrators)
	var wg sync.WaitGroup
	for i := range migrators {
		s := open(t, u)
		wg.Go(func() { results[i], errs[i] = s.MigrateUp(t.Context()) })
	}
	wg.Wait()
	var names []string
	for i := range migrators {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		for _, m := range results[i] {
			names = append(names, m.Name)
		}
	}
	status, err := open(t, u).MigrationStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range status {
		want = append(want, m.Name)
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("migrations applied by all migrators together (-want +got):\n%s", diff)
	}
}

func TestMigrationStatusOfATestDatabaseIsFullyApplied(t *testing.T) {
	status, err := pgtest.Open(t).MigrationStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range status {
		if !m.Applied {
			t.Errorf("migration %s is not applied", m.Name)
		}
	}
}

func appendRecord(t *testing.T, s *postgres.Store) {
	t.Helper()
	err := s.Update(t.Context(), func(tx tandem.Tx) error {
		seq, head, err := tx.LockAuditHead(t.Context())
		if err != nil {
			return err
		}
		r := &tandem.AuditRecord{Seq: seq + 1, At: time.Now(), ActorKind: tandem.ActorCLI, Action: "admin.create",
			Result: tandem.AuditOK, PrevHash: head}
		r.Hash = r.ComputeHash()
		if err := tx.AppendAudit(t.Context(), r); err != nil {
			return err
		}
		return tx.AddAuditCheckpoint(t.Context(), &tandem.AuditCheckpoint{Seq: r.Seq, Hash: r.Hash, At: r.At,
			KeyID: "k", Signature: []byte("sig")})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDatabaseRefusesToChangeOrRemoveAuditRecords(t *testing.T) {
	u := pgtest.URL(t)
	s := open(t, u)
	appendRecord(t, s)
	appendRecord(t, s)
	conn := connect(t, u)

	for table, column := range map[string]string{"audit_log": "action", "audit_checkpoints": "key_id"} {
		for _, stmt := range []string{
			fmt.Sprintf(`UPDATE %s SET %s = 'x'`, table, column),
			fmt.Sprintf(`UPDATE %s SET seq = seq WHERE seq = 1`, table),
			fmt.Sprintf(`DELETE FROM %s WHERE seq = 2`, table),
			// Refused even when no row matches.
			fmt.Sprintf(`DELETE FROM %s WHERE seq = -1`, table),
			fmt.Sprintf(`TRUNCATE %s`, table),
		} {
			if _, err := conn.Exec(t.Context(), stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: error %v, want the append-only refusal", stmt, err)
			}
		}
	}

	var records, checkpoints int
	if err := conn.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM audit_log WHERE action = 'admin.create'),
		(SELECT count(*) FROM audit_checkpoints WHERE key_id = 'k')`).Scan(&records, &checkpoints); err != nil {
		t.Fatal(err)
	}
	if records != 2 || checkpoints != 2 {
		t.Errorf("after the refused statements: %d records and %d checkpoints unchanged, want 2 and 2", records, checkpoints)
	}
}

func TestConcurrentReadThenWriteLosesNoUpdate(t *testing.T) {
	s := pgtest.Open(t)
	a := &tandem.Admin{Name: "counter", RoleID: 1}
	if err := s.Update(t.Context(), func(tx tandem.Tx) error { return tx.CreateAdmin(t.Context(), a) }); err != nil {
		t.Fatal(err)
	}
	const writers, rounds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for range writers {
		wg.Go(func() {
			for range rounds {
				errs <- s.Update(t.Context(), func(tx tandem.Tx) error {
					got, err := tx.Admin(t.Context(), a.ID)
					if err != nil {
						return err
					}
					got.MFALastStep++
					return tx.UpdateAdmin(t.Context(), got)
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var got *tandem.Admin
	err := s.View(t.Context(), func(tx tandem.Tx) (err error) {
		got, err = tx.Admin(t.Context(), a.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.MFALastStep != writers*rounds {
		t.Errorf("MFALastStep = %d after %d increments", got.MFALastStep, writers*rounds)
	}
}

func TestConstraintViolationsAreConflictsWithoutSQL(t *testing.T) {
	s := pgtest.Open(t)
	err := s.Update(t.Context(), func(tx tandem.Tx) error {
		return tx.CreateAdmin(t.Context(), &tandem.Admin{Name: "x", RoleID: 999})
	})
	if tandem.ErrorCodeOf(err) != tandem.EConflict {
		t.Fatalf("admin with a missing role: %v, want conflict", err)
	}
	if msg := tandem.ErrorMessageOf(err); strings.Contains(msg, "admins") || strings.Contains(msg, "violates") {
		t.Errorf("message %q shows SQL details", msg)
	}
}
