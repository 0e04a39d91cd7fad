package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	tandem "github.com/tandemhq/tandem"
)

// wantRole is r as a store returns it.
func wantRole(r tandem.Role) *tandem.Role {
	r.CreatedAt = norm(r.CreatedAt)
	r.UpdatedAt = norm(r.UpdatedAt)
	return &r
}

// roleOpts: a role without permissions may come back with a nil or an
// empty slice.
func roleOpts() cmp.Options {
	return cmp.Options{exactTime(), cmpopts.EquateEmpty()}
}

func createRole(t *testing.T, s tandem.Store, name string, perms ...tandem.Permission) *tandem.Role {
	t.Helper()
	r := &tandem.Role{Name: name, Description: "about " + name, Permissions: perms, CreatedAt: at(0), UpdatedAt: at(0)}
	update(t, s, func(tx tandem.Tx) error { return tx.CreateRole(t.Context(), r) })
	return r
}

func testBuiltinRoles(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	view(t, s, func(tx tandem.Tx) error {
		roles, err := tx.Roles(ctx)
		if err != nil {
			return err
		}
		var got []tandem.Role
		for i, r := range roles {
			if r.ID != int64(i+1) {
				t.Errorf("role %q has id %d, want %d", r.Name, r.ID, i+1)
			}
			got = append(got, *r)
		}
		if diff := cmp.Diff(tandem.BuiltinRoles(), got,
			cmpopts.IgnoreFields(tandem.Role{}, "ID", "CreatedAt", "UpdatedAt")); diff != "" {
			t.Errorf("roles after migration (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testRoleRoundTrips(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	r := tandem.Role{
		Name:        "auditor <b>'; DROP TABLE roles; --",
		Description: "reads the audit log",
		Permissions: []tandem.Permission{tandem.PermAuditRead, tandem.PermStatsRead},
		CreatedAt:   at(time.Hour),
		UpdatedAt:   at(2 * time.Hour),
	}
	empty := tandem.Role{Name: "nothing", CreatedAt: at(0), UpdatedAt: at(0)}
	update(t, s, func(tx tandem.Tx) error {
		if err := tx.CreateRole(ctx, &r); err != nil {
			return err
		}
		return tx.CreateRole(ctx, &empty)
	})
	if r.ID <= 5 || empty.ID <= r.ID {
		t.Fatalf("ids after five built-in roles: %d then %d, want increasing ids above 5", r.ID, empty.ID)
	}

	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.Role(ctx, r.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantRole(r), got, roleOpts()); diff != "" {
			t.Errorf("Role (-want +got):\n%s", diff)
		}
		got, err = tx.RoleByName(ctx, r.Name)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantRole(r), got, roleOpts()); diff != "" {
			t.Errorf("RoleByName (-want +got):\n%s", diff)
		}
		roles, err := tx.Roles(ctx)
		if err != nil {
			return err
		}
		if len(roles) != 7 {
			t.Fatalf("Roles returned %d roles, want 7", len(roles))
		}
		if diff := cmp.Diff([]*tandem.Role{wantRole(r), wantRole(empty)}, roles[5:], roleOpts()); diff != "" {
			t.Errorf("Roles after the built-in ones (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testUpdateRole(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	r := createRole(t, s, "editors", tandem.PermContentWrite)
	changed := *r
	changed.Name = "writers"
	changed.Description = "write content and read stats"
	changed.Permissions = []tandem.Permission{tandem.PermContentWrite, tandem.PermStatsRead}
	changed.UpdatedAt = at(time.Minute)
	// Not written by UpdateRole:
	changed.Builtin = true
	changed.CreatedAt = at(time.Hour)
	update(t, s, func(tx tandem.Tx) error { return tx.UpdateRole(ctx, &changed) })

	want := changed
	want.Builtin = false
	want.CreatedAt = r.CreatedAt
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.Role(ctx, r.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantRole(want), got, roleOpts()); diff != "" {
			t.Errorf("Role after UpdateRole (-want +got):\n%s", diff)
		}
		if _, err := tx.RoleByName(ctx, "editors"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Errorf("RoleByName(old name): err %v, want not found", err)
		}
		return nil
	})
}

func testTakenRoleNameIsConflict(t *testing.T, s tandem.Store) {
	r := createRole(t, s, "mine")
	wantCode(t, s, tandem.EConflict, "CreateRole(owner)", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateRole(ctx, &tandem.Role{Name: tandem.RoleOwner})
	})
	wantCode(t, s, tandem.EConflict, "UpdateRole to owner", func(ctx context.Context, tx tandem.Tx) error {
		renamed := *r
		renamed.Name = tandem.RoleOwner
		return tx.UpdateRole(ctx, &renamed)
	})
}

func testMissingRoleIsNotFound(t *testing.T, s tandem.Store) {
	wantCode(t, s, tandem.ENotFound, "Role", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.Role(ctx, 999)
		return err
	})
	wantCode(t, s, tandem.ENotFound, "RoleByName", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.RoleByName(ctx, "nobody")
		return err
	})
	wantCode(t, s, tandem.ENotFound, "UpdateRole", func(ctx context.Context, tx tandem.Tx) error {
		return tx.UpdateRole(ctx, &tandem.Role{ID: 999, Name: "ghost"})
	})
	wantCode(t, s, tandem.ENotFound, "DeleteRole", func(ctx context.Context, tx tandem.Tx) error {
		return tx.DeleteRole(ctx, 999)
	})
}

func testDeleteRoleRemovesIt(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	r := createRole(t, s, "short-lived")
	update(t, s, func(tx tandem.Tx) error { return tx.DeleteRole(ctx, r.ID) })
	wantCode(t, s, tandem.ENotFound, "Role after DeleteRole", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.Role(ctx, r.ID)
		return err
	})
	// The name is free again.
	createRole(t, s, "short-lived")
}

func testDeleteRoleInUseIsConflict(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	heldByAdmin := createRole(t, s, "held-by-admin")
	heldByKey := createRole(t, s, "held-by-key")
	a := createAdmin(t, s, "holder", heldByAdmin.ID)
	update(t, s, func(tx tandem.Tx) error {
		return tx.CreateAPIKey(ctx, &tandem.APIKey{Name: "k", RoleID: heldByKey.ID, Hash: []byte("key-hash"), CreatedBy: a.ID})
	})

	for _, r := range []*tandem.Role{heldByAdmin, heldByKey} {
		wantCode(t, s, tandem.EConflict, "DeleteRole("+r.Name+")", func(ctx context.Context, tx tandem.Tx) error {
			return tx.DeleteRole(ctx, r.ID)
		})
	}
	view(t, s, func(tx tandem.Tx) error {
		for _, r := range []*tandem.Role{heldByAdmin, heldByKey} {
			if _, err := tx.Role(ctx, r.ID); err != nil {
				t.Errorf("role %q after a refused DeleteRole: %v", r.Name, err)
			}
		}
		return nil
	})
}
