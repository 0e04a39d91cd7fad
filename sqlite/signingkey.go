package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	tandem "github.com/tandemhq/tandem"
)

// LockSigningKeys does nothing: a write transaction begins IMMEDIATE, so it
// already excludes every other writer of the file until it ends.
func (t *tx) LockSigningKeys(ctx context.Context) error {
	return nil
}

// CreateSigningKey inserts k; a kid already stored is EConflict.
func (t *tx) CreateSigningKey(ctx context.Context, k *tandem.SigningKey) error {
	_, err := t.tx.ExecContext(ctx, `
		INSERT INTO signing_keys (id, public_key, private_key_enc, created_at, retired_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, blob(k.PublicKey), blob(k.PrivateKeyEnc),
		micros(k.CreatedAt), micros(k.RetiredAt), micros(k.ExpiresAt))
	if err != nil {
		return conflict(err, "create signing key", "signing key already exists")
	}
	return nil
}

// SigningKeys returns every stored key, newest first.
func (t *tx) SigningKeys(ctx context.Context) ([]*tandem.SigningKey, error) {
	rows, err := t.tx.QueryContext(ctx, `
		SELECT id, public_key, private_key_enc, created_at, retired_at, expires_at
		FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: signing keys: %w", err)
	}
	defer rows.Close()
	var keys []*tandem.SigningKey
	for rows.Next() {
		var (
			k                             tandem.SigningKey
			createdAt, retiredAt, expires sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.PublicKey, &k.PrivateKeyEnc, &createdAt, &retiredAt, &expires); err != nil {
			return nil, fmt.Errorf("sqlite: signing keys: %w", err)
		}
		k.PublicKey = bytesOf(k.PublicKey)
		k.PrivateKeyEnc = bytesOf(k.PrivateKeyEnc)
		k.CreatedAt = timeOf(createdAt)
		k.RetiredAt = timeOf(retiredAt)
		k.ExpiresAt = timeOf(expires)
		keys = append(keys, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: signing keys: %w", err)
	}
	return keys, nil
}

// RetireSigningKey writes k's RetiredAt and ExpiresAt.
func (t *tx) RetireSigningKey(ctx context.Context, k *tandem.SigningKey) error {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE signing_keys SET retired_at = ?, expires_at = ? WHERE id = ?`,
		micros(k.RetiredAt), micros(k.ExpiresAt), k.ID)
	if err != nil {
		return fmt.Errorf("sqlite: retire signing key: %w", err)
	}
	return mustAffect(res, "retire signing key", "signing key not found")
}

// DeleteExpiredSigningKeys removes retired keys whose ExpiresAt is before
// now; a key still signing has no ExpiresAt (NULL) and stays.
func (t *tx) DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `
		DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at < ?`, now.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired signing keys: %w", err)
	}
	return affected(res, "delete expired signing keys")
}
