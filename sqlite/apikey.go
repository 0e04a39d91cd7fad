package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	tandem "github.com/tandemhq/tandem"
)

const apiKeyColumns = `id, name, role_id, prefix, hash, created_by, created_at, last_used_at, revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (*tandem.APIKey, error) {
	var (
		k                           tandem.APIKey
		createdAt, lastUsed, revoke sql.NullInt64
	)
	err := row.Scan(&k.ID, &k.Name, &k.RoleID, &k.Prefix, &k.Hash, &k.CreatedBy,
		&createdAt, &lastUsed, &revoke)
	if err != nil {
		return nil, err
	}
	k.Hash = bytesOf(k.Hash)
	k.CreatedAt = timeOf(createdAt)
	k.LastUsedAt = timeOf(lastUsed)
	k.RevokedAt = timeOf(revoke)
	return &k, nil
}

// CreateAPIKey inserts k and sets k.ID.
func (t *tx) CreateAPIKey(ctx context.Context, k *tandem.APIKey) error {
	err := t.tx.QueryRowContext(ctx, `
		INSERT INTO api_keys (name, role_id, prefix, hash, created_by, created_at, last_used_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		k.Name, k.RoleID, k.Prefix, blob(k.Hash), k.CreatedBy,
		micros(k.CreatedAt), micros(k.LastUsedAt), micros(k.RevokedAt),
	).Scan(&k.ID)
	if err != nil {
		if isForeignKey(err) {
			return conflict(err, "create api key", "role does not exist")
		}
		return conflict(err, "create api key", "key already exists")
	}
	return nil
}

// APIKey returns the key with the id.
func (t *tx) APIKey(ctx context.Context, id int64) (*tandem.APIKey, error) {
	k, err := scanAPIKey(t.tx.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "api key", "API key not found")
	}
	return k, nil
}

// APIKeyByHash returns the key whose secret has the SHA-256 hash.
func (t *tx) APIKeyByHash(ctx context.Context, hash []byte) (*tandem.APIKey, error) {
	k, err := scanAPIKey(t.tx.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = ?`, blob(hash)))
	if err != nil {
		return nil, notFound(err, "api key by hash", "API key not found")
	}
	return k, nil
}

// APIKeys returns every key, revoked ones too, by id.
func (t *tx) APIKeys(ctx context.Context) ([]*tandem.APIKey, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: api keys: %w", err)
	}
	defer rows.Close()
	var keys []*tandem.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: api keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: api keys: %w", err)
	}
	return keys, nil
}

// UpdateAPIKey writes LastUsedAt and RevokedAt.
func (t *tx) UpdateAPIKey(ctx context.Context, k *tandem.APIKey) error {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE api_keys SET last_used_at = ?, revoked_at = ? WHERE id = ?`,
		micros(k.LastUsedAt), micros(k.RevokedAt), k.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update api key: %w", err)
	}
	return mustAffect(res, "update api key", "API key not found")
}
