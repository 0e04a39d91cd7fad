package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	tandem "github.com/tandemhq/tandem"
)

// Audit search limits (tandem.AuditFilter.Limit).
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

const auditColumns = `seq, at, actor_kind, actor_id, actor_name, action, target_type, target_id,
	before, after, address, result, error, prev_hash, hash`

func scanAuditRecord(row interface{ Scan(...any) error }) (*tandem.AuditRecord, error) {
	var (
		r  tandem.AuditRecord
		at int64
	)
	err := row.Scan(&r.Seq, &at, &r.ActorKind, &r.ActorID, &r.ActorName, &r.Action, &r.TargetType,
		&r.TargetID, &r.Before, &r.After, &r.Address, &r.Result, &r.Error, &r.PrevHash, &r.Hash)
	if err != nil {
		return nil, err
	}
	r.At = timeOf(sql.NullInt64{Int64: at, Valid: true})
	r.PrevHash = bytesOf(r.PrevHash)
	r.Hash = bytesOf(r.Hash)
	return &r, nil
}

func queryAuditRecords(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]*tandem.AuditRecord, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit records: %w", err)
	}
	defer rows.Close()
	var records []*tandem.AuditRecord
	for rows.Next() {
		r, err := scanAuditRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: audit records: %w", err)
		}
		records = append(records, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit records: %w", err)
	}
	return records, nil
}

// LockAuditHead returns the chain head. The write transaction began
// IMMEDIATE, so it already holds the database's one write lock: no other
// writer can move the head before this transaction ends.
func (t *tx) LockAuditHead(ctx context.Context) (int64, []byte, error) {
	var (
		seq  int64
		hash []byte
	)
	if err := t.tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash); err != nil {
		return 0, nil, fmt.Errorf("sqlite: lock audit head: %w", err)
	}
	return seq, bytesOf(hash), nil
}

// AppendAudit inserts r and moves the head to it. The head only moves from
// r's predecessor, so a record that does not extend the chain is refused
// rather than forking or leaving a gap.
func (t *tx) AppendAudit(ctx context.Context, r *tandem.AuditRecord) error {
	_, err := t.tx.ExecContext(ctx, `
		INSERT INTO audit_log (`+auditColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Seq, r.At.UnixMicro(), r.ActorKind, r.ActorID, r.ActorName, r.Action, r.TargetType,
		r.TargetID, r.Before, r.After, r.Address, r.Result, r.Error, blob(r.PrevHash), blob(r.Hash))
	if err != nil {
		return conflict(err, "append audit record", "audit record already exists")
	}
	res, err := t.tx.ExecContext(ctx, `
		UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?`,
		r.Seq, blob(r.Hash), r.Seq-1, blob(r.PrevHash))
	if err != nil {
		return fmt.Errorf("sqlite: move audit head: %w", err)
	}
	n, err := affected(res, "move audit head")
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlite: audit record %d does not follow the chain head", r.Seq)
	}
	return nil
}

// AuditRecords returns the records f selects, newest first. Every condition
// compares a column directly, so it can use the column's index; the action
// prefix is a range rather than LIKE, which would neither use the index nor
// treat '_' and '%' literally.
func (t *tx) AuditRecords(ctx context.Context, f tandem.AuditFilter) ([]*tandem.AuditRecord, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if f.ActorName != "" {
		add("actor_name = ?", f.ActorName)
	}
	if prefix, ok := strings.CutSuffix(f.Action, "."); ok {
		// '/' is the byte after '.', so [prefix+".", prefix+"/") holds
		// exactly the actions starting with prefix+".".
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
		add("result = ?", f.Result)
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
		limit = defaultAuditLimit
	case limit > maxAuditLimit:
		limit = maxAuditLimit
	}

	query := `SELECT ` + auditColumns + ` FROM audit_log`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY seq DESC LIMIT ?`
	return queryAuditRecords(ctx, t.tx, query, append(args, limit)...)
}

// AuditRange returns up to limit records with Seq >= from, oldest first.
func (t *tx) AuditRange(ctx context.Context, from int64, limit int) ([]*tandem.AuditRecord, error) {
	if limit <= 0 {
		limit = maxAuditLimit
	}
	return queryAuditRecords(ctx, t.tx, `
		SELECT `+auditColumns+` FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`, from, limit)
}

// AddAuditCheckpoint stores a signed checkpoint.
func (t *tx) AddAuditCheckpoint(ctx context.Context, c *tandem.AuditCheckpoint) error {
	_, err := t.tx.ExecContext(ctx, `
		INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES (?, ?, ?, ?, ?)`,
		c.Seq, blob(c.Hash), c.At.UnixMicro(), c.KeyID, blob(c.Signature))
	if err != nil {
		return conflict(err, "add audit checkpoint", "checkpoint already exists")
	}
	return nil
}

const checkpointColumns = `seq, hash, at, key_id, signature`

func scanCheckpoint(row interface{ Scan(...any) error }) (*tandem.AuditCheckpoint, error) {
	var (
		c  tandem.AuditCheckpoint
		at int64
	)
	if err := row.Scan(&c.Seq, &c.Hash, &at, &c.KeyID, &c.Signature); err != nil {
		return nil, err
	}
	c.At = timeOf(sql.NullInt64{Int64: at, Valid: true})
	c.Hash = bytesOf(c.Hash)
	c.Signature = bytesOf(c.Signature)
	return &c, nil
}

// AuditCheckpoints returns every checkpoint by Seq.
func (t *tx) AuditCheckpoints(ctx context.Context) ([]*tandem.AuditCheckpoint, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+checkpointColumns+` FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit checkpoints: %w", err)
	}
	defer rows.Close()
	var checkpoints []*tandem.AuditCheckpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: audit checkpoints: %w", err)
		}
		checkpoints = append(checkpoints, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit checkpoints: %w", err)
	}
	return checkpoints, nil
}

// LastAuditCheckpoint returns the checkpoint with the highest Seq.
func (t *tx) LastAuditCheckpoint(ctx context.Context) (*tandem.AuditCheckpoint, error) {
	c, err := scanCheckpoint(t.tx.QueryRowContext(ctx, `
		SELECT `+checkpointColumns+` FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`))
	if err != nil {
		return nil, notFound(err, "last audit checkpoint", "no audit checkpoint")
	}
	return c, nil
}
