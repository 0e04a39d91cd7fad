package admin

import (
	"net/http"
	"strconv"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// The overview, the admin's own account, admins and API keys.

type overviewData struct{ *service.Overview }

func (u *ui) overview(w http.ResponseWriter, r *http.Request) {
	o, err := u.svc.Overview(r.Context(), web.ActorFrom(r.Context()))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "overview", &page{Title: "Overview", Active: "/admin", Data: overviewData{o}})
}

type accountData struct {
	Admin *tandem.Admin
	Role  *tandem.Role
}

func (u *ui) account(w http.ResponseWriter, r *http.Request) { u.accountView(w, r, nil, http.StatusOK) }

func (u *ui) accountView(w http.ResponseWriter, r *http.Request, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	me, err := u.svc.Admin(r.Context(), a, a.ID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, status, "account", &page{Title: "Your account", Active: "/admin/account", Form: f,
		Data: accountData{Admin: me, Role: a.Role}})
}

func (u *ui) changePassword(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	err := u.svc.ChangePassword(r.Context(), web.ActorFrom(r.Context()), r.PostForm.Get("current_password"), r.PostForm.Get("new_password"))
	if err != nil {
		u.formError(w, r, err, "password", "/admin/account", func(f *Form, status int) { u.accountView(w, r, f, status) })
		return
	}
	// Every session has ended, this one too: log in with the new password.
	u.seeOther(w, r, "/admin/login")
}

type adminsData struct {
	Admins    []*tandem.Admin
	Roles     []*tandem.Role
	RoleNames map[int64]string
	// Self is the viewer's id: they cannot disable themselves or change
	// their own role, so their row offers neither.
	Self int64
}

func (u *ui) admins(w http.ResponseWriter, r *http.Request) { u.adminsView(w, r, nil, http.StatusOK) }

func (u *ui) adminsView(w http.ResponseWriter, r *http.Request, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	admins, err := u.svc.Admins(r.Context(), a)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	roles, err := u.svc.Roles(r.Context(), a)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := adminsData{Admins: admins, Roles: roles, RoleNames: roleNames(roles), Self: a.ID}
	u.render(w, r, status, "admins", &page{Title: "Admins", Active: "/admin/admins", Form: f, Data: d})
}

func (u *ui) createAdmin(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	in := service.NewAdmin{Name: r.PostForm.Get("name"), Password: r.PostForm.Get("password"), RoleID: formID(r, "role_id")}
	if _, err := u.svc.CreateAdmin(r.Context(), web.ActorFrom(r.Context()), in); err != nil {
		u.formError(w, r, err, "create", "/admin/admins", func(f *Form, status int) { u.adminsView(w, r, f, status) })
		return
	}
	u.seeOther(w, r, "/admin/admins?done=admin-created")
}

// updateAdmin does one of the row actions of the admins table, named by
// the form's action field.
func (u *ui) updateAdmin(w http.ResponseWriter, r *http.Request) {
	id, ok := u.pathID(w, r)
	if !ok || !u.parseForm(w, r) {
		return
	}
	var in service.AdminUpdate
	action := r.PostForm.Get("action")
	switch action {
	case "role":
		role := formID(r, "role_id")
		in.RoleID = &role
	case "disable", "enable":
		disabled := action == "disable"
		in.Disabled = &disabled
	case "password":
		password := r.PostForm.Get("password")
		in.Password = &password
	default:
		u.fail(w, r, tandem.Invalid([]tandem.FieldError{{Field: "action", Message: "must be role, disable, enable or password"}}))
		return
	}
	if _, err := u.svc.UpdateAdmin(r.Context(), web.ActorFrom(r.Context()), id, in); err != nil {
		key := "admin-" + strconv.FormatInt(id, 10) + "-" + action
		u.formError(w, r, err, key, "/admin/admins", func(f *Form, status int) { u.adminsView(w, r, f, status) })
		return
	}
	u.seeOther(w, r, "/admin/admins?done=admin-updated")
}

type apiKeysData struct {
	Keys       []*tandem.APIKey
	Roles      []*tandem.Role
	RoleNames  map[int64]string
	AdminNames map[int64]string
	// Secret is the key just created, shown this once.
	Secret string
	New    *tandem.APIKey
}

func (u *ui) apiKeys(w http.ResponseWriter, r *http.Request) {
	u.apiKeysView(w, r, nil, http.StatusOK, apiKeysData{})
}

func (u *ui) apiKeysView(w http.ResponseWriter, r *http.Request, f *Form, status int, d apiKeysData) {
	a := web.ActorFrom(r.Context())
	var err error
	if d.Keys, err = u.svc.APIKeys(r.Context(), a); err != nil {
		u.fail(w, r, err)
		return
	}
	if d.Roles, err = u.svc.Roles(r.Context(), a); err != nil {
		u.fail(w, r, err)
		return
	}
	admins, err := u.svc.Admins(r.Context(), a)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.RoleNames, d.AdminNames = roleNames(d.Roles), map[int64]string{}
	for _, x := range admins {
		d.AdminNames[x.ID] = x.Name
	}
	u.render(w, r, status, "apikeys", &page{Title: "API keys", Active: "/admin/api-keys", Form: f, Data: d})
}

func (u *ui) createAPIKey(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	in := service.NewAPIKey{Name: r.PostForm.Get("name"), RoleID: formID(r, "role_id")}
	secret, key, err := u.svc.CreateAPIKey(r.Context(), web.ActorFrom(r.Context()), in)
	if err != nil {
		u.formError(w, r, err, "create", "/admin/api-keys", func(f *Form, status int) {
			u.apiKeysView(w, r, f, status, apiKeysData{})
		})
		return
	}
	// Shown in this answer, never again: no redirect that could lose it.
	u.apiKeysView(w, r, nil, http.StatusCreated, apiKeysData{Secret: secret, New: key})
}

func (u *ui) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	id, ok := u.pathID(w, r)
	if !ok {
		return
	}
	if err := u.svc.RevokeAPIKey(r.Context(), web.ActorFrom(r.Context()), id); err != nil {
		key := "key-" + strconv.FormatInt(id, 10)
		u.formError(w, r, err, key, "/admin/api-keys", func(f *Form, status int) {
			u.apiKeysView(w, r, f, status, apiKeysData{})
		})
		return
	}
	u.seeOther(w, r, "/admin/api-keys?done=key-revoked")
}

func roleNames(roles []*tandem.Role) map[int64]string {
	m := make(map[int64]string, len(roles))
	for _, r := range roles {
		m[r.ID] = r.Name
	}
	return m
}

// formID reads a positive id from a form field; anything else is 0, which
// the service reports as a missing choice.
func formID(r *http.Request, name string) int64 {
	id, err := strconv.ParseInt(r.PostForm.Get(name), 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// pathID reads the {id} of the route, answering 422 naming "id" when it is
// not a positive integer.
func (u *ui) pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		u.fail(w, r, tandem.Invalid([]tandem.FieldError{{Field: "id", Message: "must be a positive integer"}}))
		return 0, false
	}
	return id, true
}
