package service

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/tandemhq/tandem"
)

// AuditLog searches the audit log, newest first.
func (s *Service) AuditLog(ctx context.Context, a *Actor, f tandem.AuditFilter) ([]*tandem.AuditRecord, error) {
	var fields []tandem.FieldError
	if f.Limit < 0 || f.Limit > 1000 {
		fields = append(fields, tandem.FieldError{Field: "limit", Message: "must be between 1 and 1000"})
	}
	if f.Result != "" && f.Result != tandem.AuditOK && f.Result != tandem.AuditDenied && f.Result != tandem.AuditFailed {
		fields = append(fields, tandem.FieldError{Field: "result", Message: "must be ok, denied or failed"})
	}
	for _, t := range []struct{ field, value string }{
		{"actor", f.ActorName}, {"action", f.Action}, {"target_type", f.TargetType}, {"target_id", f.TargetID},
	} {
		if !validText(t.value) {
			fields = append(fields, tandem.FieldError{Field: t.field, Message: "must be valid UTF-8 without NUL characters"})
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		fields = append(fields, tandem.FieldError{Field: "until", Message: "must be after since"})
	}
	var out []*tandem.AuditRecord
	err := s.view(ctx, a, op{action: "audit.read", perm: tandem.PermAuditRead}, func(tx tandem.Tx) (err error) {
		if err := tandem.Invalid(fields); err != nil {
			return err
		}
		out, err = tx.AuditRecords(ctx, f)
		return err
	})
	return out, err
}

func (s *Service) addCheckpoint(ctx context.Context, tx tandem.Tx, seq int64, hash []byte) error {
	if s.cfg.AuditKey == nil {
		return nil
	}
	c := &tandem.AuditCheckpoint{Seq: seq, Hash: hash, At: s.now(), KeyID: s.keyID}
	c.Signature = ed25519.Sign(s.cfg.AuditKey, c.SignedBytes())
	if err := tx.AddAuditCheckpoint(ctx, c); err != nil {
		return err
	}
	// A copy outside the database: whoever can cut the log back and delete
	// the checkpoints above the cut cannot reach the logs too, and
	// `tandem audit verify --min-records` takes the last seq seen here.
	s.log.Info("audit checkpoint", "seq", c.Seq, "hash", hex.EncodeToString(c.Hash), "key_id", c.KeyID,
		"signature", base64.StdEncoding.EncodeToString(c.Signature))
	return nil
}

// Checkpoint signs the chain head if records were added since the last
// checkpoint. It takes the head's lock, so replicas calling it at once
// write one checkpoint, not two.
func (s *Service) Checkpoint(ctx context.Context) error {
	if s.cfg.AuditKey == nil {
		return nil
	}
	return s.store.Update(ctx, func(tx tandem.Tx) error {
		seq, hash, err := tx.LockAuditHead(ctx)
		if err != nil || seq == 0 {
			return err
		}
		last, err := tx.LastAuditCheckpoint(ctx)
		switch {
		case tandem.ErrorCodeOf(err) == tandem.ENotFound:
		case err != nil:
			return err
		case last.Seq >= seq:
			return nil
		}
		return s.addCheckpoint(ctx, tx, seq, hash)
	})
}

// Sweep deletes expired admin and player sessions, login records older
// than the retention, expired token revocations, cluster history older
// than ClusterJobs.Retention and rate-limit counters of windows long past. Several replicas may sweep at once: deleting what is gone twice is
// harmless.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	return s.store.Update(ctx, func(tx tandem.Tx) error {
		if _, err := tx.DeleteExpiredAdminSessions(ctx, now, now.Add(-s.cfg.SessionIdle)); err != nil {
			return err
		}
		if _, err := tx.DeleteExpiredPlayerSessions(ctx, now); err != nil {
			return err
		}
		if _, err := tx.DeleteOldLoginRecords(ctx, now.Add(-s.cfg.Players.LoginRetention)); err != nil {
			return err
		}
		if _, err := tx.DeleteOldUsedRefreshTokens(ctx, now.Add(-s.cfg.Players.RefreshTTL)); err != nil {
			return err
		}
		// The bucket's entries expire by themselves; the rows are only the
		// mirror's source.
		if _, err := tx.DeleteExpiredRevocations(ctx, now); err != nil {
			return err
		}
		// Node WARN logs alone would grow the events without limit.
		if _, err := tx.DeleteOldClusterHistory(ctx, now.Add(-s.cfg.ClusterJobs.Retention)); err != nil {
			return err
		}
		// Windows of every counter have ended by then.
		_, err := tx.DeleteOldRateLimits(ctx, now.Add(-max(s.cfg.LoginWindow, s.cfg.Players.LimitWindow)))
		return err
	})
}

// RunMaintenance runs the web server's background work every interval
// until ctx ends: an audit checkpoint when records were added since the
// last one (so a quiet log is covered within interval of its last record),
// the sweep of expired sessions, old login records and counters, and the
// rotation of the token signing key when it is due. All are safe to run on
// every replica at once.
func (s *Service) RunMaintenance(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("audit checkpoint", "err", err)
		}
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("sweep", "err", err)
		}
		if len(s.cfg.Players.KeyEncryptionKey) > 0 {
			if err := s.RotateSigningKeys(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("signing key rotation", "err", err)
			}
		}
	}
}

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	Records     int64 // records read
	Checkpoints int   // checkpoints whose signature and hash matched
	// Covered is the Seq of the last valid checkpoint: records up to it
	// are proven complete and unchanged.
	Covered int64
	// Problems lists what is wrong, first broken record first; empty when
	// the log verifies.
	Problems []string
}

// OK reports whether the log verified.
func (r *AuditReport) OK() bool { return len(r.Problems) == 0 }

// VerifyAudit walks the whole chain and every checkpoint. It reports the
// first record whose hash or link is broken, checkpoints whose signature
// fails or whose record differs, and a tail truncated below the last
// checkpoint. With every > 0 (the server's CheckpointEvery) a checkpoint
// must also exist at each multiple of every up to the last record, so
// deleting checkpoints to rewrite the chain unseen shows too. Records after
// the last checkpoint are only as trustworthy as the database. A log cut
// back together with the checkpoints above the cut is consistent in
// itself: minRecords (the last checkpoint's seq from the server's log, a
// copy the database's owner cannot reach) catches that.
func VerifyAudit(ctx context.Context, store tandem.Store, pub ed25519.PublicKey, every, minRecords int64) (*AuditReport, error) {
	rep := &AuditReport{}
	var cps []*tandem.AuditCheckpoint
	hashes := map[int64][]byte{} // seq → hash, only at checkpoint positions
	err := store.View(ctx, func(tx tandem.Tx) error {
		var err error
		if cps, err = tx.AuditCheckpoints(ctx); err != nil {
			return err
		}
		for _, c := range cps {
			hashes[c.Seq] = nil
		}
		var prev []byte
		next := int64(1)
		broken := false
		for {
			batch, err := tx.AuditRange(ctx, next, 1000)
			if err != nil {
				return err
			}
			for _, r := range batch {
				rep.Records++
				if !broken {
					switch {
					case r.Seq != next:
						rep.Problems = append(rep.Problems, fmt.Sprintf("record %d: records %d to %d are missing", r.Seq, next, r.Seq-1))
						broken = true
					case !bytes.Equal(r.PrevHash, prev):
						rep.Problems = append(rep.Problems, fmt.Sprintf("record %d: does not link to record %d (a record was changed, removed or inserted)", r.Seq, r.Seq-1))
						broken = true
					case !bytes.Equal(r.Hash, r.ComputeHash()):
						rep.Problems = append(rep.Problems, fmt.Sprintf("record %d: its contents do not match its hash (the record was changed)", r.Seq))
						broken = true
					}
				}
				if _, ok := hashes[r.Seq]; ok {
					hashes[r.Seq] = r.Hash
				}
				prev, next = r.Hash, r.Seq+1
			}
			if len(batch) < 1000 {
				return nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if rep.Records < minRecords {
		rep.Problems = append(rep.Problems, fmt.Sprintf("records %d to %d are missing (the log was cut back to %d records)", rep.Records+1, minRecords, rep.Records))
	}
	if every > 0 {
		have := make(map[int64]bool, len(cps))
		for _, c := range cps {
			have[c.Seq] = true
		}
		for seq := every; seq <= rep.Records; seq += every {
			if !have[seq] {
				rep.Problems = append(rep.Problems, fmt.Sprintf("checkpoint %d: missing (one is written with every %d-th record; checkpoints were deleted)", seq, every))
				break
			}
		}
	}
	keyID := AuditKeyID(pub)
	for _, c := range cps {
		switch h, ok := hashes[c.Seq]; {
		case c.KeyID != keyID:
			rep.Problems = append(rep.Problems, fmt.Sprintf("checkpoint %d: signed by key %s, not by the key given (%s)", c.Seq, c.KeyID, keyID))
		case !ed25519.Verify(pub, c.SignedBytes(), c.Signature):
			rep.Problems = append(rep.Problems, fmt.Sprintf("checkpoint %d: bad signature (the checkpoint was forged or changed)", c.Seq))
		case ok && h == nil:
			rep.Problems = append(rep.Problems, fmt.Sprintf("checkpoint %d: record %d is missing (the log was truncated to %d records)", c.Seq, c.Seq, rep.Records))
		case !bytes.Equal(h, c.Hash):
			rep.Problems = append(rep.Problems, fmt.Sprintf("checkpoint %d: record %d differs from the signed chain (the chain was rewritten)", c.Seq, c.Seq))
		default:
			rep.Checkpoints++
			rep.Covered = max(rep.Covered, c.Seq)
		}
	}
	return rep, nil
}

// Overview is the front page's summary.
type Overview struct {
	Admins         int
	Roles          int
	AuditRecords   int64
	LastCheckpoint *tandem.AuditCheckpoint // nil if none yet
}

// Overview returns the front page's summary; any admin may read it.
func (s *Service) Overview(ctx context.Context, a *Actor) (*Overview, error) {
	out := &Overview{}
	err := s.view(ctx, a, op{action: "overview.read"}, func(tx tandem.Tx) error {
		n, err := tx.CountAdmins(ctx)
		if err != nil {
			return err
		}
		out.Admins = n
		roles, err := tx.Roles(ctx)
		if err != nil {
			return err
		}
		out.Roles = len(roles)
		recs, err := tx.AuditRecords(ctx, tandem.AuditFilter{Limit: 1})
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			out.AuditRecords = recs[0].Seq
		}
		out.LastCheckpoint, err = tx.LastAuditCheckpoint(ctx)
		if tandem.ErrorCodeOf(err) == tandem.ENotFound {
			return nil
		}
		return err
	})
	return out, err
}
