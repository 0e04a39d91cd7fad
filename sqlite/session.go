package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	tandem "github.com/tandemhq/tandem"
)

// CreateAdminSession inserts s.
func (t *tx) CreateAdminSession(ctx context.Context, s *tandem.AdminSession) error {
	_, err := t.tx.ExecContext(ctx, `
		INSERT INTO admin_sessions (token_hash, admin_id, created_at, last_seen_at, expires_at,
			mfa_passed, reauth_at, address, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		blob(s.TokenHash), s.AdminID, micros(s.CreatedAt), micros(s.LastSeenAt), micros(s.ExpiresAt),
		s.MFAPassed, micros(s.ReauthAt), s.Address, s.UserAgent)
	if err != nil {
		if isForeignKey(err) {
			return conflict(err, "create admin session", "admin does not exist")
		}
		return conflict(err, "create admin session", "session already exists")
	}
	return nil
}

// AdminSession returns the session with the token hash.
func (t *tx) AdminSession(ctx context.Context, tokenHash []byte) (*tandem.AdminSession, error) {
	var (
		s                                        tandem.AdminSession
		createdAt, lastSeen, expiresAt, reauthAt sql.NullInt64
	)
	err := t.tx.QueryRowContext(ctx, `
		SELECT token_hash, admin_id, created_at, last_seen_at, expires_at,
			mfa_passed, reauth_at, address, user_agent
		FROM admin_sessions WHERE token_hash = ?`, blob(tokenHash),
	).Scan(&s.TokenHash, &s.AdminID, &createdAt, &lastSeen, &expiresAt,
		&s.MFAPassed, &reauthAt, &s.Address, &s.UserAgent)
	if err != nil {
		return nil, notFound(err, "admin session", "session not found")
	}
	s.TokenHash = bytesOf(s.TokenHash)
	s.CreatedAt = timeOf(createdAt)
	s.LastSeenAt = timeOf(lastSeen)
	s.ExpiresAt = timeOf(expiresAt)
	s.ReauthAt = timeOf(reauthAt)
	return &s, nil
}

// UpdateAdminSession writes LastSeenAt, MFAPassed and ReauthAt.
func (t *tx) UpdateAdminSession(ctx context.Context, s *tandem.AdminSession) error {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE admin_sessions SET last_seen_at = ?, mfa_passed = ?, reauth_at = ?
		WHERE token_hash = ?`,
		micros(s.LastSeenAt), s.MFAPassed, micros(s.ReauthAt), blob(s.TokenHash))
	if err != nil {
		return fmt.Errorf("sqlite: update admin session: %w", err)
	}
	return mustAffect(res, "update admin session", "session not found")
}

// DeleteAdminSession ends one session.
func (t *tx) DeleteAdminSession(ctx context.Context, tokenHash []byte) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM admin_sessions WHERE token_hash = ?`, blob(tokenHash))
	if err != nil {
		return fmt.Errorf("sqlite: delete admin session: %w", err)
	}
	return mustAffect(res, "delete admin session", "session not found")
}

// DeleteAdminSessions ends every session of the admin but keep's.
func (t *tx) DeleteAdminSessions(ctx context.Context, adminID int64, keep []byte) (int, error) {
	// An empty BLOB matches no token hash, so keep == nil keeps none.
	res, err := t.tx.ExecContext(ctx, `
		DELETE FROM admin_sessions WHERE admin_id = ? AND token_hash <> ?`, adminID, blob(keep))
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete admin sessions: %w", err)
	}
	return affected(res, "delete admin sessions")
}

// DeleteExpiredAdminSessions removes sessions past their absolute expiry or
// idle since before idleBefore.
func (t *tx) DeleteExpiredAdminSessions(ctx context.Context, now, idleBefore time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `
		DELETE FROM admin_sessions WHERE expires_at < ? OR last_seen_at < ?`,
		now.UnixMicro(), idleBefore.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired admin sessions: %w", err)
	}
	return affected(res, "delete expired admin sessions")
}
