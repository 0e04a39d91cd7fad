package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	tandem "github.com/tandemhq/tandem"
)

const roleColumns = `id, name, description, permissions, builtin, created_at, updated_at`

func scanRole(row interface{ Scan(...any) error }) (*tandem.Role, error) {
	var (
		r                  tandem.Role
		perms              string
		createdAt, updated sql.NullInt64
	)
	if err := row.Scan(&r.ID, &r.Name, &r.Description, &perms, &r.Builtin, &createdAt, &updated); err != nil {
		return nil, err
	}
	r.Permissions = parsePermissions(perms)
	r.CreatedAt = timeOf(createdAt)
	r.UpdatedAt = timeOf(updated)
	return &r, nil
}

// formatPermissions stores permissions as sorted, unique, space-separated
// text: a role's set is always read and written whole.
func formatPermissions(perms []tandem.Permission) string {
	s := make([]string, len(perms))
	for i, p := range perms {
		s[i] = string(p)
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), " ")
}

func parsePermissions(s string) []tandem.Permission {
	var perms []tandem.Permission
	for f := range strings.FieldsSeq(s) {
		perms = append(perms, tandem.Permission(f))
	}
	return perms
}

// CreateRole inserts r and sets r.ID.
func (t *tx) CreateRole(ctx context.Context, r *tandem.Role) error {
	err := t.tx.QueryRowContext(ctx, `
		INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		RETURNING id`,
		r.Name, r.Description, formatPermissions(r.Permissions), r.Builtin,
		micros(r.CreatedAt), micros(r.UpdatedAt),
	).Scan(&r.ID)
	if err != nil {
		return conflict(err, "create role", "name already taken")
	}
	return nil
}

// Role returns the role with the id.
func (t *tx) Role(ctx context.Context, id int64) (*tandem.Role, error) {
	r, err := scanRole(t.tx.QueryRowContext(ctx, `SELECT `+roleColumns+` FROM roles WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "role", "role not found")
	}
	return r, nil
}

// RoleByName returns the role with the name.
func (t *tx) RoleByName(ctx context.Context, name string) (*tandem.Role, error) {
	r, err := scanRole(t.tx.QueryRowContext(ctx, `SELECT `+roleColumns+` FROM roles WHERE name = ?`, name))
	if err != nil {
		return nil, notFound(err, "role by name", "role not found")
	}
	return r, nil
}

// Roles returns every role by id.
func (t *tx) Roles(ctx context.Context) ([]*tandem.Role, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+roleColumns+` FROM roles ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: roles: %w", err)
	}
	defer rows.Close()
	var roles []*tandem.Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: roles: %w", err)
		}
		roles = append(roles, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: roles: %w", err)
	}
	return roles, nil
}

// UpdateRole writes Name, Description, Permissions and UpdatedAt.
func (t *tx) UpdateRole(ctx context.Context, r *tandem.Role) error {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE roles SET name = ?, description = ?, permissions = ?, updated_at = ?
		WHERE id = ?`,
		r.Name, r.Description, formatPermissions(r.Permissions), micros(r.UpdatedAt), r.ID)
	if err != nil {
		return conflict(err, "update role", "name already taken")
	}
	return mustAffect(res, "update role", "role not found")
}

// DeleteRole removes a role; the foreign keys of admins and api_keys refuse
// it while either still holds it.
func (t *tx) DeleteRole(ctx context.Context, id int64) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM roles WHERE id = ?`, id)
	if err != nil {
		return conflict(err, "delete role", "role is still in use")
	}
	return mustAffect(res, "delete role", "role not found")
}
