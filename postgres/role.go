package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem"
)

const roleColumns = `id, name, description, permissions, builtin, created_at, updated_at`

func scanRole(row pgx.Row) (*tandem.Role, error) {
	var r tandem.Role
	var perms []string
	err := row.Scan(&r.ID, &r.Name, &r.Description, &perms, &r.Builtin, scanTime(&r.CreatedAt), scanTime(&r.UpdatedAt))
	if err != nil {
		return nil, err
	}
	for _, p := range perms {
		r.Permissions = append(r.Permissions, tandem.Permission(p))
	}
	return &r, nil
}

// permissionsArg returns the permissions as stored: sorted and unique.
func permissionsArg(perms []tandem.Permission) []string {
	out := make([]string, len(perms))
	for i, p := range perms {
		out[i] = string(p)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (t *tx) CreateRole(ctx context.Context, r *tandem.Role) error {
	err := t.tx.QueryRow(ctx, `INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		r.Name, r.Description, permissionsArg(r.Permissions), r.Builtin, timeArg(r.CreatedAt), timeArg(r.UpdatedAt),
	).Scan(&r.ID)
	if err != nil {
		return dbError(err, "create role", "a role with this name already exists", "")
	}
	return nil
}

func (t *tx) Role(ctx context.Context, id int64) (*tandem.Role, error) {
	r, err := scanRole(t.tx.QueryRow(ctx, `SELECT `+roleColumns+` FROM roles WHERE id = $1`+t.keyShare(), id))
	if err != nil {
		return nil, notFound(err, "read role", "role not found")
	}
	return r, nil
}

func (t *tx) RoleByName(ctx context.Context, name string) (*tandem.Role, error) {
	r, err := scanRole(t.tx.QueryRow(ctx, `SELECT `+roleColumns+` FROM roles WHERE name = $1`+t.keyShare(), name))
	if err != nil {
		return nil, notFound(err, "read role by name", "role not found")
	}
	return r, nil
}

func (t *tx) Roles(ctx context.Context) ([]*tandem.Role, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+roleColumns+` FROM roles ORDER BY id`)
	if err != nil {
		return nil, dbError(err, "list roles", "", "")
	}
	roles, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.Role, error) { return scanRole(r) })
	if err != nil {
		return nil, dbError(err, "list roles", "", "")
	}
	return roles, nil
}

func (t *tx) UpdateRole(ctx context.Context, r *tandem.Role) error {
	tag, err := t.tx.Exec(ctx, `UPDATE roles SET name = $2, description = $3, permissions = $4, updated_at = $5
		WHERE id = $1`,
		r.ID, r.Name, r.Description, permissionsArg(r.Permissions), timeArg(r.UpdatedAt))
	if err != nil {
		return dbError(err, "update role", "a role with this name already exists", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "role not found")
	}
	return nil
}

func (t *tx) DeleteRole(ctx context.Context, id int64) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM roles WHERE id = $1`, id)
	if err != nil {
		return dbError(err, "delete role", "", "the role is still held by an admin or an API key")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "role not found")
	}
	return nil
}

// keyShare is the lock a role read takes inside Update. Roles are read by
// many write transactions (every admin change, every login) and in no
// fixed order, so an exclusive row lock would let two of them deadlock; a
// key-share lock only keeps the role from being deleted meanwhile.
func (t *tx) keyShare() string {
	if t.lockRows == "" {
		return ""
	}
	return " FOR KEY SHARE"
}
