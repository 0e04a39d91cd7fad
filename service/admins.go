package service

import (
	"context"

	"github.com/tandemhq/tandem"
)

// NewAdmin is the input of CreateAdmin.
type NewAdmin struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	RoleID   int64  `json:"role_id"`
}

// AdminUpdate is the input of UpdateAdmin; nil fields stay as they are.
type AdminUpdate struct {
	RoleID   *int64 `json:"role_id,omitempty"`
	Disabled *bool  `json:"disabled,omitempty"`
	// Password sets a new password (for an admin who lost theirs); their
	// sessions end.
	Password *string `json:"password,omitempty"`
}

// adminView is what the audit log keeps of an admin: never secrets.
func adminView(a *tandem.Admin) map[string]any {
	return map[string]any{"id": a.ID, "name": a.Name, "role_id": a.RoleID, "disabled": a.Disabled, "mfa": a.MFAEnabled()}
}

// Admins lists every admin.
func (s *Service) Admins(ctx context.Context, a *Actor) ([]*tandem.Admin, error) {
	var out []*tandem.Admin
	err := s.view(ctx, a, op{action: "admin.list", perm: tandem.PermAdminsManage}, func(tx tandem.Tx) (err error) {
		out, err = tx.Admins(ctx)
		return err
	})
	return out, err
}

// Admin returns one admin. An admin may always read their own record.
func (s *Service) Admin(ctx context.Context, a *Actor, id int64) (*tandem.Admin, error) {
	o := op{action: "admin.read", perm: tandem.PermAdminsManage, targetType: "admin", targetID: idString(id)}
	if a != nil && a.Kind == tandem.ActorAdmin && a.ID == id {
		o.perm = ""
	}
	var out *tandem.Admin
	err := s.view(ctx, a, o, func(tx tandem.Tx) (err error) {
		out, err = tx.Admin(ctx, id)
		return err
	})
	return out, err
}

// CreateAdmin creates an admin with a role and an initial password.
func (s *Service) CreateAdmin(ctx context.Context, a *Actor, in NewAdmin) (*tandem.Admin, error) {
	fields := checkName("name", in.Name, 64)
	fields = append(fields, checkPassword("password", in.Password, in.Name)...)
	if in.RoleID <= 0 {
		fields = append(fields, tandem.FieldError{Field: "role_id", Message: "choose a role"})
	}
	var hash string
	if len(fields) == 0 && s.authorize(a, op{perm: tandem.PermAdminsManage, reauth: true}) == nil {
		var err error
		if hash, err = s.passwords.hash(ctx, in.Password); err != nil {
			return nil, err
		}
	}
	var out *tandem.Admin
	err := s.update(ctx, a, op{action: "admin.create", perm: tandem.PermAdminsManage, reauth: true, targetType: "admin"},
		func(tx tandem.Tx, rec *tandem.AuditRecord) error {
			rec.After = auditJSON(map[string]any{"name": in.Name, "role_id": in.RoleID})
			if err := tandem.Invalid(fields); err != nil {
				return err
			}
			if _, err := grantableRole(ctx, tx, a, in.RoleID, "role_id"); err != nil {
				return err
			}
			now := s.now()
			admin := &tandem.Admin{Name: in.Name, RoleID: in.RoleID, PasswordHash: hash,
				PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateAdmin(ctx, admin); err != nil {
				if tandem.ErrorCodeOf(err) == tandem.EConflict {
					return tandem.Invalid([]tandem.FieldError{{Field: "name", Message: "is taken"}})
				}
				return err
			}
			rec.TargetID, rec.After = idString(admin.ID), auditJSON(adminView(admin))
			out = admin
			return nil
		})
	return out, err
}

// UpdateAdmin changes another admin's role, disables or enables them, or
// sets their password. Disabling or a new password ends their sessions.
// Changing a role needs a fresh password confirmation.
func (s *Service) UpdateAdmin(ctx context.Context, a *Actor, id int64, in AdminUpdate) (*tandem.Admin, error) {
	o := op{action: "admin.update", perm: tandem.PermAdminsManage, reauth: in.RoleID != nil || in.Password != nil,
		targetType: "admin", targetID: idString(id)}
	var fields []tandem.FieldError
	var hash string
	if in.Password != nil {
		fields = append(fields, checkPassword("password", *in.Password, "")...)
		if len(fields) == 0 && s.authorize(a, o) == nil {
			var err error
			if hash, err = s.passwords.hash(ctx, *in.Password); err != nil {
				return nil, err
			}
		}
	}
	var out *tandem.Admin
	err := s.update(ctx, a, o, func(tx tandem.Tx, rec *tandem.AuditRecord) error {
		if err := tandem.Invalid(fields); err != nil {
			return err
		}
		admin, err := tx.Admin(ctx, id)
		if err != nil {
			return err
		}
		rec.Before = auditJSON(adminView(admin))
		if a.Kind == tandem.ActorAdmin && a.ID == id && (in.Disabled != nil || in.RoleID != nil) {
			return tandem.Errorf(tandem.EConflict, "you cannot change your own role or disable yourself")
		}
		// Disabling or re-passwording an admin who holds more than the
		// actor would be a way to take their place.
		current, err := tx.Role(ctx, admin.RoleID)
		if err != nil {
			return err
		}
		if err := checkGrant(a, current.Permissions); err != nil {
			return tandem.Errorf(tandem.EPermission, "you cannot change an admin who holds permissions you do not")
		}
		endSessions := false
		if in.RoleID != nil {
			if _, err := grantableRole(ctx, tx, a, *in.RoleID, "role_id"); err != nil {
				return err
			}
			admin.RoleID = *in.RoleID
		}
		if in.Disabled != nil {
			admin.Disabled = *in.Disabled
			endSessions = endSessions || admin.Disabled
		}
		if in.Password != nil {
			admin.PasswordHash, admin.PasswordChangedAt = hash, s.now()
			endSessions = true
		}
		if err := s.keepAnOwner(ctx, tx, admin); err != nil {
			return err
		}
		admin.UpdatedAt = s.now()
		if err := tx.UpdateAdmin(ctx, admin); err != nil {
			return err
		}
		after := adminView(admin)
		if endSessions {
			if _, err := tx.DeleteAdminSessions(ctx, id, nil); err != nil {
				return err
			}
		}
		if in.Disabled != nil && *in.Disabled {
			// The keys they made go with them: they saw the secrets.
			revoked, err := s.revokeKeysOf(ctx, tx, id)
			if err != nil {
				return err
			}
			after["api_keys_revoked"] = revoked
		}
		rec.After = auditJSON(after)
		out = admin
		return nil
	})
	return out, err
}

// keepAnOwner refuses a change that would leave no enabled admin with the
// owner role: nobody could manage admins or roles any more.
func (s *Service) keepAnOwner(ctx context.Context, tx tandem.Tx, changed *tandem.Admin) error {
	owner, err := tx.RoleByName(ctx, tandem.RoleOwner)
	if err != nil {
		return err
	}
	admins, err := tx.Admins(ctx)
	if err != nil {
		return err
	}
	for _, x := range admins {
		if x.ID == changed.ID {
			x = changed
		}
		if x.RoleID == owner.ID && !x.Disabled {
			return nil
		}
	}
	return tandem.Errorf(tandem.EConflict, "this would leave no enabled owner")
}

// revokeKeysOf revokes every valid API key the admin created and returns
// their ids.
func (s *Service) revokeKeysOf(ctx context.Context, tx tandem.Tx, adminID int64) ([]int64, error) {
	keys, err := tx.APIKeys(ctx)
	if err != nil {
		return nil, err
	}
	revoked := []int64{}
	for _, k := range keys {
		if k.CreatedBy != adminID || k.Revoked() {
			continue
		}
		k.RevokedAt = s.now()
		if err := tx.UpdateAPIKey(ctx, k); err != nil {
			return nil, err
		}
		revoked = append(revoked, k.ID)
	}
	return revoked, nil
}
