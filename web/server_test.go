package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

func testRoute(method, path string, access web.Access, h http.HandlerFunc) web.Route {
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "page") }
	}
	return web.Route{Method: method, Path: path, Access: access, Handler: h}
}

func TestHealthzAnswersOK(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(e.client(), "GET", "/healthz", nil)
	wantStatus(t, r, http.StatusOK)
	if string(r.body) != "ok\n" {
		t.Errorf("body %q, want ok", r.body)
	}
}

func TestEveryResponseCarriesTheSecurityHeaders(t *testing.T) {
	e := newEnv(t, []web.Route{
		testRoute("GET", "/admin/assets/app.css", web.Public, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			fmt.Fprint(w, "body{}")
		}),
	})
	c := e.client()
	for _, path := range []string{"/healthz", "/api/admin/v1/me", "/api/admin/v1/nothing", "/admin/nothing", "/admin/assets/app.css"} {
		r := e.do(c, "GET", path, nil)
		want := map[string]string{
			"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin",
			"Cache-Control":           "no-store",
		}
		if path == "/admin/assets/app.css" {
			want["Cache-Control"] = "public, max-age=31536000, immutable"
		}
		got := map[string]string{}
		for k := range want {
			got[k] = r.Header.Get(k)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s (%d) headers (-want +got):\n%s", path, r.StatusCode, diff)
		}
		if r.Header.Get("X-Request-Id") == "" {
			t.Errorf("GET %s has no X-Request-Id", path)
		}
	}
}

func TestRequestsAreLoggedOnceWithTheirId(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(e.client(), "GET", "/healthz", nil, "X-Request-Id", "proxy-id-42")
	if got := r.Header.Get("X-Request-Id"); got != "proxy-id-42" {
		t.Errorf("X-Request-Id %q, want the proxy's proxy-id-42", got)
	}
	r = e.do(e.client(), "GET", "/healthz", nil, "X-Request-Id", "bad id with spaces")
	if got := r.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Errorf("X-Request-Id %q, want a fresh one instead of the malformed one", got)
	}
	if n := strings.Count(e.logs.String(), `"request_id":"proxy-id-42"`); n != 1 {
		t.Errorf("%d log lines for request proxy-id-42, want 1:\n%s", n, e.logs)
	}
}

func TestCrossSiteWritesAreRefused(t *testing.T) {
	e := newEnv(t, []web.Route{testRoute("POST", "/admin/thing", web.Public, nil)})
	e.createAdmin("ann", e.roles[tandem.RoleViewer])
	login := map[string]string{"name": "ann", "password": testPassword}
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"Origin of another site", []string{"Origin", "https://evil.example"}},
		{"Sec-Fetch-Site cross-site", []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(e.client(), "POST", "/api/admin/v1/session", login, tc.headers...)
			wantStatus(t, r, http.StatusForbidden)
			if p := r.problem(t); p.Title != "permission_denied" {
				t.Errorf("title %q, want permission_denied", p.Title)
			}
			if r.Header.Get("Set-Cookie") != "" {
				t.Errorf("a refused login set a cookie: %s", r.Header.Get("Set-Cookie"))
			}
			page := e.do(e.client(), "POST", "/admin/thing", nil, tc.headers...)
			wantStatus(t, page, http.StatusForbidden)
			if !strings.Contains(string(page.body), "error page") {
				t.Errorf("browser route refusal is not the HTML error page: %s", page)
			}
		})
	}
	t.Run("same origin", func(t *testing.T) {
		r := e.do(e.client(), "POST", "/api/admin/v1/session", login, "Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin")
		wantStatus(t, r, http.StatusOK)
	})
	t.Run("safe methods", func(t *testing.T) {
		r := e.do(e.client(), "GET", "/healthz", nil, "Sec-Fetch-Site", "cross-site")
		wantStatus(t, r, http.StatusOK)
	})
}

func TestUnauthenticatedBrowserRequestsGoToTheLoginPage(t *testing.T) {
	e := newEnv(t, []web.Route{
		testRoute("GET", "/admin/secret", web.Admin, nil),
		testRoute("POST", "/admin/secret", web.Admin, nil),
	})
	c := e.client()

	r := e.do(c, "GET", "/admin/secret?tab=2", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if got, want := r.Header.Get("Location"), "/admin/login?next=%2Fadmin%2Fsecret%3Ftab%3D2"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}

	r = e.do(c, "POST", "/admin/secret", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if got, want := r.Header.Get("Location"), "/admin/login"; got != want {
		t.Errorf("POST: Location %q, want %q", got, want)
	}

	r = e.do(c, "POST", "/admin/secret", nil, "HX-Request", "true", "HX-Current-URL", e.srv.URL+"/admin/secret?tab=3")
	wantStatus(t, r, http.StatusUnauthorized)
	if got, want := r.Header.Get("HX-Redirect"), "/admin/login?next=%2Fadmin%2Fsecret%3Ftab%3D3"; got != want {
		t.Errorf("htmx: HX-Redirect %q, want %q", got, want)
	}

	r = e.do(c, "GET", "/admin/secret", nil, "Cookie", "tandem_session=made-up")
	wantStatus(t, r, http.StatusSeeOther)
	if sc := r.Header.Get("Set-Cookie"); !strings.Contains(sc, "tandem_session=;") || !strings.Contains(sc, "Max-Age=0") {
		t.Errorf("an unknown session cookie is not cleared: Set-Cookie %q", sc)
	}

	r = e.do(c, "GET", "/api/admin/v1/me", nil)
	wantStatus(t, r, http.StatusUnauthorized)
	if p := r.problem(t); p.Title != "unauthenticated" {
		t.Errorf("API title %q, want unauthenticated", p.Title)
	}
}

func TestOutstandingMFABlocksAdminRoutes(t *testing.T) {
	e := newEnv(t, []web.Route{
		testRoute("GET", "/admin/secret", web.Admin, nil),
		testRoute("GET", "/admin/step", web.Pending, nil),
	})
	e.createAdmin("olga", e.roles[tandem.RoleOwner])
	c := e.client()
	if step := e.login(c, "olga"); step != service.MFAEnrol {
		t.Fatalf("an owner without MFA logs in with step %q, want %q", step, service.MFAEnrol)
	}
	checkBlocked := func(page string) {
		t.Helper()
		r := e.do(c, "GET", "/api/admin/v1/me", nil)
		wantStatus(t, r, http.StatusForbidden)
		if p := r.problem(t); p.Title != "mfa_required" || p.Code != int(tandem.EMFARequired) {
			t.Errorf("API: problem %+v, want mfa_required", p)
		}
		r = e.do(c, "GET", "/admin/secret", nil)
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != page {
			t.Errorf("browser: Location %q, want %q", got, page)
		}
		r = e.do(c, "GET", "/admin/secret", nil, "HX-Request", "true")
		if got := r.Header.Get("HX-Redirect"); got != page {
			t.Errorf("htmx: HX-Redirect %q, want %q", got, page)
		}
		wantStatus(t, e.do(c, "GET", "/admin/step", nil), http.StatusOK)
	}
	checkBlocked("/admin/mfa/enrol")

	e.enrolMFA(c)
	wantStatus(t, e.do(c, "GET", "/api/admin/v1/me", nil), http.StatusOK)
	wantStatus(t, e.do(c, "DELETE", "/api/admin/v1/session", nil), http.StatusNoContent)
	if step := e.login(c, "olga"); step != service.MFAChallenge {
		t.Fatalf("an enrolled owner logs in with step %q, want %q", step, service.MFAChallenge)
	}
	checkBlocked("/admin/mfa")
}

func TestClientAddressBelievesXForwardedForOnlyFromTrustedProxies(t *testing.T) {
	echo := testRoute("GET", "/test/address", web.Public, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, web.ClientAddress(r))
	})
	direct := newEnv(t, []web.Route{echo})
	proxied := newEnv(t, []web.Route{echo}, func(c *web.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	for _, tc := range []struct {
		name string
		env  *testEnv
		xff  []string
		want string
	}{
		{"no proxy trusted", direct, []string{"203.0.113.7"}, "127.0.0.1"},
		{"no header", proxied, nil, "127.0.0.1"},
		{"one proxy", proxied, []string{"203.0.113.7"}, "203.0.113.7"},
		{"client-written hops left of the first untrusted are ignored", proxied,
			[]string{"198.51.100.9, 203.0.113.7, 10.1.2.3"}, "203.0.113.7"},
		{"several headers", proxied, []string{"198.51.100.9", "203.0.113.7", "10.1.2.3"}, "203.0.113.7"},
		{"only trusted hops", proxied, []string{"10.9.9.9, 10.1.2.3"}, "10.9.9.9"},
		{"garbage stops the walk", proxied, []string{"203.0.113.7, not-an-address"}, "127.0.0.1"},
		{"IPv6 with brackets", proxied, []string{"[2001:db8::1]"}, "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tc.env.srv.URL+"/test/address", nil)
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			resp, err := tc.env.client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("client address %q, want %q", b, tc.want)
			}
		})
	}

	t.Run("the audit log records it", func(t *testing.T) {
		r := proxied.do(proxied.client(), "POST", "/api/admin/v1/session",
			map[string]string{"name": "nobody", "password": "wrong password!"}, "X-Forwarded-For", "203.0.113.99")
		wantStatus(t, r, http.StatusUnauthorized)
		recs, err := proxied.svc.AuditLog(context.Background(), service.CLIActor("test"), tandem.AuditFilter{Action: "session.login"})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].Address != "203.0.113.99" {
			t.Errorf("login audit records %+v, want one from 203.0.113.99", recs)
		}
	})
}

func TestInternalErrorsNeverReachTheClient(t *testing.T) {
	e := newEnv(t, []web.Route{
		{Method: "GET", Path: "/api/test/panic", Access: web.Public, API: true,
			Handler: func(http.ResponseWriter, *http.Request) { panic("boom: secret internals") }},
		testRoute("GET", "/admin/panic", web.Public, func(http.ResponseWriter, *http.Request) { panic("boom: page internals") }),
	})
	secret, _ := e.apiKey("ops", e.roles[tandem.RoleOwner])
	leaks := []string{"boom", "goroutine", ".go:", "sql", "SQL", "database", "tandem:"}
	checkClean := func(r response) {
		t.Helper()
		for _, s := range leaks {
			if strings.Contains(string(r.body), s) {
				t.Errorf("the answer leaks %q: %s", s, r)
			}
		}
	}

	r := e.do(e.client(), "GET", "/api/test/panic", nil)
	wantStatus(t, r, http.StatusInternalServerError)
	if p := r.problem(t); p.Title != "internal" || p.Detail != "internal error" {
		t.Errorf("panic problem %+v, want internal / internal error", p)
	}
	checkClean(r)
	r = e.do(e.client(), "GET", "/admin/panic", nil)
	wantStatus(t, r, http.StatusInternalServerError)
	checkClean(r)
	if logs := e.logs.String(); !strings.Contains(logs, "boom: secret internals") || !strings.Contains(logs, "panic serving request") {
		t.Errorf("the panic is not logged:\n%s", logs)
	}

	// With its database gone, every request fails inside the service.
	e.store.Close()
	r = e.do(e.client(), "GET", "/api/admin/v1/roles", nil, "Authorization", "Bearer "+secret)
	wantStatus(t, r, http.StatusInternalServerError)
	if p := r.problem(t); p.Detail != "internal error" {
		t.Errorf("database failure detail %q, want internal error", p.Detail)
	}
	checkClean(r)
	if !strings.Contains(e.logs.String(), `"path":"/api/admin/v1/roles","status":500`) {
		t.Errorf("the failed request is not logged with its status:\n%s", e.logs)
	}
}

func TestNotFoundAndWrongMethodAnswerInTheSitesFormat(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()

	r := e.do(c, "GET", "/api/admin/v1/nothing", nil)
	wantStatus(t, r, http.StatusNotFound)
	if p := r.problem(t); p.Title != "not_found" {
		t.Errorf("title %q, want not_found", p.Title)
	}

	r = e.do(c, "GET", "/admin/nothing", nil)
	wantStatus(t, r, http.StatusNotFound)
	if !strings.Contains(string(r.body), "error page: not_found") {
		t.Errorf("a missing page is not the HTML error page: %s", r)
	}

	r = e.do(c, "PATCH", "/api/admin/v1/roles", map[string]string{})
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if got, want := r.Header.Get("Allow"), "GET, HEAD, POST"; got != want {
		t.Errorf("Allow %q, want %q", got, want)
	}
	if p := r.problem(t); p.Status != http.StatusMethodNotAllowed {
		t.Errorf("problem status %d, want 405", p.Status)
	}

	wantStatus(t, e.do(c, "DELETE", "/healthz", nil), http.StatusMethodNotAllowed)
}

func TestNewRefusesABadRouteTable(t *testing.T) {
	e := newEnv(t, nil)
	ok := func(w http.ResponseWriter, r *http.Request) {}
	for _, tc := range []struct {
		name   string
		routes []web.Route
		want   string
	}{
		{"duplicate pattern", []web.Route{
			{Method: "GET", Path: "/admin/x", Access: web.Admin, Handler: ok},
			{Method: "GET", Path: "/admin/x", Access: web.Public, Handler: ok},
		}, "declared twice"},
		{"missing handler", []web.Route{{Method: "GET", Path: "/admin/x", Access: web.Admin}}, "no handler"},
		{"unknown permission", []web.Route{{Method: "GET", Path: "/admin/x", Access: web.Admin, Permission: "castles:storm", Handler: ok}},
			"unknown permission"},
		{"permission on a public route", []web.Route{
			{Method: "GET", Path: "/admin/x", Access: web.Public, Permission: tandem.PermAuditRead, Handler: ok}}, "only Admin routes"},
		{"conflicting patterns", []web.Route{
			{Method: "GET", Path: "/admin/{a}/x", Access: web.Admin, Handler: ok},
			{Method: "GET", Path: "/admin/y/{b}", Access: web.Admin, Handler: ok},
		}, "conflicts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := web.New(web.Config{Service: e.svc, Routes: tc.routes})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := web.New(web.Config{Service: e.svc, PublicURL: "ftp://x"}); err == nil {
		t.Error("New accepted an ftp:// public URL")
	}
}

func TestCookiesBehindTLSAreSecureWithTheHostPrefix(t *testing.T) {
	for _, tc := range []struct {
		url     string
		secure  bool
		session string
	}{
		{"https://ops.example.com", true, "__Host-tandem_session"},
		{"http://127.0.0.1:7700", false, "tandem_session"},
	} {
		c := web.CookiesFor(tc.url)
		if c.Secure != tc.secure {
			t.Errorf("CookiesFor(%q).Secure = %v, want %v", tc.url, c.Secure, tc.secure)
		}
		w := httptest.NewRecorder()
		c.SetSession(w, "tok", 0)
		c.SetDevice(w, "dev")
		cookies := w.Result().Cookies()
		if len(cookies) != 2 {
			t.Fatalf("%d cookies set, want 2", len(cookies))
		}
		device := strings.Replace(tc.session, "session", "device", 1)
		for i, want := range []http.Cookie{
			{Name: tc.session, Value: "tok", Path: "/", Secure: tc.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode},
			{Name: device, Value: "dev", Path: "/", MaxAge: 365 * 24 * 3600, Secure: tc.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode},
		} {
			got := *cookies[i]
			got.Raw, got.Expires, got.RawExpires = "", want.Expires, ""
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s cookie %d (-want +got):\n%s", tc.url, i, diff)
			}
		}
		req := httptest.NewRequest("GET", "/", nil)
		for _, k := range cookies {
			req.AddCookie(k)
		}
		if c.Session(req) != "tok" || c.Device(req) != "dev" {
			t.Errorf("%s: read back session %q device %q", tc.url, c.Session(req), c.Device(req))
		}
	}
}

func TestAPIDocListsEveryRoute(t *testing.T) {
	e := newEnv(t, nil)
	routes := web.APIRoutes(e.svc, web.Cookies{})
	doc := string(web.APIDoc(routes))
	for _, rt := range routes {
		if row := fmt.Sprintf("| %s | `%s` |", rt.Method, rt.Path); !strings.Contains(doc, row) {
			t.Errorf("the doc has no row %q", row)
		}
	}
	for _, want := range []string{"## API: admins", "`admins:manage`", "`{name, password, role_id}`", "| 18 | `validation_failed` | 422 |"} {
		if !strings.Contains(doc, want) {
			t.Errorf("the doc lacks %q", want)
		}
	}
	if again := string(web.APIDoc(routes)); again != doc {
		t.Error("APIDoc is not deterministic")
	}
}

func TestRateLimitedAnswersSayWhenToRetry(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/admin/v1/session", nil)
	web.WriteError(rec, req, &tandem.Error{Code: tandem.ERateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond})
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("status %d, Retry-After %q; want 429 and 2 (seconds, rounded up)", rec.Code, rec.Header().Get("Retry-After"))
	}
	var p struct {
		RetryAfter int `json:"retry_after"`
	}
	if err := json.NewDecoder(rec.Body).Decode(&p); err != nil || p.RetryAfter != 2 {
		t.Fatalf("problem retry_after %d, %v; want 2", p.RetryAfter, err)
	}
}
