package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

func TestNavShowsOnlyWhatTheAdminMayUse(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	e.createAdmin("sam", tandem.RoleSupport)
	owner, _ := e.owner("olga")
	viewer, support := e.browser(), e.browser()
	viewer.login("vera", testPassword)
	support.login("sam", testPassword)

	for _, c := range []struct {
		who  string
		b    *browser
		want []string
	}{
		{"owner", owner, []string{"/admin", "/admin/players", "/admin/nodes", "/admin/rooms", "/admin/commands", "/admin/matchmaking", "/admin/admins", "/admin/roles", "/admin/api-keys", "/admin/audit", "/admin/account"}},
		{"viewer", viewer, []string{"/admin", "/admin/players", "/admin/nodes", "/admin/rooms", "/admin/commands", "/admin/matchmaking", "/admin/roles", "/admin/audit", "/admin/account"}},
		{"support", support, []string{"/admin", "/admin/players", "/admin/nodes", "/admin/rooms", "/admin/commands", "/admin/matchmaking", "/admin/roles", "/admin/account"}},
	} {
		r := c.b.get("/admin")
		wantStatus(t, r, http.StatusOK)
		if diff := cmp.Diff(c.want, navLinks(t, r.body)); diff != "" {
			t.Errorf("%s's navigation (-want +got):\n%s", c.who, diff)
		}
		// Every link shown opens.
		for _, path := range c.want {
			if r := c.b.get(path); r.StatusCode != http.StatusOK {
				t.Errorf("%s: GET %s = %d, want 200", c.who, path, r.StatusCode)
			}
		}
	}
}

func TestAPermissionErrorRendersA403Page(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	b := e.browser()
	b.login("vera", testPassword)

	for _, path := range []string{"/admin/admins", "/admin/api-keys"} {
		r := b.get(path)
		wantStatus(t, r, http.StatusForbidden)
		wantContains(t, r, "<h1>Not allowed</h1>", "this needs the admins:manage permission")
	}
	r := b.post("/admin/roles", url.Values{"name": {"x"}})
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, "this needs the roles:manage permission")

	// The role pages are readable, without the forms that change roles.
	r = b.get("/admin/roles")
	wantStatus(t, r, http.StatusOK)
	wantLacks(t, r, "Create a role")
	r = b.get("/admin/roles/" + strconv.FormatInt(e.roles[tandem.RoleOwner], 10))
	wantStatus(t, r, http.StatusOK)
	wantLacks(t, r, "Save role", "Delete role")
}

func TestANameThatLooksLikeHTMLIsOnlyText(t *testing.T) {
	const xss = `<img src=x onerror=alert(1)>`
	escaped := "&lt;img src=x onerror=alert(1)&gt;"
	e := newEnv(t)
	b, _ := e.owner(xss)

	// The name is everywhere: an API key and a role named like it, the
	// audit log of all of it.
	r := b.post("/admin/api-keys", url.Values{"name": {xss}, "role_id": {strconv.FormatInt(e.roles[tandem.RoleViewer], 10)}})
	wantStatus(t, r, http.StatusCreated)
	wantStatus(t, b.post("/admin/roles", url.Values{"name": {xss}, "description": {xss}, "permissions": {"audit:read"}}), http.StatusSeeOther)
	e.loadRoles()
	// A refused form shows the typed name again, in a value attribute.
	r = b.post("/admin/admins", url.Values{"name": {xss}, "password": {"short"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `value="`+escaped+`"`)

	for _, path := range []string{"/admin", "/admin/admins", "/admin/audit", "/admin/account", "/admin/roles",
		"/admin/roles/" + strconv.FormatInt(e.roles[xss], 10), "/admin/api-keys", "/admin/audit?actor=" + url.QueryEscape(xss)} {
		r := b.get(path)
		wantStatus(t, r, http.StatusOK)
		wantLacks(t, r, xss)
		wantContains(t, r, escaped)
		for _, tg := range tags(r.body) {
			if tg.name == "img" && tg.attrs["src"] == "x" {
				t.Errorf("GET %s: the name became an <img> element", path)
			}
		}
	}
	// The audit filter found the records the name's admin made.
	r = b.get("/admin/audit?actor=" + url.QueryEscape(xss))
	wantContains(t, r, "<code>session.login</code>", "<code>apikey.create</code>")
}

func TestCreateAdminShowsValidationErrorsNextToEachField(t *testing.T) {
	e := newEnv(t)
	b, _ := e.owner("olga")

	form := url.Values{"name": {" padded"}, "password": {"short"}, "role_id": {""}}
	r := b.post("/admin/admins", form)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "<html",
		`<input id="create-name" name="name" type="text" value=" padded"`,
		`<p class="field-error" id="create-name-error">must not start or end with a space</p>`,
		`<p class="field-error" id="create-password-error">use at least 12 characters</p>`,
		`<p class="field-error" id="create-role_id-error">choose a role</p>`)
	wantLacks(t, r, `value="short"`)

	// htmx gets the main region alone, to swap in place.
	r = b.post("/admin/admins", form, htmx...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "<h1>Admins</h1>", `id="create-name-error"`)
	wantLacks(t, r, "<html", "<nav")

	// A taken name is reported on the name field.
	form = url.Values{"name": {"olga"}, "password": {testPassword}, "role_id": {strconv.FormatInt(e.roles[tandem.RoleViewer], 10)}}
	r = b.post("/admin/admins", form)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `<p class="field-error" id="create-name-error">is taken</p>`)
}

func TestAdminRowsChangeRolePasswordAndStatus(t *testing.T) {
	e := newEnv(t)
	b, _ := e.owner("olga")
	vera := e.createAdmin("vera", tandem.RoleViewer)
	veraPath := "/admin/admins/" + strconv.FormatInt(vera.ID, 10)
	other := e.browser()
	other.login("vera", testPassword)

	page := b.get("/admin/admins")
	wantContains(t, page, `action="`+veraPath+`"`, `<span class="badge">you</span>`)

	// The role change takes effect on vera's next request.
	r := b.post(veraPath, url.Values{"action": {"role"}, "role_id": {strconv.FormatInt(e.roles[tandem.RoleSupport], 10)}})
	wantStatus(t, r, http.StatusSeeOther)
	if diff := cmp.Diff([]string{"/admin", "/admin/players", "/admin/nodes", "/admin/rooms", "/admin/commands", "/admin/matchmaking", "/admin/roles", "/admin/account"}, navLinks(t, other.get("/admin").body)); diff != "" {
		t.Errorf("vera's navigation after the role change (-want +got):\n%s", diff)
	}

	r = b.post(veraPath, url.Values{"action": {"password"}, "password": {"tiny"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="admin-`+strconv.FormatInt(vera.ID, 10)+`-password-password-error">use at least 12 characters</p>`,
		`<details class="row-details" open>`)

	r = b.post(veraPath, url.Values{"action": {"disable"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r := other.get("/admin"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("disabled admin's session still works: %d", r.StatusCode)
	}
	wantContains(t, b.get("/admin/admins?done=admin-updated"), "Admin updated.", `<span class="badge badge-bad">disabled</span>`)
	wantStatus(t, b.post(veraPath, url.Values{"action": {"enable"}}), http.StatusSeeOther)

	r = b.post(veraPath, url.Values{"action": {"explode"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "<code>action</code>")
	r = b.post("/admin/admins/abc", url.Values{"action": {"disable"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "<code>id</code>: must be a positive integer")
	r = b.post("/admin/admins/999", url.Values{"action": {"disable"}})
	wantStatus(t, r, http.StatusNotFound)
}

func TestRolesAreCreatedEditedAndDeleted(t *testing.T) {
	e := newEnv(t)
	b, _ := e.owner("olga")

	r := b.post("/admin/roles", url.Values{"name": {""}, "permissions": {"audit:read", "players:read"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="create-name-error">is required</p>`,
		`<input type="checkbox" id="create-perm-audit-read" name="permissions" value="audit:read" checked>`)

	r = b.post("/admin/roles", url.Values{"name": {"auditor"}, "description": {"reads the log"}, "permissions": {"audit:read"}})
	wantStatus(t, r, http.StatusSeeOther)
	list := b.get(r.Header.Get("Location"))
	wantContains(t, list, "Role created.")
	link := regexp.MustCompile(`<a href="(/admin/roles/\d+)">auditor</a>`).FindStringSubmatch(list.body)
	if link == nil {
		t.Fatalf("the roles list has no link to the new role:\n%s", list.body)
	}
	rolePath := link[1]
	page := b.get(rolePath)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page, "<h1>Role auditor</h1>", `value="auditor"`,
		`<input type="checkbox" id="edit-perm-audit-read" name="permissions" value="audit:read" checked>`,
		`<input type="checkbox" id="edit-perm-stats-read" name="permissions" value="stats:read">`)

	r = b.post(rolePath, url.Values{"name": {"auditor"}, "permissions": {"audit:read", "stats:read"}})
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, b.get(r.Header.Get("Location")), "Role saved.",
		`<input type="checkbox" id="edit-perm-stats-read" name="permissions" value="stats:read" checked>`)

	r = b.post(rolePath, url.Values{"name": {"auditor"}, "permissions": {"root:everything"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "unknown permission root:everything")

	// Built-in roles offer no forms, and refuse changes.
	ownerPath := "/admin/roles/" + strconv.FormatInt(e.roles[tandem.RoleOwner], 10)
	wantLacks(t, b.get(ownerPath), "Save role")
	r = b.post(ownerPath+"/delete", nil)
	wantStatus(t, r, http.StatusConflict)
	wantContains(t, r, "built-in roles cannot be deleted")

	wantStatus(t, b.post(rolePath+"/delete", nil), http.StatusSeeOther)
	wantStatus(t, b.get(rolePath), http.StatusNotFound)
}

func TestAnAPIKeySecretIsShownOnce(t *testing.T) {
	e := newEnv(t)
	b, _ := e.owner("olga")

	r := b.post("/admin/api-keys", url.Values{"name": {"billing export"}, "role_id": {strconv.FormatInt(e.roles[tandem.RoleViewer], 10)}})
	wantStatus(t, r, http.StatusCreated)
	m := regexp.MustCompile(`<code class="secret" id="new-key-secret">(tdk_[A-Za-z0-9_-]+)</code>`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no secret shown:\n%s", r.body)
	}
	secret := m[1]
	actor, err := e.svc.AuthenticateAPIKey(context.Background(), secret, "127.0.0.1")
	if err != nil || actor.Name != "billing export" {
		t.Fatalf("the secret shown does not authenticate: %v", err)
	}

	page := b.get("/admin/api-keys")
	wantLacks(t, page, secret)
	wantContains(t, page, "<code>"+secret[:10]+"…</code>", `<td class="name">billing export</td>`)

	keys, err := e.svc.APIKeys(context.Background(), service.CLIActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	revoke := "/admin/api-keys/" + strconv.FormatInt(keys[0].ID, 10) + "/revoke"
	wantStatus(t, b.post(revoke, nil), http.StatusSeeOther)
	wantContains(t, b.get("/admin/api-keys?done=key-revoked"), "API key revoked.", `<span class="badge badge-bad">revoked</span>`)
	r = b.post(revoke, nil)
	wantStatus(t, r, http.StatusConflict)
	wantContains(t, r, "the key is already revoked")
}

func TestAuditPageFiltersAndPagesWithHtmxSwappingOnlyTheTable(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	b := e.browser()
	b.login("vera", testPassword)

	// 60 refusals to page through.
	ctx := context.Background()
	res, err := e.svc.Login(ctx, service.LoginRequest{Name: "vera", Password: testPassword, Address: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for range 60 {
		if err := e.svc.Authorize(ctx, res.Actor, tandem.PermAdminsManage, "GET /test"); tandem.ErrorCodeOf(err) != tandem.EPermission {
			t.Fatalf("Authorize: %v, want a refusal", err)
		}
	}
	rowRE := regexp.MustCompile(`<td class="num">(\d+)</td>`)
	rows := func(r response) []string {
		var out []string
		for _, m := range rowRE.FindAllStringSubmatch(r.body, -1) {
			out = append(out, m[1])
		}
		return out
	}

	r := b.get("/admin/audit?action=route.&result=denied")
	wantStatus(t, r, http.StatusOK)
	first := rows(r)
	if len(first) != 50 {
		t.Fatalf("%d rows on the first page, want 50", len(first))
	}
	wantContains(t, r, `<option value="denied" selected>denied</option>`, `value="route."`, `<span class="badge badge-denied">denied</span>`)
	older := regexp.MustCompile(`<a class="button" href="([^"]+)" hx-get="[^"]+" hx-target="#audit-results" hx-push-url="true">Older</a>`).FindStringSubmatch(r.body)
	if older == nil {
		t.Fatalf("no Older link:\n%s", r.body)
	}

	// The Older link, as htmx follows it, answers the table alone.
	r = b.get(strings.ReplaceAll(older[1], "&amp;", "&"), "HX-Request", "true", "HX-Target", "audit-results")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<table class="audit">`, ">Newest</a>")
	wantLacks(t, r, "<html", `<form class="filters"`, "<h1>", ">Older</a>")
	second := rows(r)
	if len(second) != 10 {
		t.Fatalf("%d rows on the second page, want 10", len(second))
	}
	last, _ := strconv.Atoi(first[len(first)-1])
	if got, _ := strconv.Atoi(second[0]); got != last-1 {
		t.Errorf("second page starts at record %d, want %d", got, last-1)
	}

	// A bad filter swaps the whole main region, to show the error by its field.
	r = b.get("/admin/audit?since=yesterday", "HX-Request", "true", "HX-Target", "audit-results")
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if got := r.Header.Get("HX-Retarget"); got != "#main" {
		t.Errorf("HX-Retarget %q, want #main", got)
	}
	wantContains(t, r, `<form class="filters"`, `id="filter-since-error">use a date and time`)
	r = b.get("/admin/audit?since=2030-01-02T00:00&until=2030-01-01T00:00")
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="filter-until-error">must be after since</p>`)

	r = b.get("/admin/audit?action=nothing.")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "No records match.")
}

func TestEveryAssetIsServedFromTheBinary(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	files, err := os.ReadDir("assets")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("only %d assets", len(files))
	}
	for _, f := range files {
		want, err := os.ReadFile("assets/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		r := b.get("/admin/assets/" + f.Name())
		wantStatus(t, r, http.StatusOK)
		if r.body != string(want) {
			t.Errorf("GET /admin/assets/%s differs from the file", f.Name())
		}
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", f.Name(), cc)
		}
	}

	// What the pages link to is served, with its type.
	page := b.get("/admin/login")
	want := map[string]string{"stylesheet": "text/css; charset=utf-8", "script": "text/javascript; charset=utf-8", "icon": "image/svg+xml"}
	got := map[string]string{}
	for _, tg := range tags(page.body) {
		var kind, src string
		switch {
		case tg.name == "link":
			kind, src = tg.attrs["rel"], tg.attrs["href"]
		case tg.name == "script":
			kind, src = "script", tg.attrs["src"]
		default:
			continue
		}
		if !strings.HasPrefix(src, "/admin/assets/") || !strings.Contains(src, "?v=") {
			t.Errorf("<%s> loads %q, want a fingerprinted /admin/assets/ path", tg.name, src)
		}
		r := b.get(src)
		wantStatus(t, r, http.StatusOK)
		got[kind] = r.Header.Get("Content-Type")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("assets the pages load (-want +got):\n%s", diff)
	}
	wantContains(t, page, `<meta name="htmx-config" content='{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"selfRequestsOnly":true,`)

	r := b.get("/admin/assets/nothing.js")
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r, "<h1>Not found</h1>")
	wantStatus(t, b.get("/admin/assets/"), http.StatusNotFound)
}

func TestNoPageHasInlineScriptOrStyle(t *testing.T) {
	e := newEnv(t)
	b, _ := e.owner("olga")
	// Each answer is checked by browser.do; this visits every page.
	for _, path := range []string{"/admin", "/admin/admins", "/admin/roles", "/admin/roles/1", "/admin/api-keys",
		"/admin/audit", "/admin/account", "/admin/reauth?next=/admin/roles", "/admin/mfa/enrol", "/admin/nothing"} {
		r := b.get(path)
		if r.StatusCode != http.StatusOK && path != "/admin/nothing" {
			t.Errorf("GET %s: %d", path, r.StatusCode)
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: Content-Type %q", path, r.Header.Get("Content-Type"))
		}
	}
	anon := e.browser()
	for _, path := range []string{"/admin/login", "/admin/nothing"} {
		anon.get(path)
	}
	// The checker itself sees what it must refuse.
	for _, bad := range []string{`<script>alert(1)</script>`, `<p style="color:red">`, `<a href="#" onclick="x()">`, `<style>p{}</style>`} {
		var rec recorder
		checkNoInlineCode(&rec, "sample", bad)
		if !rec.failed {
			t.Errorf("the checker passes %s", bad)
		}
	}
}

func TestUnknownPagesAndBadIDsRenderErrorPages(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	b := e.browser()
	b.login("vera", testPassword)

	r := b.get("/admin/nothing")
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r, "<h1>Not found</h1>")
	r = b.get("/admin/roles/0")
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "<code>id</code>: must be a positive integer")
	r = b.get("/admin/roles/4242")
	wantStatus(t, r, http.StatusNotFound)
}

// recorder is a reporter that only notes a failure.
type recorder struct{ failed bool }

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
