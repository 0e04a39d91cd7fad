package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"

	"github.com/tandemhq/tandem"
)

// NewAPIKey is the input of CreateAPIKey.
type NewAPIKey struct {
	Name   string `json:"name"`
	RoleID int64  `json:"role_id"`
}

// apiKeyPrefix starts every admin API key, so a leaked one is recognisable
// by secret scanners.
const apiKeyPrefix = "tdk_"

func apiKeyView(k *tandem.APIKey) map[string]any {
	return map[string]any{"id": k.ID, "name": k.Name, "role_id": k.RoleID, "prefix": k.Prefix, "revoked": k.Revoked()}
}

// APIKeys lists every admin API key (never a secret).
func (s *Service) APIKeys(ctx context.Context, a *Actor) ([]*tandem.APIKey, error) {
	var out []*tandem.APIKey
	err := s.view(ctx, a, op{action: "apikey.list", perm: tandem.PermAdminsManage}, func(tx tandem.Tx) (err error) {
		out, err = tx.APIKeys(ctx)
		return err
	})
	return out, err
}

// CreateAPIKey creates a key bound to a role and returns its secret, which
// is shown this once: only its SHA-256 is kept.
func (s *Service) CreateAPIKey(ctx context.Context, a *Actor, in NewAPIKey) (string, *tandem.APIKey, error) {
	fields := checkName("name", in.Name, 64)
	if in.RoleID <= 0 {
		fields = append(fields, tandem.FieldError{Field: "role_id", Message: "choose a role"})
	}
	b := make([]byte, 32)
	rand.Read(b)
	secret := apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	var out *tandem.APIKey
	err := s.update(ctx, a, op{action: "apikey.create", perm: tandem.PermAdminsManage, reauth: true, targetType: "apikey"},
		func(tx tandem.Tx, rec *tandem.AuditRecord) error {
			if err := tandem.Invalid(fields); err != nil {
				return err
			}
			if _, err := grantableRole(ctx, tx, a, in.RoleID, "role_id"); err != nil {
				return err
			}
			k := &tandem.APIKey{Name: in.Name, RoleID: in.RoleID, Prefix: secret[:len(apiKeyPrefix)+6],
				Hash: hashToken(secret), CreatedBy: a.ID, CreatedAt: s.now()}
			if err := tx.CreateAPIKey(ctx, k); err != nil {
				return err
			}
			rec.TargetID, rec.After = idString(k.ID), auditJSON(apiKeyView(k))
			out = k
			return nil
		})
	if err != nil {
		return "", nil, err
	}
	return secret, out, nil
}

// RevokeAPIKey revokes a key at once.
func (s *Service) RevokeAPIKey(ctx context.Context, a *Actor, id int64) error {
	return s.update(ctx, a, op{action: "apikey.revoke", perm: tandem.PermAdminsManage, reauth: true, targetType: "apikey", targetID: idString(id)},
		func(tx tandem.Tx, rec *tandem.AuditRecord) error {
			k, err := tx.APIKey(ctx, id)
			if err != nil {
				return err
			}
			if k.Revoked() {
				return tandem.Errorf(tandem.EConflict, "the key is already revoked")
			}
			rec.Before = auditJSON(apiKeyView(k))
			k.RevokedAt = s.now()
			rec.After = auditJSON(apiKeyView(k))
			return tx.UpdateAPIKey(ctx, k)
		})
}
