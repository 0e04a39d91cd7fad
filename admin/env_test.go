package admin_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/servicetest"

	"github.com/pquerna/otp/totp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/admin"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// testEnv is the whole web server (admin pages and JSON API) on a real
// service over a real SQLite store.
type testEnv struct {
	t     *testing.T
	svc   *service.Service
	clock *servicetest.Clock
	srv   *httptest.Server
	roles map[string]int64 // role ids by name
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with the service's Config changed by edit first.
func newEnvWith(t *testing.T, edit func(*service.Config)) *testEnv {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	se := servicetest.New(t, func(c *service.Config) {
		c.Logger = log
		if edit != nil {
			edit(c)
		}
	})
	e := &testEnv{t: t, svc: se.Service, clock: se.Clock, roles: se.Roles}
	cfg := admin.Config{Service: e.svc, Cookies: web.Cookies{}, Logger: log}
	s, err := web.New(web.Config{
		Service:   e.svc,
		Logger:    log,
		Routes:    append(web.APIRoutes(e.svc, cfg.Cookies), admin.Routes(cfg)...),
		HTMLError: admin.HTMLError(cfg),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *testEnv) loadRoles() {
	roles, err := e.svc.Roles(context.Background(), service.CLIActor("test"))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range roles {
		e.roles[r.Name] = r.ID
	}
}

const testPassword = "correct horse battery"

// createAdmin makes an admin as the CLI would.
func (e *testEnv) createAdmin(name, role string) *tandem.Admin {
	e.t.Helper()
	a, err := e.svc.CreateAdmin(context.Background(), service.CLIActor("test"),
		service.NewAdmin{Name: name, Password: testPassword, RoleID: e.roles[role]})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// browser is one browser: its own cookie jar, and redirects not followed
// so tests see them.
type browser struct {
	e *testEnv
	c *http.Client
}

func (e *testEnv) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// response is an answer read whole.
type response struct {
	*http.Response
	body string
}

func (r response) String() string { return r.Status + "\n" + r.body }

// htmx are the headers htmx sends for a form targeting #main.
var htmx = []string{"HX-Request", "true", "HX-Target", "main"}

// do sends a request as a browser on the same site would. Every HTML
// answer is checked for inline script and style, which the CSP forbids.
func (b *browser) do(method, path string, form url.Values, headers ...string) response {
	t := b.e.t
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{resp, string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		checkNoInlineCode(t, method+" "+path, r.body)
	}
	return r
}

func (b *browser) get(path string, headers ...string) response {
	b.e.t.Helper()
	return b.do("GET", path, nil, headers...)
}

func (b *browser) post(path string, form url.Values, headers ...string) response {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return b.do("POST", path, form, headers...)
}

// login logs in through the login form and returns where it sent the
// browser.
func (b *browser) login(name, password string) string {
	b.e.t.Helper()
	r := b.post("/admin/login", url.Values{"name": {name}, "password": {password}})
	wantStatus(b.e.t, r, http.StatusSeeOther)
	return r.Header.Get("Location")
}

// enrol runs the enrolment pages as a person would: start, read the
// secret off the page, type the code. It returns the secret.
func (b *browser) enrol() string {
	t := b.e.t
	t.Helper()
	wantStatus(t, b.post("/admin/mfa/enrol", nil), http.StatusSeeOther)
	page := b.get("/admin/mfa/enrol")
	wantStatus(t, page, http.StatusOK)
	secret := secretOnPage(t, page.body)
	r := b.post("/admin/mfa/confirm", url.Values{"code": {b.e.totp(secret)}})
	wantStatus(t, r, http.StatusOK)
	return secret
}

// owner logs a new owner in with a browser and enrols their MFA.
func (e *testEnv) owner(name string) (*browser, string) {
	e.t.Helper()
	e.createAdmin(name, tandem.RoleOwner)
	b := e.browser()
	if to := b.login(name, testPassword); to != "/admin/mfa/enrol" {
		e.t.Fatalf("owner login went to %q, want the enrolment page", to)
	}
	return b, b.enrol()
}

var secretRE = regexp.MustCompile(`<code class="secret" id="mfa-secret">([A-Z2-7]+)</code>`)

func secretOnPage(t *testing.T, body string) string {
	t.Helper()
	m := secretRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no secret on the enrolment page:\n%s", body)
	}
	return m[1]
}

// totp returns the code of secret at the service's time.
func (e *testEnv) totp(secret string) string {
	e.t.Helper()
	code, err := totp.GenerateCode(secret, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

// nextStep moves the clock to a later TOTP step, so a new code is valid.
func (e *testEnv) nextStep() { e.clock.Advance(30 * time.Second) }

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d:\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
}

func wantContains(t *testing.T, r response, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.body, p) {
			t.Errorf("%s %s: body lacks %q:\n%s", r.Request.Method, r.Request.URL.Path, p, r.body)
		}
	}
}

func wantLacks(t *testing.T, r response, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(r.body, p) {
			t.Errorf("%s %s: body contains %q:\n%s", r.Request.Method, r.Request.URL.Path, p, r.body)
		}
	}
}

// tag is one start tag of a page with its attributes.
type tag struct {
	name  string
	attrs map[string]string
}

var tagRE = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>` + "`" + `]+))?)*)\s*/?>`)
var attrRE = regexp.MustCompile(`([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>` + "`" + `]+)))?`)

// tags returns the start tags of an HTML document. The pages escape "<"
// in text and attribute values, so every "<letter" starts a real tag.
func tags(body string) []tag {
	var out []tag
	for _, m := range tagRE.FindAllStringSubmatch(body, -1) {
		t := tag{name: strings.ToLower(m[1]), attrs: map[string]string{}}
		for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
			t.attrs[strings.ToLower(a[1])] = html.UnescapeString(a[2] + a[3] + a[4])
		}
		out = append(out, t)
	}
	return out
}

// reporter is the part of testing.T the HTML checks use.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// checkNoInlineCode fails on anything the CSP would block or an injected
// name could run: inline script, event handler attributes, inline style.
func checkNoInlineCode(t reporter, what, body string) {
	t.Helper()
	lower := strings.ToLower(body)
	if strings.Contains(lower, "<style") {
		t.Errorf("%s: a <style> element", what)
	}
	for i := strings.Index(lower, "<script"); i >= 0; {
		end := strings.Index(lower[i:], "</script>")
		open := strings.Index(lower[i:], ">")
		if end < 0 || open < 0 || end != open+1 {
			t.Errorf("%s: a script element with inline content: %.80s", what, body[i:])
			break
		}
		next := strings.Index(lower[i+1:], "<script")
		if next < 0 {
			break
		}
		i += 1 + next
	}
	for _, tg := range tags(body) {
		for name := range tg.attrs {
			if name == "style" || strings.HasPrefix(name, "on") {
				t.Errorf("%s: <%s> has a %s attribute", what, tg.name, name)
			}
		}
		if tg.name == "script" && tg.attrs["src"] == "" {
			t.Errorf("%s: a <script> without src", what)
		}
		for _, a := range []string{"href", "src", "action", "hx-get", "hx-post"} {
			if v := strings.ToLower(strings.TrimSpace(tg.attrs[a])); strings.HasPrefix(v, "javascript:") {
				t.Errorf("%s: <%s %s=%q>", what, tg.name, a, v)
			}
		}
	}
}

// navLinks returns the paths the main navigation offers.
func navLinks(t *testing.T, body string) []string {
	t.Helper()
	start := strings.Index(body, `<nav aria-label="Main">`)
	if start < 0 {
		t.Fatalf("no main navigation:\n%s", body)
	}
	end := strings.Index(body[start:], "</nav>")
	var out []string
	for _, tg := range tags(body[start : start+end]) {
		if tg.name == "a" {
			out = append(out, tg.attrs["href"])
		}
	}
	return out
}
