package service

import (
	"context"
	"slices"

	"github.com/tandemhq/tandem"
)

// RoleInput is the input of CreateRole and UpdateRole.
type RoleInput struct {
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Permissions []tandem.Permission `json:"permissions"`
}

func (in *RoleInput) check() []tandem.FieldError {
	fields := checkName("name", in.Name, 64)
	switch {
	case len(in.Description) > 500:
		fields = append(fields, tandem.FieldError{Field: "description", Message: "is too long"})
	case !validText(in.Description):
		fields = append(fields, tandem.FieldError{Field: "description", Message: "must be valid UTF-8 without NUL characters"})
	}
	for _, p := range in.Permissions {
		if !p.Valid() {
			fields = append(fields, tandem.FieldError{Field: "permissions", Message: "unknown permission " + string(p)})
			break
		}
	}
	slices.Sort(in.Permissions)
	in.Permissions = slices.Compact(in.Permissions)
	return fields
}

func roleView(r *tandem.Role) map[string]any {
	return map[string]any{"id": r.ID, "name": r.Name, "description": r.Description, "permissions": r.Permissions}
}

// Roles lists every role. Any admin may read them: roles are not secret,
// and pages that assign one need the list.
func (s *Service) Roles(ctx context.Context, a *Actor) ([]*tandem.Role, error) {
	var out []*tandem.Role
	err := s.view(ctx, a, op{action: "role.list"}, func(tx tandem.Tx) (err error) {
		out, err = tx.Roles(ctx)
		return err
	})
	return out, err
}

// Role returns one role.
func (s *Service) Role(ctx context.Context, a *Actor, id int64) (*tandem.Role, error) {
	var out *tandem.Role
	err := s.view(ctx, a, op{action: "role.read", targetType: "role", targetID: idString(id)}, func(tx tandem.Tx) (err error) {
		out, err = tx.Role(ctx, id)
		return err
	})
	return out, err
}

// CreateRole creates a role.
func (s *Service) CreateRole(ctx context.Context, a *Actor, in RoleInput) (*tandem.Role, error) {
	fields := in.check()
	var out *tandem.Role
	err := s.update(ctx, a, op{action: "role.create", perm: tandem.PermRolesManage, reauth: true, targetType: "role"},
		func(tx tandem.Tx, rec *tandem.AuditRecord) error {
			if err := tandem.Invalid(fields); err != nil {
				return err
			}
			if err := checkGrant(a, in.Permissions); err != nil {
				return err
			}
			now := s.now()
			r := &tandem.Role{Name: in.Name, Description: in.Description, Permissions: in.Permissions, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateRole(ctx, r); err != nil {
				if tandem.ErrorCodeOf(err) == tandem.EConflict {
					return tandem.Invalid([]tandem.FieldError{{Field: "name", Message: "is taken"}})
				}
				return err
			}
			rec.TargetID, rec.After = idString(r.ID), auditJSON(roleView(r))
			out = r
			return nil
		})
	return out, err
}

// UpdateRole changes a role. The change reaches every holder on their next
// request. Built-in roles cannot be changed.
func (s *Service) UpdateRole(ctx context.Context, a *Actor, id int64, in RoleInput) (*tandem.Role, error) {
	fields := in.check()
	var out *tandem.Role
	err := s.update(ctx, a, op{action: "role.update", perm: tandem.PermRolesManage, reauth: true, targetType: "role", targetID: idString(id)},
		func(tx tandem.Tx, rec *tandem.AuditRecord) error {
			r, err := tx.Role(ctx, id)
			if err != nil {
				return err
			}
			if r.Builtin {
				return tandem.Errorf(tandem.EConflict, "built-in roles cannot be changed; create a role instead")
			}
			if err := tandem.Invalid(fields); err != nil {
				return err
			}
			// Both ways: no adding a permission the actor lacks, and no
			// changing a role that holds more than the actor.
			if err := checkGrant(a, r.Permissions); err != nil {
				return tandem.Errorf(tandem.EPermission, "you cannot change a role that holds permissions you do not")
			}
			if err := checkGrant(a, in.Permissions); err != nil {
				return err
			}
			rec.Before = auditJSON(roleView(r))
			r.Name, r.Description, r.Permissions, r.UpdatedAt = in.Name, in.Description, in.Permissions, s.now()
			if err := tx.UpdateRole(ctx, r); err != nil {
				if tandem.ErrorCodeOf(err) == tandem.EConflict {
					return tandem.Invalid([]tandem.FieldError{{Field: "name", Message: "is taken"}})
				}
				return err
			}
			rec.After = auditJSON(roleView(r))
			out = r
			return nil
		})
	return out, err
}

// DeleteRole deletes a role no admin or API key holds.
func (s *Service) DeleteRole(ctx context.Context, a *Actor, id int64) error {
	return s.update(ctx, a, op{action: "role.delete", perm: tandem.PermRolesManage, reauth: true, targetType: "role", targetID: idString(id)},
		func(tx tandem.Tx, rec *tandem.AuditRecord) error {
			r, err := tx.Role(ctx, id)
			if err != nil {
				return err
			}
			if r.Builtin {
				return tandem.Errorf(tandem.EConflict, "built-in roles cannot be deleted")
			}
			rec.Before = auditJSON(roleView(r))
			return tx.DeleteRole(ctx, id)
		})
}
