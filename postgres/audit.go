package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem"
)

// Limits of one audit search page.
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 1000
)

const auditColumns = `seq, at, actor_kind, actor_id, actor_name, action, target_type, target_id,
	before, after, address, result, error, prev_hash, hash`

func scanAudit(row pgx.Row) (*tandem.AuditRecord, error) {
	var r tandem.AuditRecord
	var at int64
	err := row.Scan(&r.Seq, &at, &r.ActorKind, &r.ActorID, &r.ActorName, &r.Action, &r.TargetType, &r.TargetID,
		&r.Before, &r.After, &r.Address, &r.Result, &r.Error, &r.PrevHash, &r.Hash)
	if err != nil {
		return nil, err
	}
	r.At = fromMicros(at)
	r.PrevHash = bytesOut(r.PrevHash)
	r.Hash = bytesOut(r.Hash)
	return &r, nil
}

func collectAudit(rows pgx.Rows, err error) ([]*tandem.AuditRecord, error) {
	if err != nil {
		return nil, dbError(err, "read audit records", "", "")
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.AuditRecord, error) { return scanAudit(r) })
	if err != nil {
		return nil, dbError(err, "read audit records", "", "")
	}
	return recs, nil
}

func (t *tx) LockAuditHead(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := t.tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&seq, &hash)
	if err != nil {
		return 0, nil, dbError(err, "lock audit head", "", "")
	}
	return seq, bytesOut(hash), nil
}

func (t *tx) AppendAudit(ctx context.Context, r *tandem.AuditRecord) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO audit_log (`+auditColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		r.Seq, micros(r.At), string(r.ActorKind), r.ActorID, r.ActorName, r.Action, r.TargetType, r.TargetID,
		r.Before, r.After, r.Address, string(r.Result), r.Error, bytesArg(r.PrevHash), bytesArg(r.Hash))
	if err != nil {
		return dbError(err, "append audit record", "an audit record with this sequence number already exists", "")
	}
	// Moving the head only from the record before keeps a caller that
	// skipped LockAuditHead from leaving a gap in the chain.
	tag, err := t.tx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $1 - 1`,
		r.Seq, bytesArg(r.Hash))
	if err != nil {
		return dbError(err, "move audit head", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.EConflict, "the audit record does not follow the chain head")
	}
	return nil
}

func (t *tx) AuditRecords(ctx context.Context, f tandem.AuditFilter) ([]*tandem.AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, vals ...any) {
		for _, v := range vals {
			args = append(args, v)
			cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(args)), 1)
		}
		where = append(where, cond)
	}
	if f.ActorName != "" {
		add("actor_name = ?", f.ActorName)
	}
	if prefix, ok := strings.CutSuffix(f.Action, "."); ok {
		// action is COLLATE "C": the records starting with "admin." are
		// exactly those in ["admin.", "admin/"), one index range.
		add("action >= ? AND action < ?", prefix+".", prefix+"/")
	} else if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.TargetType != "" {
		add("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		add("target_id = ?", f.TargetID)
	}
	if f.Result != "" {
		add("result = ?", string(f.Result))
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until.UnixMicro())
	}
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = auditDefaultLimit
	case limit > auditMaxLimit:
		limit = auditMaxLimit
	}
	q := `SELECT ` + auditColumns + ` FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args))
	// Planned afresh with the actual values each time (an unnamed
	// statement): a cached generic plan would walk the whole log backwards
	// looking for a rare actor or action, where the value's own index finds
	// it at once.
	return collectAudit(t.tx.Query(ctx, q, append([]any{pgx.QueryExecModeExec}, args...)...))
}

func (t *tx) AuditRange(ctx context.Context, from int64, limit int) ([]*tandem.AuditRecord, error) {
	if limit <= 0 {
		return nil, nil
	}
	return collectAudit(t.tx.Query(ctx, `SELECT `+auditColumns+` FROM audit_log
		WHERE seq >= $1 ORDER BY seq LIMIT $2`, from, limit))
}

const checkpointColumns = `seq, hash, at, key_id, signature`

func scanCheckpoint(row pgx.Row) (*tandem.AuditCheckpoint, error) {
	var c tandem.AuditCheckpoint
	var at int64
	if err := row.Scan(&c.Seq, &c.Hash, &at, &c.KeyID, &c.Signature); err != nil {
		return nil, err
	}
	c.At = fromMicros(at)
	c.Hash = bytesOut(c.Hash)
	c.Signature = bytesOut(c.Signature)
	return &c, nil
}

func (t *tx) AddAuditCheckpoint(ctx context.Context, c *tandem.AuditCheckpoint) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO audit_checkpoints (`+checkpointColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		c.Seq, bytesArg(c.Hash), micros(c.At), c.KeyID, bytesArg(c.Signature))
	if err != nil {
		return dbError(err, "add audit checkpoint", "a checkpoint at this sequence number already exists", "")
	}
	return nil
}

func (t *tx) AuditCheckpoints(ctx context.Context) ([]*tandem.AuditCheckpoint, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+checkpointColumns+` FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, dbError(err, "read audit checkpoints", "", "")
	}
	cps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.AuditCheckpoint, error) { return scanCheckpoint(r) })
	if err != nil {
		return nil, dbError(err, "read audit checkpoints", "", "")
	}
	return cps, nil
}

func (t *tx) LastAuditCheckpoint(ctx context.Context) (*tandem.AuditCheckpoint, error) {
	c, err := scanCheckpoint(t.tx.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM audit_checkpoints
		ORDER BY seq DESC LIMIT 1`))
	if err != nil {
		return nil, notFound(err, "read last audit checkpoint", "no audit checkpoint yet")
	}
	return c, nil
}
