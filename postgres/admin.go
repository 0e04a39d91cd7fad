package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem"
)

const adminColumns = `id, name, role_id, disabled, password_hash, password_changed_at,
	mfa_secret, mfa_pending, mfa_last_step, created_at, updated_at`

func scanAdmin(row pgx.Row) (*tandem.Admin, error) {
	var a tandem.Admin
	err := row.Scan(&a.ID, &a.Name, &a.RoleID, &a.Disabled, &a.PasswordHash, scanTime(&a.PasswordChangedAt),
		&a.MFASecret, &a.MFAPending, &a.MFALastStep, scanTime(&a.CreatedAt), scanTime(&a.UpdatedAt))
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func (t *tx) CreateAdmin(ctx context.Context, a *tandem.Admin) error {
	err := t.tx.QueryRow(ctx, `INSERT INTO admins (name, role_id, disabled, password_hash, password_changed_at,
			mfa_secret, mfa_pending, mfa_last_step, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		a.Name, a.RoleID, a.Disabled, a.PasswordHash, timeArg(a.PasswordChangedAt),
		a.MFASecret, a.MFAPending, a.MFALastStep, timeArg(a.CreatedAt), timeArg(a.UpdatedAt),
	).Scan(&a.ID)
	if err != nil {
		return dbError(err, "create admin", "an admin with this name already exists", "the admin's role does not exist")
	}
	return nil
}

func (t *tx) Admin(ctx context.Context, id int64) (*tandem.Admin, error) {
	a, err := scanAdmin(t.tx.QueryRow(ctx, `SELECT `+adminColumns+` FROM admins WHERE id = $1`+t.lockRows, id))
	if err != nil {
		return nil, notFound(err, "read admin", "admin not found")
	}
	return a, nil
}

func (t *tx) AdminByName(ctx context.Context, name string) (*tandem.Admin, error) {
	a, err := scanAdmin(t.tx.QueryRow(ctx, `SELECT `+adminColumns+` FROM admins WHERE name = $1`+t.lockRows, name))
	if err != nil {
		return nil, notFound(err, "read admin by name", "admin not found")
	}
	return a, nil
}

func (t *tx) Admins(ctx context.Context) ([]*tandem.Admin, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+adminColumns+` FROM admins ORDER BY id`)
	if err != nil {
		return nil, dbError(err, "list admins", "", "")
	}
	admins, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.Admin, error) { return scanAdmin(r) })
	if err != nil {
		return nil, dbError(err, "list admins", "", "")
	}
	return admins, nil
}

func (t *tx) CountAdmins(ctx context.Context) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM admins`).Scan(&n); err != nil {
		return 0, dbError(err, "count admins", "", "")
	}
	return n, nil
}

func (t *tx) UpdateAdmin(ctx context.Context, a *tandem.Admin) error {
	tag, err := t.tx.Exec(ctx, `UPDATE admins SET name = $2, role_id = $3, disabled = $4, password_hash = $5,
			password_changed_at = $6, mfa_secret = $7, mfa_pending = $8, mfa_last_step = $9, updated_at = $10
		WHERE id = $1`,
		a.ID, a.Name, a.RoleID, a.Disabled, a.PasswordHash,
		timeArg(a.PasswordChangedAt), a.MFASecret, a.MFAPending, a.MFALastStep, timeArg(a.UpdatedAt))
	if err != nil {
		return dbError(err, "update admin", "an admin with this name already exists", "the admin's role does not exist")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "admin not found")
	}
	return nil
}

func (t *tx) ReplaceRecoveryCodes(ctx context.Context, adminID int64, hashes [][]byte) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM admin_recovery_codes WHERE admin_id = $1`, adminID); err != nil {
		return dbError(err, "delete recovery codes", "", "")
	}
	if len(hashes) == 0 {
		return nil
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO admin_recovery_codes (admin_id, hash)
		SELECT $1, h FROM unnest($2::bytea[]) AS h`, adminID, hashes)
	if err != nil {
		return dbError(err, "insert recovery codes", "a recovery code is repeated", "admin not found")
	}
	return nil
}

func (t *tx) UseRecoveryCode(ctx context.Context, adminID int64, hash []byte, at time.Time) (bool, error) {
	// The WHERE is re-checked after waiting for a concurrent use of the same
	// code, so only one of two racing transactions gets a row.
	tag, err := t.tx.Exec(ctx, `UPDATE admin_recovery_codes SET used_at = $3
		WHERE admin_id = $1 AND hash = $2 AND used_at IS NULL`, adminID, bytesArg(hash), timeArg(at))
	if err != nil {
		return false, dbError(err, "use recovery code", "", "")
	}
	return tag.RowsAffected() == 1, nil
}

func (t *tx) UnusedRecoveryCodes(ctx context.Context, adminID int64) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM admin_recovery_codes WHERE admin_id = $1 AND used_at IS NULL`,
		adminID).Scan(&n)
	if err != nil {
		return 0, dbError(err, "count recovery codes", "", "")
	}
	return n, nil
}

func (t *tx) AddDevice(ctx context.Context, adminID int64, hash []byte, at time.Time) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO admin_devices (admin_id, hash, created_at, last_seen_at)
		VALUES ($1, $2, $3, $3)
		ON CONFLICT (admin_id, hash) DO UPDATE SET last_seen_at = excluded.last_seen_at`,
		adminID, bytesArg(hash), timeArg(at))
	if err != nil {
		return dbError(err, "add device", "", "admin not found")
	}
	return nil
}

func (t *tx) HasDevice(ctx context.Context, adminID int64, hash []byte) (bool, error) {
	var ok bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM admin_devices WHERE admin_id = $1 AND hash = $2)`,
		adminID, bytesArg(hash)).Scan(&ok)
	if err != nil {
		return false, dbError(err, "read device", "", "")
	}
	return ok, nil
}
