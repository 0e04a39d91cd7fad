package web

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// APIPrefix is where the admin JSON API lives.
const APIPrefix = "/api/admin/v1"

// api holds the JSON API's handlers. Each calls one service method; the
// response structs below say exactly what leaves the server, so no hash or
// secret can slip out with a domain type.
type api struct {
	svc     *service.Service
	cookies Cookies
}

// APIRoutes returns the admin JSON API and the server's health check.
// Each route's Permission mirrors the one its service method checks (""
// where the service needs none).
func APIRoutes(svc *service.Service, cookies Cookies) []Route {
	a := &api{svc: svc, cookies: cookies}
	const p = APIPrefix
	get, post, put, patch, del := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	routes := []Route{
		{Method: get, Path: "/healthz", Access: Public, Handler: healthz,
			Summary: "liveness: answers ok (text/plain)"},
		{Method: post, Path: p + "/session", Access: Public, API: true, Body: "{name, password}", Handler: a.login,
			Summary: "log in: sets the session and device cookies; answers {mfa} with the MFA step outstanding (\"\", \"enrol\" or \"challenge\")"},
		{Method: post, Path: p + "/session/mfa", Access: Pending, API: true, Body: "{code}", Handler: a.completeMFA,
			Summary: "pass the session's MFA challenge with a TOTP or recovery code"},
		{Method: post, Path: p + "/session/reauth", Access: Admin, API: true, Body: "{password, code}", Handler: a.reauth,
			Summary: "confirm the password (and TOTP code) before sensitive changes"},
		{Method: del, Path: p + "/session", Access: Pending, API: true, Handler: a.logout,
			Summary: "log out: ends the session and clears its cookie"},
		{Method: get, Path: p + "/me", Access: Admin, API: true, Handler: a.me,
			Summary: "the caller: admin or API key, with its role"},
		{Method: get, Path: p + "/overview", Access: Admin, API: true, Handler: a.overview,
			Summary: "counts of admins, roles and audit records, and the last audit checkpoint"},
		{Method: get, Path: p + "/permissions", Access: Admin, API: true, Handler: a.permissions,
			Summary: "every permission a role can hold"},
		{Method: get, Path: p + "/admins", Access: Admin, Permission: tandem.PermAdminsManage, API: true, Handler: a.admins,
			Summary: "list admins"},
		{Method: post, Path: p + "/admins", Access: Admin, Permission: tandem.PermAdminsManage, API: true,
			Body: "{name, password, role_id}", Handler: a.createAdmin,
			Summary: "create an admin (needs a recent re-authentication)"},
		{Method: get, Path: p + "/admins/{id}", Access: Admin, Permission: tandem.PermAdminsManage, API: true, Handler: a.admin,
			Summary: "one admin"},
		{Method: patch, Path: p + "/admins/{id}", Access: Admin, Permission: tandem.PermAdminsManage, API: true,
			Body: "{role_id?, disabled?, password?}", Handler: a.updateAdmin,
			Summary: "change an admin's role, disable or enable them, or set their password (role and password need a recent re-authentication)"},
		{Method: get, Path: p + "/roles", Access: Admin, API: true, Handler: a.roles,
			Summary: "list roles"},
		{Method: post, Path: p + "/roles", Access: Admin, Permission: tandem.PermRolesManage, API: true,
			Body: "{name, description, permissions}", Handler: a.createRole,
			Summary: "create a role (needs a recent re-authentication)"},
		{Method: get, Path: p + "/roles/{id}", Access: Admin, API: true, Handler: a.role,
			Summary: "one role"},
		{Method: put, Path: p + "/roles/{id}", Access: Admin, Permission: tandem.PermRolesManage, API: true,
			Body: "{name, description, permissions}", Handler: a.updateRole,
			Summary: "replace a role's name, description and permissions (not built-in roles; needs a recent re-authentication)"},
		{Method: del, Path: p + "/roles/{id}", Access: Admin, Permission: tandem.PermRolesManage, API: true, Handler: a.deleteRole,
			Summary: "delete a role nobody holds (needs a recent re-authentication)"},
		{Method: get, Path: p + "/api-keys", Access: Admin, Permission: tandem.PermAdminsManage, API: true, Handler: a.apiKeys,
			Summary: "list API keys, revoked ones too (never their secrets)"},
		{Method: post, Path: p + "/api-keys", Access: Admin, Permission: tandem.PermAdminsManage, API: true,
			Body: "{name, role_id}", Handler: a.createAPIKey,
			Summary: "create an API key bound to a role; the answer holds its secret, shown this once (needs a recent re-authentication)"},
		{Method: del, Path: p + "/api-keys/{id}", Access: Admin, Permission: tandem.PermAdminsManage, API: true, Handler: a.revokeAPIKey,
			Summary: "revoke an API key (needs a recent re-authentication)"},
		{Method: get, Path: p + "/audit", Access: Admin, Permission: tandem.PermAuditRead, API: true, Handler: a.audit,
			Summary: "search the audit log, newest first; query: actor, action, target_type, target_id, result, since, until (RFC 3339), before (cursor), limit; answers {records, next}"},
	}
	routes = append(routes, PlayerAdminAPIRoutes(svc)...)
	routes = append(routes, ClusterAPIRoutes(svc)...)
	return append(routes, MatchmakingAPIRoutes(svc)...)
}

// The response bodies.

type adminJSON struct {
	ID                int64     `json:"id"`
	Name              string    `json:"name"`
	RoleID            int64     `json:"role_id"`
	Disabled          bool      `json:"disabled"`
	MFAEnabled        bool      `json:"mfa_enabled"`
	PasswordChangedAt time.Time `json:"password_changed_at"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

func adminOut(a *tandem.Admin) adminJSON {
	return adminJSON{ID: a.ID, Name: a.Name, RoleID: a.RoleID, Disabled: a.Disabled, MFAEnabled: a.MFAEnabled(),
		PasswordChangedAt: a.PasswordChangedAt, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

type roleJSON struct {
	ID          int64               `json:"id"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Permissions []tandem.Permission `json:"permissions"`
	Builtin     bool                `json:"builtin"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
}

func roleOut(r *tandem.Role) roleJSON {
	perms := r.Permissions
	if perms == nil {
		perms = []tandem.Permission{}
	}
	return roleJSON{ID: r.ID, Name: r.Name, Description: r.Description, Permissions: perms, Builtin: r.Builtin,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

type apiKeyJSON struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	RoleID     int64      `json:"role_id"`
	Prefix     string     `json:"prefix"`
	CreatedBy  int64      `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

func apiKeyOut(k *tandem.APIKey) apiKeyJSON {
	return apiKeyJSON{ID: k.ID, Name: k.Name, RoleID: k.RoleID, Prefix: k.Prefix, CreatedBy: k.CreatedBy,
		CreatedAt: k.CreatedAt, LastUsedAt: optionalTime(k.LastUsedAt), RevokedAt: optionalTime(k.RevokedAt)}
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

type meJSON struct {
	Kind tandem.ActorKind `json:"kind"` // "admin" or "apikey"
	ID   int64            `json:"id"`
	Name string           `json:"name"`
	Role roleJSON         `json:"role"`
	// MFAEnabled is whether the admin has TOTP enrolled (false for keys).
	MFAEnabled bool `json:"mfa_enabled"`
}

func meOut(a *service.Actor) meJSON {
	me := meJSON{Kind: a.Kind, ID: a.ID, Name: a.Name, MFAEnabled: a.Admin != nil && a.Admin.MFAEnabled()}
	if a.Role != nil {
		me.Role = roleOut(a.Role)
	}
	return me
}

type sessionJSON struct {
	// MFA is the step outstanding: "", "enrol" or "challenge".
	MFA   string `json:"mfa"`
	Admin meJSON `json:"admin"`
}

type auditRecordJSON struct {
	Seq        int64              `json:"seq"`
	At         time.Time          `json:"at"`
	ActorKind  tandem.ActorKind   `json:"actor_kind"`
	ActorID    int64              `json:"actor_id"`
	ActorName  string             `json:"actor_name"`
	Action     string             `json:"action"`
	TargetType string             `json:"target_type"`
	TargetID   string             `json:"target_id"`
	Before     json.RawMessage    `json:"before"`
	After      json.RawMessage    `json:"after"`
	Address    string             `json:"address"`
	Result     tandem.AuditResult `json:"result"`
	Error      string             `json:"error"`
	PrevHash   string             `json:"prev_hash"`
	Hash       string             `json:"hash"`
}

func auditOut(r *tandem.AuditRecord) auditRecordJSON {
	return auditRecordJSON{Seq: r.Seq, At: r.At, ActorKind: r.ActorKind, ActorID: r.ActorID, ActorName: r.ActorName,
		Action: r.Action, TargetType: r.TargetType, TargetID: r.TargetID, Before: document(r.Before), After: document(r.After),
		Address: r.Address, Result: r.Result, Error: r.Error, PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash)}
}

// document embeds an audit before/after document as JSON (null when
// empty); one that is not JSON is embedded as a string.
func document(s string) json.RawMessage {
	switch {
	case s == "":
		return nil
	case json.Valid([]byte(s)):
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

type auditPageJSON struct {
	Records []auditRecordJSON `json:"records"`
	// Next is the before= cursor of the next older page; 0 when there is none.
	Next int64 `json:"next"`
}

// pathID reads the {id} of the path: a positive integer.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, tandem.Invalid([]tandem.FieldError{{Field: "id", Message: "must be a positive integer"}})
	}
	return id, nil
}

func healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (a *api) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	res, err := a.svc.Login(r.Context(), service.LoginRequest{Name: in.Name, Password: in.Password,
		Address: ClientAddress(r), UserAgent: r.UserAgent(), Device: a.cookies.Device(r), Previous: a.cookies.Session(r)})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	a.cookies.SetSession(w, res.Token, res.Session.ExpiresAt.Sub(res.Session.CreatedAt))
	a.cookies.SetDevice(w, res.Device)
	WriteJSON(w, http.StatusOK, sessionJSON{MFA: res.Actor.MFAOutstanding(), Admin: meOut(res.Actor)})
}

func (a *api) completeMFA(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Code string `json:"code"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	actor := ActorFrom(r.Context())
	if err := a.svc.CompleteMFA(r.Context(), actor, in.Code); err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, sessionJSON{MFA: actor.MFAOutstanding(), Admin: meOut(actor)})
}

func (a *api) reauth(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Password string `json:"password"`
		Code     string `json:"code"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	if err := a.svc.Reauthenticate(r.Context(), ActorFrom(r.Context()), in.Password, in.Code); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.Logout(r.Context(), ActorFrom(r.Context())); err != nil {
		WriteError(w, r, err)
		return
	}
	a.cookies.ClearSession(w)
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) me(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, meOut(ActorFrom(r.Context())))
}

func (a *api) overview(w http.ResponseWriter, r *http.Request) {
	o, err := a.svc.Overview(r.Context(), ActorFrom(r.Context()))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	type checkpointJSON struct {
		Seq   int64     `json:"seq"`
		At    time.Time `json:"at"`
		KeyID string    `json:"key_id"`
	}
	out := struct {
		Admins         int             `json:"admins"`
		Roles          int             `json:"roles"`
		AuditRecords   int64           `json:"audit_records"`
		LastCheckpoint *checkpointJSON `json:"last_checkpoint"`
	}{Admins: o.Admins, Roles: o.Roles, AuditRecords: o.AuditRecords}
	if c := o.LastCheckpoint; c != nil {
		out.LastCheckpoint = &checkpointJSON{Seq: c.Seq, At: c.At, KeyID: c.KeyID}
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *api) permissions(w http.ResponseWriter, r *http.Request) {
	type permissionJSON struct {
		Permission  tandem.Permission `json:"permission"`
		Description string            `json:"description"`
		RequiresMFA bool              `json:"requires_mfa"`
	}
	var out []permissionJSON
	for _, p := range tandem.Permissions() {
		out = append(out, permissionJSON{p.Permission, p.Description, p.RequiresMFA})
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *api) admins(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.Admins(r.Context(), ActorFrom(r.Context()))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]adminJSON, len(list))
	for i, x := range list {
		out[i] = adminOut(x)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *api) createAdmin(w http.ResponseWriter, r *http.Request) {
	var in service.NewAdmin
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	admin, err := a.svc.CreateAdmin(r.Context(), ActorFrom(r.Context()), in)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", APIPrefix+"/admins/"+strconv.FormatInt(admin.ID, 10))
	WriteJSON(w, http.StatusCreated, adminOut(admin))
}

func (a *api) admin(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	admin, err := a.svc.Admin(r.Context(), ActorFrom(r.Context()), id)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, adminOut(admin))
}

func (a *api) updateAdmin(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var in service.AdminUpdate
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	admin, err := a.svc.UpdateAdmin(r.Context(), ActorFrom(r.Context()), id, in)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, adminOut(admin))
}

func (a *api) roles(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.Roles(r.Context(), ActorFrom(r.Context()))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]roleJSON, len(list))
	for i, x := range list {
		out[i] = roleOut(x)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *api) createRole(w http.ResponseWriter, r *http.Request) {
	var in service.RoleInput
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	role, err := a.svc.CreateRole(r.Context(), ActorFrom(r.Context()), in)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", APIPrefix+"/roles/"+strconv.FormatInt(role.ID, 10))
	WriteJSON(w, http.StatusCreated, roleOut(role))
}

func (a *api) role(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	role, err := a.svc.Role(r.Context(), ActorFrom(r.Context()), id)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, roleOut(role))
}

func (a *api) updateRole(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var in service.RoleInput
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	role, err := a.svc.UpdateRole(r.Context(), ActorFrom(r.Context()), id, in)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, roleOut(role))
}

func (a *api) deleteRole(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := a.svc.DeleteRole(r.Context(), ActorFrom(r.Context()), id); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) apiKeys(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.APIKeys(r.Context(), ActorFrom(r.Context()))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]apiKeyJSON, len(list))
	for i, x := range list {
		out[i] = apiKeyOut(x)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *api) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var in service.NewAPIKey
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	secret, key, err := a.svc.CreateAPIKey(r.Context(), ActorFrom(r.Context()), in)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := struct {
		apiKeyJSON
		// Secret is shown this once: only its hash is kept.
		Secret string `json:"secret"`
	}{apiKeyOut(key), secret}
	w.Header().Set("Location", APIPrefix+"/api-keys/"+strconv.FormatInt(key.ID, 10))
	WriteJSON(w, http.StatusCreated, out)
}

func (a *api) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := a.svc.RevokeAPIKey(r.Context(), ActorFrom(r.Context()), id); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// auditQuery is every query parameter GET /audit takes.
var auditQuery = []string{"actor", "action", "target_type", "target_id", "result", "since", "until", "before", "limit"}

// auditFilter reads GET /audit's query. A parameter it does not know is
// refused rather than ignored: a misspelt filter must not silently show
// the whole log.
func auditFilter(r *http.Request) (tandem.AuditFilter, error) {
	q := r.URL.Query()
	var fields []tandem.FieldError
	for name := range q {
		if !slices.Contains(auditQuery, name) {
			fields = append(fields, tandem.FieldError{Field: name, Message: "is not a parameter of this request"})
		}
	}
	slices.SortFunc(fields, func(a, b tandem.FieldError) int { return strings.Compare(a.Field, b.Field) })
	f := tandem.AuditFilter{ActorName: q.Get("actor"), Action: q.Get("action"), TargetType: q.Get("target_type"),
		TargetID: q.Get("target_id"), Result: tandem.AuditResult(q.Get("result"))}
	readTime := func(name string) time.Time {
		v := q.Get(name)
		if v == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			fields = append(fields, tandem.FieldError{Field: name, Message: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z"})
		}
		return t
	}
	f.Since, f.Until = readTime("since"), readTime("until")
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			fields = append(fields, tandem.FieldError{Field: "before", Message: "must be a positive integer (the next cursor of a page)"})
		}
		f.BeforeSeq = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fields = append(fields, tandem.FieldError{Field: "limit", Message: "must be between 1 and 1000"})
		}
		f.Limit = n
	}
	return f, tandem.Invalid(fields)
}

// defaultAuditLimit is the page size when the query names none (the
// store's own default).
const defaultAuditLimit = 100

func (a *api) audit(w http.ResponseWriter, r *http.Request) {
	f, err := auditFilter(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	recs, err := a.svc.AuditLog(r.Context(), ActorFrom(r.Context()), f)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := auditPageJSON{Records: make([]auditRecordJSON, len(recs))}
	for i, x := range recs {
		out.Records[i] = auditOut(x)
	}
	limit := f.Limit
	if limit == 0 {
		limit = defaultAuditLimit
	}
	if n := len(recs); n == limit && recs[n-1].Seq > 1 {
		out.Next = recs[n-1].Seq
	}
	WriteJSON(w, http.StatusOK, out)
}
