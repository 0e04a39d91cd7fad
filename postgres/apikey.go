package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem"
)

const apiKeyColumns = `id, name, role_id, prefix, hash, created_by, created_at, last_used_at, revoked_at`

func scanAPIKey(row pgx.Row) (*tandem.APIKey, error) {
	var k tandem.APIKey
	err := row.Scan(&k.ID, &k.Name, &k.RoleID, &k.Prefix, &k.Hash, &k.CreatedBy,
		scanTime(&k.CreatedAt), scanTime(&k.LastUsedAt), scanTime(&k.RevokedAt))
	if err != nil {
		return nil, err
	}
	k.Hash = bytesOut(k.Hash)
	return &k, nil
}

func (t *tx) CreateAPIKey(ctx context.Context, k *tandem.APIKey) error {
	err := t.tx.QueryRow(ctx, `INSERT INTO api_keys (name, role_id, prefix, hash, created_by,
			created_at, last_used_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		k.Name, k.RoleID, k.Prefix, bytesArg(k.Hash), k.CreatedBy,
		timeArg(k.CreatedAt), timeArg(k.LastUsedAt), timeArg(k.RevokedAt),
	).Scan(&k.ID)
	if err != nil {
		return dbError(err, "create api key", "an API key with this secret already exists", "the key's role does not exist")
	}
	return nil
}

func (t *tx) APIKey(ctx context.Context, id int64) (*tandem.APIKey, error) {
	k, err := scanAPIKey(t.tx.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1`+t.lockRows, id))
	if err != nil {
		return nil, notFound(err, "read api key", "API key not found")
	}
	return k, nil
}

func (t *tx) APIKeyByHash(ctx context.Context, hash []byte) (*tandem.APIKey, error) {
	k, err := scanAPIKey(t.tx.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`+t.lockRows,
		bytesArg(hash)))
	if err != nil {
		return nil, notFound(err, "read api key by hash", "API key not found")
	}
	return k, nil
}

func (t *tx) APIKeys(ctx context.Context) ([]*tandem.APIKey, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, dbError(err, "list api keys", "", "")
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, dbError(err, "list api keys", "", "")
	}
	return keys, nil
}

func (t *tx) UpdateAPIKey(ctx context.Context, k *tandem.APIKey) error {
	tag, err := t.tx.Exec(ctx, `UPDATE api_keys SET last_used_at = $2, revoked_at = $3 WHERE id = $1`,
		k.ID, timeArg(k.LastUsedAt), timeArg(k.RevokedAt))
	if err != nil {
		return dbError(err, "update api key", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "API key not found")
	}
	return nil
}
