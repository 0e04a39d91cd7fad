package admin

import (
	"net/http"
	"strconv"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

type rolesData struct {
	Roles []*tandem.Role
	// CanManage shows the create form.
	CanManage bool
}

func (u *ui) roles(w http.ResponseWriter, r *http.Request) { u.rolesView(w, r, nil, http.StatusOK) }

func (u *ui) rolesView(w http.ResponseWriter, r *http.Request, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	roles, err := u.svc.Roles(r.Context(), a)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := rolesData{Roles: roles, CanManage: a.Can(tandem.PermRolesManage)}
	u.render(w, r, status, "roles", &page{Title: "Roles", Active: "/admin/roles", Form: f, Data: d})
}

func roleInput(r *http.Request) service.RoleInput {
	in := service.RoleInput{Name: r.PostForm.Get("name"), Description: r.PostForm.Get("description")}
	for _, p := range r.PostForm["permissions"] {
		in.Permissions = append(in.Permissions, tandem.Permission(p))
	}
	return in
}

func (u *ui) createRole(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	if _, err := u.svc.CreateRole(r.Context(), web.ActorFrom(r.Context()), roleInput(r)); err != nil {
		u.formError(w, r, err, "create", "/admin/roles", func(f *Form, status int) { u.rolesView(w, r, f, status) })
		return
	}
	u.seeOther(w, r, "/admin/roles?done=role-created")
}

type roleData struct {
	Role *tandem.Role
	// Permissions lists every permission, marking the ones the role holds.
	Permissions []permCheck
	// CanEdit shows the edit and delete forms: the viewer may manage roles
	// and the role is not built in.
	CanEdit bool
}

func (u *ui) role(w http.ResponseWriter, r *http.Request) {
	id, ok := u.pathID(w, r)
	if !ok {
		return
	}
	u.roleView(w, r, id, nil, http.StatusOK)
}

func (u *ui) roleView(w http.ResponseWriter, r *http.Request, id int64, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	role, err := u.svc.Role(r.Context(), a, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := roleData{Role: role, Permissions: newPermChecks(&Form{}, role, a).Checks,
		CanEdit: a.Can(tandem.PermRolesManage) && !role.Builtin}
	u.render(w, r, status, "role", &page{Title: "Role " + role.Name, Active: "/admin/roles", Form: f, Data: d})
}

func (u *ui) updateRole(w http.ResponseWriter, r *http.Request) {
	id, ok := u.pathID(w, r)
	if !ok || !u.parseForm(w, r) {
		return
	}
	if _, err := u.svc.UpdateRole(r.Context(), web.ActorFrom(r.Context()), id, roleInput(r)); err != nil {
		u.formError(w, r, err, "edit", rolePath(id), func(f *Form, status int) { u.roleView(w, r, id, f, status) })
		return
	}
	u.seeOther(w, r, rolePath(id)+"?done=role-saved")
}

func (u *ui) deleteRole(w http.ResponseWriter, r *http.Request) {
	id, ok := u.pathID(w, r)
	if !ok {
		return
	}
	if err := u.svc.DeleteRole(r.Context(), web.ActorFrom(r.Context()), id); err != nil {
		u.formError(w, r, err, "delete", rolePath(id), func(f *Form, status int) { u.roleView(w, r, id, f, status) })
		return
	}
	u.seeOther(w, r, "/admin/roles?done=role-deleted")
}

func rolePath(id int64) string { return "/admin/roles/" + strconv.FormatInt(id, 10) }
