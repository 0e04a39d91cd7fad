package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem"
)

// signingKeysLockKey is the transaction-scoped advisory lock that
// serializes signing key rotation across web replicas: the bytes of
// "tandmsk1" read as a big-endian int64. Other advisory locks of Tandem
// use other constants (pgtest's template build is "tandmtp1"; goose has
// its own).
const signingKeysLockKey int64 = 0x74616e646d736b31

// LockSigningKeys takes the advisory lock until the transaction ends.
// Advisory locks need no table and write nothing, so View may take it too.
func (t *tx) LockSigningKeys(ctx context.Context) error {
	if _, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, signingKeysLockKey); err != nil {
		return dbError(err, "lock signing keys", "", "")
	}
	return nil
}

func (t *tx) CreateSigningKey(ctx context.Context, k *tandem.SigningKey) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO signing_keys (id, public_key, private_key_enc, created_at, retired_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, bytesArg(k.PublicKey), bytesArg(k.PrivateKeyEnc),
		timeArg(k.CreatedAt), timeArg(k.RetiredAt), timeArg(k.ExpiresAt))
	if err != nil {
		return dbError(err, "create signing key", "a signing key with this id already exists", "")
	}
	return nil
}

// SigningKeys returns every stored key, newest first.
func (t *tx) SigningKeys(ctx context.Context) ([]*tandem.SigningKey, error) {
	rows, err := t.tx.Query(ctx, `SELECT id, public_key, private_key_enc, created_at, retired_at, expires_at
		FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, dbError(err, "list signing keys", "", "")
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.SigningKey, error) {
		var k tandem.SigningKey
		err := r.Scan(&k.ID, &k.PublicKey, &k.PrivateKeyEnc,
			scanTime(&k.CreatedAt), scanTime(&k.RetiredAt), scanTime(&k.ExpiresAt))
		k.PublicKey = bytesOut(k.PublicKey)
		k.PrivateKeyEnc = bytesOut(k.PrivateKeyEnc)
		return &k, err
	})
	if err != nil {
		return nil, dbError(err, "list signing keys", "", "")
	}
	return keys, nil
}

func (t *tx) RetireSigningKey(ctx context.Context, k *tandem.SigningKey) error {
	tag, err := t.tx.Exec(ctx, `UPDATE signing_keys SET retired_at = $2, expires_at = $3 WHERE id = $1`,
		k.ID, timeArg(k.RetiredAt), timeArg(k.ExpiresAt))
	if err != nil {
		return dbError(err, "retire signing key", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "signing key not found")
	}
	return nil
}

// DeleteExpiredSigningKeys keeps the signing key, whose expires_at is NULL.
func (t *tx) DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at < $1`,
		instantArg(now))
	if err != nil {
		return 0, dbError(err, "delete expired signing keys", "", "")
	}
	return int(tag.RowsAffected()), nil
}
