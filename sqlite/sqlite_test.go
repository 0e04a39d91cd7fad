package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	tandem "github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/sqlite"
	"github.com/tandemhq/tandem/storetest"
)

// openStore opens and migrates a store in a new file under t's temp dir.
func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if _, err := s.MigrateUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tandem.Store {
		return openStore(t, filepath.Join(t.TempDir(), "tandem.db"))
	})
}

func TestMigrateUpAppliesOnceAndStatusShowsIt(t *testing.T) {
	ctx := t.Context()
	// A directory that does not exist yet: Open creates it.
	path := filepath.Join(t.TempDir(), "data", "tandem.db")
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	before, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []tandem.Migration{{Version: 1, Name: "00001_admin.sql"}, {Version: 2, Name: "00002_players.sql"}, {Version: 3, Name: "00003_cluster.sql"}, {Version: 4, Name: "00004_revocations.sql"}, {Version: 5, Name: "00005_cluster_retention.sql"}, {Version: 6, Name: "00006_matchmaking.sql"}}
	if diff := cmp.Diff(want, before); diff != "" {
		t.Errorf("status before MigrateUp (-want +got):\n%s", diff)
	}

	applied, err := s.MigrateUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i].Applied = true
	}
	ignoreTime := cmpopts.IgnoreFields(tandem.Migration{}, "AppliedAt")
	if diff := cmp.Diff(want, applied, ignoreTime); diff != "" {
		t.Errorf("first MigrateUp applied (-want +got):\n%s", diff)
	}
	for _, m := range applied {
		if m.AppliedAt.IsZero() {
			t.Errorf("applied migration %s has no AppliedAt", m.Name)
		}
	}

	again, err := s.MigrateUp(ctx)
	if err != nil {
		t.Fatalf("second MigrateUp: %v", err)
	}
	if len(again) != 0 {
		t.Errorf("second MigrateUp applied %v, want nothing", again)
	}

	after, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(applied, after); diff != "" {
		t.Errorf("status after MigrateUp (-want +got):\n%s", diff)
	}
}

func TestAuditTablesRefuseUpdateAndDelete(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tandem.db")
	s := openStore(t, path)
	err := s.Update(ctx, func(tx tandem.Tx) error {
		r := &tandem.AuditRecord{ActorKind: tandem.ActorSystem, Action: "test.append", Result: tandem.AuditOK}
		r.Seq = 1
		r.Hash = r.ComputeHash()
		if err := tx.AppendAudit(ctx, r); err != nil {
			return err
		}
		return tx.AddAuditCheckpoint(ctx, &tandem.AuditCheckpoint{Seq: 1, Hash: r.Hash, KeyID: "k", Signature: []byte("sig")})
	})
	if err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`UPDATE audit_log SET action = 'x'`,
		`DELETE FROM audit_log`,
		`UPDATE audit_checkpoints SET key_id = 'x'`,
		`DELETE FROM audit_checkpoints`,
		`INSERT OR REPLACE INTO audit_log (seq, at, actor_kind, action, result, prev_hash, hash) SELECT seq, at, actor_kind, 'x', result, prev_hash, hash FROM audit_log WHERE seq = 1`,
		`INSERT OR REPLACE INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES (1, x'00', 0, 'k', x'00')`,
	} {
		_, err := db.ExecContext(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "is append-only") {
			t.Errorf("%s: error %v, want refused as append-only", stmt, err)
		}
	}

	var action string
	var n int
	if err := db.QueryRowContext(ctx, `SELECT action, (SELECT count(*) FROM audit_checkpoints) FROM audit_log`).Scan(&action, &n); err != nil {
		t.Fatal(err)
	}
	if action != "test.append" || n != 1 {
		t.Errorf("after the refused statements: action %q, %d checkpoints; want test.append, 1", action, n)
	}
}
