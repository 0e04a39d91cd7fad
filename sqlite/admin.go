package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	tandem "github.com/tandemhq/tandem"
)

const adminColumns = `id, name, role_id, disabled, password_hash, password_changed_at,
	mfa_secret, mfa_pending, mfa_last_step, created_at, updated_at`

func scanAdmin(row interface{ Scan(...any) error }) (*tandem.Admin, error) {
	var (
		a                             tandem.Admin
		changedAt, createdAt, updated sql.NullInt64
	)
	err := row.Scan(&a.ID, &a.Name, &a.RoleID, &a.Disabled, &a.PasswordHash, &changedAt,
		&a.MFASecret, &a.MFAPending, &a.MFALastStep, &createdAt, &updated)
	if err != nil {
		return nil, err
	}
	a.PasswordChangedAt = timeOf(changedAt)
	a.CreatedAt = timeOf(createdAt)
	a.UpdatedAt = timeOf(updated)
	return &a, nil
}

// CreateAdmin inserts a and sets a.ID.
func (t *tx) CreateAdmin(ctx context.Context, a *tandem.Admin) error {
	err := t.tx.QueryRowContext(ctx, `
		INSERT INTO admins (name, role_id, disabled, password_hash, password_changed_at,
			mfa_secret, mfa_pending, mfa_last_step, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		a.Name, a.RoleID, a.Disabled, a.PasswordHash, micros(a.PasswordChangedAt),
		a.MFASecret, a.MFAPending, a.MFALastStep, micros(a.CreatedAt), micros(a.UpdatedAt),
	).Scan(&a.ID)
	return adminConflict(err, "create admin")
}

// adminConflict names the constraint an admin write can break: the unique
// name or the role foreign key.
func adminConflict(err error, what string) error {
	if err == nil {
		return nil
	}
	if isForeignKey(err) {
		return conflict(err, what, "role does not exist")
	}
	return conflict(err, what, "name already taken")
}

// Admin returns the admin with the id.
func (t *tx) Admin(ctx context.Context, id int64) (*tandem.Admin, error) {
	a, err := scanAdmin(t.tx.QueryRowContext(ctx, `SELECT `+adminColumns+` FROM admins WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "admin", "admin not found")
	}
	return a, nil
}

// AdminByName returns the admin with the name.
func (t *tx) AdminByName(ctx context.Context, name string) (*tandem.Admin, error) {
	a, err := scanAdmin(t.tx.QueryRowContext(ctx, `SELECT `+adminColumns+` FROM admins WHERE name = ?`, name))
	if err != nil {
		return nil, notFound(err, "admin by name", "admin not found")
	}
	return a, nil
}

// Admins returns every admin by id.
func (t *tx) Admins(ctx context.Context) ([]*tandem.Admin, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+adminColumns+` FROM admins ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: admins: %w", err)
	}
	defer rows.Close()
	var admins []*tandem.Admin
	for rows.Next() {
		a, err := scanAdmin(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: admins: %w", err)
		}
		admins = append(admins, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: admins: %w", err)
	}
	return admins, nil
}

// CountAdmins returns how many admins exist.
func (t *tx) CountAdmins(ctx context.Context) (int, error) {
	var n int
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM admins`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count admins: %w", err)
	}
	return n, nil
}

// UpdateAdmin writes every field of a but ID and CreatedAt.
func (t *tx) UpdateAdmin(ctx context.Context, a *tandem.Admin) error {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE admins SET name = ?, role_id = ?, disabled = ?, password_hash = ?,
			password_changed_at = ?, mfa_secret = ?, mfa_pending = ?, mfa_last_step = ?,
			updated_at = ?
		WHERE id = ?`,
		a.Name, a.RoleID, a.Disabled, a.PasswordHash, micros(a.PasswordChangedAt),
		a.MFASecret, a.MFAPending, a.MFALastStep, micros(a.UpdatedAt), a.ID,
	)
	if err != nil {
		return adminConflict(err, "update admin")
	}
	return mustAffect(res, "update admin", "admin not found")
}

// ReplaceRecoveryCodes drops the admin's recovery codes and stores hashes.
func (t *tx) ReplaceRecoveryCodes(ctx context.Context, adminID int64, hashes [][]byte) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM admin_recovery_codes WHERE admin_id = ?`, adminID); err != nil {
		return fmt.Errorf("sqlite: delete recovery codes: %w", err)
	}
	for _, h := range hashes {
		_, err := t.tx.ExecContext(ctx, `INSERT INTO admin_recovery_codes (admin_id, hash) VALUES (?, ?)`, adminID, blob(h))
		if err != nil {
			if isForeignKey(err) {
				return conflict(err, "add recovery code", "admin does not exist")
			}
			return conflict(err, "add recovery code", "duplicate recovery code")
		}
	}
	return nil
}

// UseRecoveryCode marks an unused code used; the used_at IS NULL condition
// makes a second use of the same code change nothing. at is stored even when
// zero (not as NULL), or the code would stay usable.
func (t *tx) UseRecoveryCode(ctx context.Context, adminID int64, hash []byte, at time.Time) (bool, error) {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE admin_recovery_codes SET used_at = ?
		WHERE admin_id = ? AND hash = ? AND used_at IS NULL`,
		at.UnixMicro(), adminID, blob(hash))
	if err != nil {
		return false, fmt.Errorf("sqlite: use recovery code: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: use recovery code: %w", err)
	}
	return n == 1, nil
}

// UnusedRecoveryCodes counts the admin's codes still usable.
func (t *tx) UnusedRecoveryCodes(ctx context.Context, adminID int64) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `
		SELECT count(*) FROM admin_recovery_codes WHERE admin_id = ? AND used_at IS NULL`,
		adminID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count recovery codes: %w", err)
	}
	return n, nil
}

// AddDevice remembers a device; adding a known one refreshes its last use.
func (t *tx) AddDevice(ctx context.Context, adminID int64, hash []byte, at time.Time) error {
	_, err := t.tx.ExecContext(ctx, `
		INSERT INTO admin_devices (admin_id, hash, created_at, last_seen_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (admin_id, hash) DO UPDATE SET last_seen_at = excluded.last_seen_at`,
		adminID, blob(hash), micros(at), micros(at))
	if err != nil {
		return conflict(err, "add device", "admin does not exist")
	}
	return nil
}

// HasDevice reports whether the admin logged in from the device before.
func (t *tx) HasDevice(ctx context.Context, adminID int64, hash []byte) (bool, error) {
	var ok bool
	err := t.tx.QueryRowContext(ctx, `
		SELECT EXISTS (SELECT 1 FROM admin_devices WHERE admin_id = ? AND hash = ?)`,
		adminID, blob(hash)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("sqlite: has device: %w", err)
	}
	return ok, nil
}
