package service_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// twentyRecords gives the fixture's log exactly 20 records with
// checkpoints every 10, so records 1–20 are covered by checkpoints written
// on their schedule.
func twentyRecords(t *testing.T, store tandem.Store, raw rawDB) *fixture {
	t.Helper()
	f := newFixture(t, store, raw, func(c *service.Config) { c.CheckpointEvery = 10 })
	for i := range 19 { // + the owner's creation
		if _, err := f.svc.CreateRole(context.Background(), f.cli, service.RoleInput{Name: fmt.Sprintf("role %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	rep := verify(t, f)
	if !rep.OK() || rep.Records != 20 || rep.Checkpoints != 2 || rep.Covered != 20 {
		t.Fatalf("untouched log: %+v, want 20 records, 2 checkpoints, covered to 20", rep)
	}
	return f
}

func verify(t *testing.T, f *fixture) *service.AuditReport {
	t.Helper()
	rep, err := service.VerifyAudit(context.Background(), f.store, f.key.Public().(ed25519.PublicKey), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func wantProblem(t *testing.T, rep *service.AuditReport, want string) {
	t.Helper()
	if rep.OK() {
		t.Fatal("the tampered log verifies")
	}
	if !strings.Contains(rep.Problems[0], want) {
		t.Fatalf("first problem %q, want it to mention %q (all: %q)", rep.Problems[0], want, rep.Problems)
	}
}

func TestAuditLogIsAppendOnlyInTheDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx := context.Background()
		err := store.Update(ctx, func(tx tandem.Tx) error {
			recs, err := tx.AuditRange(ctx, 1, 1)
			if err != nil {
				return err
			}
			// AppendAudit of an existing seq must fail: no overwrite either.
			return tx.AppendAudit(ctx, recs[0])
		})
		if err == nil {
			t.Fatal("appending a record with an existing seq succeeded")
		}
		if rep := verify(t, f); !rep.OK() {
			t.Fatalf("log broken after a refused overwrite: %q", rep.Problems)
		}
	})
}

func TestAuditVerifyFindsAnEditedMiddleRecord(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := twentyRecords(t, store, raw)
		raw(t, `UPDATE audit_log SET actor_name = 'someone else' WHERE seq = 7`)
		wantProblem(t, verify(t, f), "record 7")
	})
}

func TestAuditVerifyFindsTheNewestRecordDeleted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := twentyRecords(t, store, raw)
		raw(t, `DELETE FROM audit_log WHERE seq = 20`)
		raw(t, `UPDATE audit_head SET seq = 19, hash = (SELECT hash FROM audit_log WHERE seq = 19) WHERE id = 1`)
		wantProblem(t, verify(t, f), "truncated")
	})
}

func TestAuditVerifyFindsAMiddleRecordRewrittenWithARecomputedChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := twentyRecords(t, store, raw)
		ctx := context.Background()
		var recs []*tandem.AuditRecord
		if err := store.View(ctx, func(tx tandem.Tx) (err error) { recs, err = tx.AuditRange(ctx, 1, 100); return err }); err != nil {
			t.Fatal(err)
		}
		// The attacker rewrites record 5 and recomputes every hash after it,
		// so the chain itself is consistent again.
		recs[4].ActorName = "someone else"
		for i := 4; i < len(recs); i++ {
			recs[i].PrevHash = recs[i-1].Hash
			recs[i].Hash = recs[i].ComputeHash()
			raw(t, `UPDATE audit_log SET actor_name = ?, prev_hash = ?, hash = ? WHERE seq = ?`,
				recs[i].ActorName, recs[i].PrevHash, recs[i].Hash, recs[i].Seq)
		}
		raw(t, `UPDATE audit_head SET hash = ? WHERE id = 1`, recs[len(recs)-1].Hash)
		rep := verify(t, f)
		wantProblem(t, rep, "checkpoint 10")
		if !strings.Contains(strings.Join(rep.Problems, "\n"), "checkpoint 20") {
			t.Errorf("checkpoint 20 not reported: %q", rep.Problems)
		}
	})
}

func TestAuditVerifyRefusesACheckpointSignedByAnotherKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := twentyRecords(t, store, raw)
		other, _, _ := ed25519.GenerateKey(nil)
		rep, err := service.VerifyAudit(context.Background(), f.store, other, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, rep, "not by the key given")
	})
}

func TestCheckpointOnScheduleCoversAQuietLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil) // 1 record, checkpoint every 1000
		if rep := verify(t, f); rep.Covered != 0 {
			t.Fatalf("covered %d before any checkpoint", rep.Covered)
		}
		for range 2 { // twice: the second finds nothing new and writes nothing
			if err := f.svc.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if rep := verify(t, f); !rep.OK() || rep.Covered != 1 || rep.Checkpoints != 1 {
			t.Fatalf("after the scheduled checkpoint: %+v", rep)
		}
	})
}

func TestMaintenanceCheckpointsAQuietLogAndStopsWithItsContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := newFixture(t, store, raw, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.svc.RunMaintenance(ctx, 5*time.Millisecond)
		}()
		deadline := time.Now().Add(10 * time.Second)
		// The first tick also creates the token signing key, an audited
		// record of its own: a later tick covers that one too.
		for verify(t, f).Covered < 1 {
			if time.Now().After(deadline) {
				t.Fatal("no checkpoint within 10s at an interval of 5ms")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
	})
}

func TestAuditVerifyFindsDeletedCheckpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := twentyRecords(t, store, raw)
		raw(t, `DELETE FROM audit_checkpoints WHERE seq = 10`)
		wantProblem(t, verify(t, f), "checkpoint 10: missing")
	})
}

func TestAuditVerifyFindsALogCutBackWithItsCheckpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, raw rawDB) {
		f := twentyRecords(t, store, raw)
		raw(t, `DELETE FROM audit_log WHERE seq > 5`)
		raw(t, `DELETE FROM audit_checkpoints WHERE seq > 5`)
		// Consistent in itself…
		if rep := verify(t, f); !rep.OK() {
			t.Fatalf("a cut-back log without its checkpoints: %q", rep.Problems)
		}
		// …but not with the last checkpoint the server logged.
		rep, err := service.VerifyAudit(context.Background(), f.store, f.key.Public().(ed25519.PublicKey), 10, 20)
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, rep, "cut back to 5 records")
	})
}
