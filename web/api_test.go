package web_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

func fieldNames(p problemBody) []string {
	var names []string
	for _, f := range p.Errors {
		names = append(names, f.Field)
	}
	return names
}

func TestUnknownJSONFieldIsRefusedNamingIt(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(e.client(), "POST", "/api/admin/v1/session", `{"name":"ann","password":"x","remember_me":true}`)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	p := r.problem(t)
	want := problemBody{Type: "about:blank", Title: "validation_failed", Status: 422, Detail: "some fields are invalid",
		Code: int(tandem.EValidation), Errors: []tandem.FieldError{{Field: "remember_me", Message: "is not a field of this request"}}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("problem (-want +got):\n%s", diff)
	}
}

func TestMalformedJSONBodiesAreRefused(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, body, contentType string
		status                  int
		fields                  []string
	}{
		{"not JSON content type", `{"name":"a","password":"b"}`, "text/plain", 400, nil},
		{"syntax error", `{"name":`, "application/json", 400, nil},
		{"empty", ``, "application/json", 400, nil},
		{"trailing data", `{"name":"a","password":"b"} {}`, "application/json", 400, nil},
		{"not an object", `["a","b"]`, "application/json", 400, nil},
		{"wrong type", `{"name":5,"password":"b"}`, "application/json", 422, []string{"name"}},
		{"charset is fine", `{"name":"a","password":"b"}`, "application/json; charset=utf-8", 401, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(e.client(), "POST", "/api/admin/v1/session", tc.body, "Content-Type", tc.contentType)
			wantStatus(t, r, tc.status)
			p := r.problem(t)
			if diff := cmp.Diff(tc.fields, fieldNames(p)); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if strings.Contains(p.Detail, "json:") || strings.Contains(p.Detail, "Go ") {
				t.Errorf("detail leaks the decoder's text: %q", p.Detail)
			}
		})
	}
}

func TestOversizedBodyIsRefusedWith413(t *testing.T) {
	e := newEnv(t, nil)
	big := fmt.Sprintf(`{"name":"ann","password":%q}`, strings.Repeat("a", web.DefaultMaxBodyBytes))
	r := e.do(e.client(), "POST", "/api/admin/v1/session", big)
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	if p := r.problem(t); p.Title != "too_large" {
		t.Errorf("title %q, want too_large", p.Title)
	}

	small := newEnv(t, nil, func(c *web.Config) { c.MaxBodyBytes = 100 })
	r = small.do(small.client(), "POST", "/api/admin/v1/session", fmt.Sprintf(`{"name":"ann","password":%q}`, strings.Repeat("a", 200)))
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
}

func TestAPIKeysAuthenticateWithTheirRolesPermissions(t *testing.T) {
	e := newEnv(t, nil)
	secret, key := e.apiKey("reporting", e.roles[tandem.RoleViewer])
	c := e.client()
	bearer := []string{"Authorization", "Bearer " + secret}

	r := e.do(c, "GET", "/api/admin/v1/me", nil, bearer...)
	wantStatus(t, r, http.StatusOK)
	var me struct {
		Kind string `json:"kind"`
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Role struct {
			Name string `json:"name"`
		} `json:"role"`
	}
	r.decode(t, &me)
	if me.Kind != "apikey" || me.ID != key.ID || me.Name != "reporting" || me.Role.Name != tandem.RoleViewer {
		t.Errorf("me = %+v, want the viewer key", me)
	}
	wantStatus(t, e.do(c, "GET", "/api/admin/v1/audit", nil, bearer...), http.StatusOK)

	r = e.do(c, "GET", "/api/admin/v1/admins", nil, bearer...)
	wantStatus(t, r, http.StatusForbidden)
	if p := r.problem(t); p.Title != "permission_denied" {
		t.Errorf("title %q, want permission_denied", p.Title)
	}
	recs, err := e.svc.AuditLog(context.Background(), service.CLIActor("test"),
		tandem.AuditFilter{Action: "route.access", Result: tandem.AuditDenied})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].TargetID != "GET /api/admin/v1/admins" || recs[0].ActorKind != tandem.ActorAPIKey {
		t.Errorf("denied route audit records %+v, want one for the key on GET /api/admin/v1/admins", recs)
	}

	// Pending routes are for browser sessions only.
	r = e.do(c, "DELETE", "/api/admin/v1/session", nil, bearer...)
	wantStatus(t, r, http.StatusForbidden)

	for _, h := range []string{"Basic " + secret, "Bearer", "Bearer tdk_made_up"} {
		r := e.do(c, "GET", "/api/admin/v1/me", nil, "Authorization", h)
		wantStatus(t, r, http.StatusUnauthorized)
	}

	if err := revoke(e, key.ID); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do(c, "GET", "/api/admin/v1/me", nil, bearer...), http.StatusUnauthorized)
}

func revoke(e *testEnv, id int64) error {
	return e.svc.RevokeAPIKey(context.Background(), service.CLIActor("test"), id)
}

func TestARemovedPermissionTakesEffectOnTheNextRequest(t *testing.T) {
	e := newEnv(t, nil)
	role := e.createRole("auditors", tandem.PermAuditRead)
	e.createAdmin("ann", role)
	c := e.client()
	if step := e.login(c, "ann"); step != "" {
		t.Fatalf("an auditor logs in with MFA step %q, want none", step)
	}
	wantStatus(t, e.do(c, "GET", "/api/admin/v1/audit", nil), http.StatusOK)

	if _, err := e.svc.UpdateRole(context.Background(), service.CLIActor("test"), role,
		service.RoleInput{Name: "auditors"}); err != nil {
		t.Fatal(err)
	}
	r := e.do(c, "GET", "/api/admin/v1/audit", nil)
	wantStatus(t, r, http.StatusForbidden)
	if p := r.problem(t); p.Title != "permission_denied" {
		t.Errorf("title %q, want permission_denied", p.Title)
	}
}

func TestLoginMFAReauthenticationAndChangesThroughTheAPI(t *testing.T) {
	e := newEnv(t, nil)
	e.createAdmin("olga", e.roles[tandem.RoleOwner])
	c := e.client()

	r := e.do(c, "POST", "/api/admin/v1/session", map[string]string{"name": "olga", "password": testPassword})
	wantStatus(t, r, http.StatusOK)
	for _, k := range r.Cookies() {
		if !k.HttpOnly || k.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s is not HttpOnly and SameSite=Lax", k.Name)
		}
	}
	secret := e.enrolMFA(c)
	wantStatus(t, e.do(c, "DELETE", "/api/admin/v1/session", nil), http.StatusNoContent)
	wantStatus(t, e.do(c, "GET", "/api/admin/v1/me", nil), http.StatusUnauthorized)

	if step := e.login(c, "olga"); step != service.MFAChallenge {
		t.Fatalf("step %q, want challenge", step)
	}
	wantStatus(t, e.do(c, "POST", "/api/admin/v1/session/mfa", map[string]string{"code": "000000"}), http.StatusUnprocessableEntity)
	e.clock.Advance(30 * time.Second) // the enrolment used the current step's code
	r = e.do(c, "POST", "/api/admin/v1/session/mfa", map[string]string{"code": e.totp(secret)})
	wantStatus(t, r, http.StatusOK)
	var sess struct {
		MFA   string `json:"mfa"`
		Admin struct {
			Name       string `json:"name"`
			MFAEnabled bool   `json:"mfa_enabled"`
		} `json:"admin"`
	}
	r.decode(t, &sess)
	if sess.MFA != "" || sess.Admin.Name != "olga" || !sess.Admin.MFAEnabled {
		t.Errorf("after MFA: %+v", sess)
	}

	// Login counts as a password confirmation for the reauth window.
	r = e.do(c, "POST", "/api/admin/v1/admins", map[string]any{"name": "bob", "password": testPassword, "role_id": e.roles[tandem.RoleViewer]})
	wantStatus(t, r, http.StatusCreated)
	var bob struct {
		ID     int64  `json:"id"`
		Name   string `json:"name"`
		RoleID int64  `json:"role_id"`
	}
	r.decode(t, &bob)
	if got, want := r.Header.Get("Location"), fmt.Sprintf("/api/admin/v1/admins/%d", bob.ID); got != want {
		t.Errorf("Location %q, want %q", got, want)
	}

	e.clock.Advance(6 * time.Minute)
	newAdmin := map[string]any{"name": "carl", "password": testPassword, "role_id": e.roles[tandem.RoleViewer]}
	r = e.do(c, "POST", "/api/admin/v1/admins", newAdmin)
	wantStatus(t, r, http.StatusForbidden)
	if p := r.problem(t); p.Title != "reauth_required" {
		t.Errorf("title %q, want reauth_required", p.Title)
	}
	r = e.do(c, "POST", "/api/admin/v1/session/reauth", map[string]string{"password": "wrong password!", "code": e.totp(secret)})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if diff := cmp.Diff([]string{"password"}, fieldNames(r.problem(t))); diff != "" {
		t.Errorf("reauth fields (-want +got):\n%s", diff)
	}
	e.clock.Advance(30 * time.Second)
	wantStatus(t, e.do(c, "POST", "/api/admin/v1/session/reauth", map[string]string{"password": testPassword, "code": e.totp(secret)}),
		http.StatusNoContent)
	wantStatus(t, e.do(c, "POST", "/api/admin/v1/admins", newAdmin), http.StatusCreated)

	r = e.do(c, "GET", "/api/admin/v1/admins", nil)
	wantStatus(t, r, http.StatusOK)
	var admins []struct {
		Name string `json:"name"`
	}
	r.decode(t, &admins)
	var names []string
	for _, a := range admins {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"olga", "bob", "carl"}, names); diff != "" {
		t.Errorf("admins (-want +got):\n%s", diff)
	}

	r = e.do(c, "PATCH", fmt.Sprintf("/api/admin/v1/admins/%d", bob.ID), map[string]bool{"disabled": true})
	wantStatus(t, r, http.StatusOK)
	var patched struct {
		Disabled bool `json:"disabled"`
	}
	r.decode(t, &patched)
	if !patched.Disabled {
		t.Error("PATCH disabled=true left bob enabled")
	}
	wantStatus(t, e.do(c, "GET", fmt.Sprintf("/api/admin/v1/admins/%d", bob.ID), nil), http.StatusOK)
	wantStatus(t, e.do(c, "GET", "/api/admin/v1/admins/999", nil), http.StatusNotFound)

	// Roles: create, read, replace, delete.
	r = e.do(c, "POST", "/api/admin/v1/roles", map[string]any{"name": "auditors", "description": "reads the log",
		"permissions": []string{"audit:read", "audit:read"}})
	wantStatus(t, r, http.StatusCreated)
	var role struct {
		ID          int64    `json:"id"`
		Permissions []string `json:"permissions"`
	}
	r.decode(t, &role)
	if diff := cmp.Diff([]string{"audit:read"}, role.Permissions); diff != "" {
		t.Errorf("role permissions (-want +got):\n%s", diff)
	}
	rolePath := fmt.Sprintf("/api/admin/v1/roles/%d", role.ID)
	wantStatus(t, e.do(c, "GET", rolePath, nil), http.StatusOK)
	r = e.do(c, "PUT", rolePath, map[string]any{"name": "auditors", "permissions": []string{"audit:read", "stats:read"}})
	wantStatus(t, r, http.StatusOK)
	r = e.do(c, "PUT", rolePath, map[string]any{"name": "", "permissions": []string{"castles:storm"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if diff := cmp.Diff([]string{"name", "permissions"}, fieldNames(r.problem(t))); diff != "" {
		t.Errorf("invalid role fields (-want +got):\n%s", diff)
	}
	wantStatus(t, e.do(c, "DELETE", rolePath, nil), http.StatusNoContent)
	wantStatus(t, e.do(c, "GET", rolePath, nil), http.StatusNotFound)
	r = e.do(c, "DELETE", fmt.Sprintf("/api/admin/v1/roles/%d", e.roles[tandem.RoleOwner]), nil)
	wantStatus(t, r, http.StatusConflict)

	// API keys: the secret is answered once and works at once.
	r = e.do(c, "POST", "/api/admin/v1/api-keys", map[string]any{"name": "ci", "role_id": e.roles[tandem.RoleViewer]})
	wantStatus(t, r, http.StatusCreated)
	var key struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
		Prefix string `json:"prefix"`
	}
	r.decode(t, &key)
	if !strings.HasPrefix(key.Secret, "tdk_") || !strings.HasPrefix(key.Secret, key.Prefix) {
		t.Errorf("key %+v: secret is not a tdk_ key starting with its prefix", key)
	}
	wantStatus(t, e.do(e.client(), "GET", "/api/admin/v1/me", nil, "Authorization", "Bearer "+key.Secret), http.StatusOK)
	wantStatus(t, e.do(c, "DELETE", fmt.Sprintf("/api/admin/v1/api-keys/%d", key.ID), nil), http.StatusNoContent)
	wantStatus(t, e.do(e.client(), "GET", "/api/admin/v1/me", nil, "Authorization", "Bearer "+key.Secret), http.StatusUnauthorized)

	// Everything above is in the audit log.
	r = e.do(c, "GET", "/api/admin/v1/audit?action=admin.create&result=ok", nil)
	wantStatus(t, r, http.StatusOK)
	var page struct {
		Records []struct {
			Action    string          `json:"action"`
			ActorName string          `json:"actor_name"`
			After     json.RawMessage `json:"after"`
		} `json:"records"`
	}
	r.decode(t, &page)
	var created []string
	for _, rec := range page.Records {
		var after struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(rec.After, &after); err != nil {
			t.Fatalf("after %s: %v", rec.After, err)
		}
		created = append(created, rec.ActorName+" created "+after.Name)
	}
	if diff := cmp.Diff([]string{"olga created carl", "olga created bob", "test created olga"}, created); diff != "" {
		t.Errorf("admin.create records (-want +got):\n%s", diff)
	}

	wantStatus(t, e.do(c, "DELETE", "/api/admin/v1/session", nil), http.StatusNoContent)
	wantStatus(t, e.do(c, "GET", "/api/admin/v1/me", nil), http.StatusUnauthorized)
}

func TestAnswersHoldNoSecrets(t *testing.T) {
	e := newEnv(t, nil)
	olga := e.createAdmin("olga", e.roles[tandem.RoleOwner])
	c := e.client()
	e.login(c, "olga")
	e.enrolMFA(c)
	stored, err := e.svc.Admin(context.Background(), service.CLIActor("test"), olga.ID)
	if err != nil {
		t.Fatal(err)
	}
	secret, key := e.apiKey("ops", e.roles[tandem.RoleOwner])
	bearer := []string{"Authorization", "Bearer " + secret}

	forbidden := []string{stored.PasswordHash, "argon2", stored.MFASecret, secret, hex.EncodeToString(key.Hash), "password_hash", "mfa_secret"}
	for _, path := range []string{"/api/admin/v1/admins", fmt.Sprintf("/api/admin/v1/admins/%d", olga.ID), "/api/admin/v1/api-keys", "/api/admin/v1/audit", "/api/admin/v1/me"} {
		r := e.do(c, "GET", path, nil, bearer...)
		wantStatus(t, r, http.StatusOK)
		for _, s := range forbidden {
			if strings.Contains(string(r.body), s) {
				t.Errorf("GET %s answers a secret (%q): %s", path, s, r.body)
			}
		}
	}

	r := e.do(c, "GET", "/api/admin/v1/api-keys", nil, bearer...)
	var keys []map[string]any
	r.decode(t, &keys)
	var fields []string
	for k := range keys[0] {
		fields = append(fields, k)
	}
	slices.Sort(fields)
	want := []string{"created_at", "created_by", "id", "last_used_at", "name", "prefix", "revoked_at", "role_id"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("API key fields (-want +got):\n%s", diff)
	}
}

func TestAuditSearchValidatesAndPages(t *testing.T) {
	e := newEnv(t, nil)
	secret, _ := e.apiKey("ops", e.roles[tandem.RoleViewer])
	c := e.client()
	bearer := []string{"Authorization", "Bearer " + secret}
	for i := range 5 {
		r := e.do(c, "POST", "/api/admin/v1/session", map[string]string{"name": fmt.Sprintf("ghost%d", i), "password": "not the password"})
		wantStatus(t, r, http.StatusUnauthorized)
	}

	r := e.do(c, "GET", "/api/admin/v1/audit?since=yesterday&limit=5000&before=x&colour=red&until=2026-01-01T00:00:00Z", nil, bearer...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if diff := cmp.Diff([]string{"colour", "since", "before", "limit"}, fieldNames(r.problem(t))); diff != "" {
		t.Errorf("invalid fields (-want +got):\n%s", diff)
	}
	r = e.do(c, "GET", "/api/admin/v1/audit?result=maybe", nil, bearer...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if diff := cmp.Diff([]string{"result"}, fieldNames(r.problem(t))); diff != "" {
		t.Errorf("invalid result fields (-want +got):\n%s", diff)
	}

	type page struct {
		Records []struct {
			Seq       int64  `json:"seq"`
			ActorName string `json:"actor_name"`
			Result    string `json:"result"`
		} `json:"records"`
		Next int64 `json:"next"`
	}
	var names []string
	path := "/api/admin/v1/audit?action=session.login&result=failed&limit=2"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("the cursor does not end")
		}
		r := e.do(c, "GET", path, nil, bearer...)
		wantStatus(t, r, http.StatusOK)
		var p page
		r.decode(t, &p)
		for _, rec := range p.Records {
			names = append(names, rec.ActorName)
		}
		if p.Next == 0 {
			break
		}
		path = fmt.Sprintf("/api/admin/v1/audit?action=session.login&result=failed&limit=2&before=%d", p.Next)
	}
	if diff := cmp.Diff([]string{"ghost4", "ghost3", "ghost2", "ghost1", "ghost0"}, names); diff != "" {
		t.Errorf("paged failed logins (-want +got):\n%s", diff)
	}

	since := url.QueryEscape(e.clock.Now().Add(time.Hour).Format(time.RFC3339))
	r = e.do(c, "GET", "/api/admin/v1/audit?since="+since, nil, bearer...)
	wantStatus(t, r, http.StatusOK)
	var empty page
	r.decode(t, &empty)
	if len(empty.Records) != 0 || empty.Next != 0 || !strings.Contains(string(r.body), `"records":[]`) {
		t.Errorf("a search matching nothing answers %s, want an empty list", r.body)
	}
}

func TestPathIDsMustBePositiveIntegers(t *testing.T) {
	e := newEnv(t, nil)
	secret, _ := e.apiKey("ops", e.roles[tandem.RoleOwner])
	for _, id := range []string{"abc", "0", "-1", "1.5", "99999999999999999999"} {
		r := e.do(e.client(), "GET", "/api/admin/v1/roles/"+id, nil, "Authorization", "Bearer "+secret)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if diff := cmp.Diff([]string{"id"}, fieldNames(r.problem(t))); diff != "" {
			t.Errorf("id %q fields (-want +got):\n%s", id, diff)
		}
	}
}

func TestReadRoutesAnswerAnyAdmin(t *testing.T) {
	e := newEnv(t, nil)
	role := e.createRole("nothing")
	secret, _ := e.apiKey("bare", role)
	bearer := []string{"Authorization", "Bearer " + secret}
	c := e.client()
	for _, path := range []string{"/api/admin/v1/me", "/api/admin/v1/overview", "/api/admin/v1/permissions", "/api/admin/v1/roles",
		fmt.Sprintf("/api/admin/v1/roles/%d", role)} {
		wantStatus(t, e.do(c, "GET", path, nil, bearer...), http.StatusOK)
	}
	r := e.do(c, "GET", "/api/admin/v1/permissions", nil, bearer...)
	var perms []struct {
		Permission  string `json:"permission"`
		RequiresMFA bool   `json:"requires_mfa"`
	}
	r.decode(t, &perms)
	if len(perms) != len(tandem.Permissions()) {
		t.Errorf("%d permissions, want %d", len(perms), len(tandem.Permissions()))
	}
	var overview struct {
		Admins         int             `json:"admins"`
		Roles          int             `json:"roles"`
		AuditRecords   int64           `json:"audit_records"`
		LastCheckpoint json.RawMessage `json:"last_checkpoint"`
	}
	e.do(c, "GET", "/api/admin/v1/overview", nil, bearer...).decode(t, &overview)
	if overview.Roles != 6 || overview.AuditRecords < 2 {
		t.Errorf("overview %+v, want 6 roles and the records of their creation", overview)
	}
	for _, path := range []string{"/api/admin/v1/admins", "/api/admin/v1/api-keys", "/api/admin/v1/audit"} {
		wantStatus(t, e.do(c, "GET", path, nil, bearer...), http.StatusForbidden)
	}
}
