package postgres

import (
	"context"
	"time"

	"github.com/tandemhq/tandem"
)

func (t *tx) CreateAdminSession(ctx context.Context, s *tandem.AdminSession) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO admin_sessions (token_hash, admin_id, created_at, last_seen_at,
			expires_at, mfa_passed, reauth_at, address, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		bytesArg(s.TokenHash), s.AdminID, timeArg(s.CreatedAt), timeArg(s.LastSeenAt),
		timeArg(s.ExpiresAt), s.MFAPassed, timeArg(s.ReauthAt), s.Address, s.UserAgent)
	if err != nil {
		return dbError(err, "create admin session", "the session already exists", "admin not found")
	}
	return nil
}

func (t *tx) AdminSession(ctx context.Context, tokenHash []byte) (*tandem.AdminSession, error) {
	var s tandem.AdminSession
	err := t.tx.QueryRow(ctx, `SELECT token_hash, admin_id, created_at, last_seen_at, expires_at,
			mfa_passed, reauth_at, address, user_agent
		FROM admin_sessions WHERE token_hash = $1`+t.lockRows, bytesArg(tokenHash),
	).Scan(&s.TokenHash, &s.AdminID, scanTime(&s.CreatedAt), scanTime(&s.LastSeenAt), scanTime(&s.ExpiresAt),
		&s.MFAPassed, scanTime(&s.ReauthAt), &s.Address, &s.UserAgent)
	if err != nil {
		return nil, notFound(err, "read admin session", "session not found")
	}
	s.TokenHash = bytesOut(s.TokenHash)
	return &s, nil
}

func (t *tx) UpdateAdminSession(ctx context.Context, s *tandem.AdminSession) error {
	tag, err := t.tx.Exec(ctx, `UPDATE admin_sessions SET last_seen_at = $2, mfa_passed = $3, reauth_at = $4
		WHERE token_hash = $1`,
		bytesArg(s.TokenHash), timeArg(s.LastSeenAt), s.MFAPassed, timeArg(s.ReauthAt))
	if err != nil {
		return dbError(err, "update admin session", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "session not found")
	}
	return nil
}

func (t *tx) DeleteAdminSession(ctx context.Context, tokenHash []byte) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM admin_sessions WHERE token_hash = $1`, bytesArg(tokenHash))
	if err != nil {
		return dbError(err, "delete admin session", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "session not found")
	}
	return nil
}

func (t *tx) DeleteAdminSessions(ctx context.Context, adminID int64, keep []byte) (int, error) {
	// An empty keep is sent as NULL, which keeps none.
	tag, err := t.tx.Exec(ctx, `DELETE FROM admin_sessions
		WHERE admin_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2)`, adminID, bytesOut(keep))
	if err != nil {
		return 0, dbError(err, "delete admin sessions", "", "")
	}
	return int(tag.RowsAffected()), nil
}

func (t *tx) DeleteExpiredAdminSessions(ctx context.Context, now, idleBefore time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM admin_sessions WHERE expires_at < $1 OR last_seen_at < $2`,
		timeArg(now), timeArg(idleBefore))
	if err != nil {
		return 0, dbError(err, "delete expired admin sessions", "", "")
	}
	return int(tag.RowsAffected()), nil
}
