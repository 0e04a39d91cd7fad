package admin_test

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

func TestLoginLeadsToTheOverview(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	b := e.browser()

	login := b.get("/admin/login")
	wantStatus(t, login, http.StatusOK)
	wantContains(t, login, `<form class="stack" method="post" action="/admin/login"`, `<label for="login-name">Name</label>`)

	if to := b.login("vera", testPassword); to != "/admin" {
		t.Fatalf("login went to %q, want /admin", to)
	}
	r := b.get("/admin")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "<h1>Overview</h1>", "Signed in as <strong>vera</strong>", "<strong>viewer</strong>")
}

func TestLoginReturnsToTheLocalPageItWasAskedFor(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	b := e.browser()

	r := b.get("/admin/audit?action=admin.")
	wantStatus(t, r, http.StatusSeeOther)
	loginURL := r.Header.Get("Location")
	if want := "/admin/login?next=" + url.QueryEscape("/admin/audit?action=admin."); loginURL != want {
		t.Fatalf("redirected to %q, want %q", loginURL, want)
	}
	page := b.get(loginURL)
	wantContains(t, page, `<input type="hidden" name="next" value="/admin/audit?action=admin.">`)

	for next, want := range map[string]string{
		"/admin/audit?action=admin.": "/admin/audit?action=admin.",
		"//evil.example/admin":       "/admin",
		"https://evil.example/admin": "/admin",
		"/admin.evil":                "/admin",
		`/\evil.example`:             "/admin",
	} {
		b := e.browser()
		r := b.post("/admin/login", url.Values{"name": {"vera"}, "password": {testPassword}, "next": {next}})
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != want {
			t.Errorf("login with next %q went to %q, want %q", next, got, want)
		}
	}
}

func TestWrongPasswordShowsAnInlineError(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	b := e.browser()

	r := b.post("/admin/login", url.Values{"name": {"vera"}, "password": {"not the password"}})
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r, `<div class="alert" role="alert">wrong name or password</div>`,
		`<input id="login-name" name="name" type="text" value="vera"`, "<html")
	wantLacks(t, r, "not the password")

	// With htmx the answer is the login form alone, swapped into the page.
	r = b.post("/admin/login", url.Values{"name": {"vera"}, "password": {"not the password"}}, htmx...)
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r, "wrong name or password", `name="password"`)
	wantLacks(t, r, "<html", "<nav")

	// And a right password with htmx navigates the whole page.
	r = b.post("/admin/login", url.Values{"name": {"vera"}, "password": {testPassword}}, htmx...)
	wantStatus(t, r, http.StatusNoContent)
	if got := r.Header.Get("HX-Redirect"); got != "/admin" {
		t.Errorf("HX-Redirect %q, want /admin", got)
	}
}

func TestMFAEnrolmentThenChallengeAcceptsEachCodeOnce(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("olga", tandem.RoleOwner)
	b := e.browser()

	// The owner's role needs MFA: the login goes to enrolment, and every
	// other page sends them back there.
	if to := b.login("olga", testPassword); to != "/admin/mfa/enrol" {
		t.Fatalf("login went to %q, want /admin/mfa/enrol", to)
	}
	if r := b.get("/admin"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/mfa/enrol" {
		t.Fatalf("overview before enrolment: %d to %q, want 303 to /admin/mfa/enrol", r.StatusCode, r.Header.Get("Location"))
	}
	start := b.get("/admin/mfa/enrol")
	wantStatus(t, start, http.StatusOK)
	wantContains(t, start, "Your role needs two-factor authentication", `action="/admin/mfa/enrol"`)
	wantLacks(t, start, `<nav aria-label="Main">`)

	r := b.post("/admin/mfa/enrol", nil)
	wantStatus(t, r, http.StatusSeeOther)
	page := b.get(r.Header.Get("Location"))
	wantStatus(t, page, http.StatusOK)
	secret := secretOnPage(t, page.body)
	wantContains(t, page, `<img class="qr" src="/admin/mfa/qr.png"`)

	qr := b.get("/admin/mfa/qr.png")
	wantStatus(t, qr, http.StatusOK)
	if ct, cc := qr.Header.Get("Content-Type"), qr.Header.Get("Cache-Control"); ct != "image/png" || cc != "no-store" {
		t.Errorf("QR code: Content-Type %q, Cache-Control %q; want image/png, no-store", ct, cc)
	}
	if _, err := png.Decode(bytes.NewReader([]byte(qr.body))); err != nil {
		t.Errorf("QR code is not a PNG: %v", err)
	}

	r = b.post("/admin/mfa/confirm", url.Values{"code": {"000000"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `<p class="field-error" id="confirm-code-error">wrong code; check the time on your device</p>`)

	confirmCode := e.totp(secret)
	r = b.post("/admin/mfa/confirm", url.Values{"code": {confirmCode}})
	wantStatus(t, r, http.StatusOK)
	codes := regexp.MustCompile(`<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>`).FindAllStringSubmatch(r.body, -1)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10:\n%s", len(codes), r.body)
	}
	wantStatus(t, b.get("/admin"), http.StatusOK)

	// A new login asks for a code; the one used to enrol is spent.
	b2 := e.browser()
	if to := b2.login("olga", testPassword); to != "/admin/mfa" {
		t.Fatalf("second login went to %q, want /admin/mfa", to)
	}
	wantStatus(t, b2.get("/admin/mfa"), http.StatusOK)
	r = b2.post("/admin/mfa", url.Values{"code": {confirmCode}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantLacks(t, r, confirmCode)
	wantContains(t, r, `<p class="field-error" id="mfa-code-error">wrong or already used code</p>`)

	e.nextStep()
	code := e.totp(secret)
	r = b2.post("/admin/mfa", url.Values{"code": {code}})
	wantStatus(t, r, http.StatusSeeOther)
	if to := r.Header.Get("Location"); to != "/admin" {
		t.Errorf("after the code went to %q, want /admin", to)
	}
	wantStatus(t, b2.get("/admin"), http.StatusOK)

	// The same code in a third browser is refused.
	b3 := e.browser()
	b3.login("olga", testPassword)
	r = b3.post("/admin/mfa", url.Values{"code": {code}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "wrong or already used code")

	// Someone at the challenge can log out instead.
	b5 := e.browser()
	b5.login("olga", testPassword)
	wantContains(t, b5.get("/admin/mfa"), `<form class="aside" method="post" action="/admin/logout">`)
	r = b5.post("/admin/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if to := r.Header.Get("Location"); to != "/admin/login?done=logged-out" {
		t.Errorf("logout at the challenge went to %q", to)
	}

	// A recovery code works once.
	recovery := codes[0][1]
	r = b3.post("/admin/mfa", url.Values{"code": {strings.ToUpper(recovery)}})
	wantStatus(t, r, http.StatusSeeOther)
	b4 := e.browser()
	b4.login("olga", testPassword)
	r = b4.post("/admin/mfa", url.Values{"code": {recovery}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
}

func TestLogoutEndsTheSession(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	b := e.browser()
	b.login("vera", testPassword)

	r := b.post("/admin/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if to := r.Header.Get("Location"); to != "/admin/login?done=logged-out" {
		t.Errorf("logout went to %q", to)
	}
	wantContains(t, b.get("/admin/login?done=logged-out"), "You are logged out.")
	if r := b.get("/admin"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("overview after logout: %d, want 303 to the login page", r.StatusCode)
	}
}

func TestSensitiveChangesAskForTheReauthFormAndThenWork(t *testing.T) {
	e := newEnv(t)
	b, secret := e.owner("olga")
	form := url.Values{"name": {"nina"}, "password": {testPassword}, "role_id": {strconv.FormatInt(e.roles[tandem.RoleViewer], 10)}}

	// Long after login, a new admin needs the password (and code) again.
	e.clock.Advance(10 * time.Minute)
	b.get("/admin") // keeps the session from idling out
	r := b.post("/admin/admins", form)
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, `<form class="stack" method="post" action="/admin/reauth"`,
		`<input type="hidden" name="next" value="/admin/admins">`, "the change is offered again",
		`<label for="reauth-code">Two-factor code</label>`)

	r = b.post("/admin/reauth", url.Values{"password": {"wrong password!"}, "code": {"123456"}, "next": {"/admin/admins"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `<p class="field-error" id="reauth-password-error">wrong password</p>`)

	e.nextStep()
	r = b.post("/admin/reauth", url.Values{"password": {testPassword}, "code": {e.totp(secret)}, "next": {"/admin/admins"}})
	wantStatus(t, r, http.StatusSeeOther)
	if to := r.Header.Get("Location"); to != "/admin/admins?done=reauthenticated" {
		t.Errorf("reauth went to %q", to)
	}
	wantStatus(t, b.post("/admin/admins", form), http.StatusSeeOther)

	// Replacing the authenticator asks again once the window has passed,
	// and returns to the enrolment page.
	e.clock.Advance(10 * time.Minute)
	b.get("/admin")
	r = b.post("/admin/mfa/enrol", nil, htmx...)
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, `<input type="hidden" name="next" value="/admin/mfa/enrol">`)
	wantLacks(t, r, "<html")
	e.nextStep()
	r = b.post("/admin/reauth", url.Values{"password": {testPassword}, "code": {e.totp(secret)}, "next": {"/admin/mfa/enrol"}}, htmx...)
	wantStatus(t, r, http.StatusNoContent)
	if to := r.Header.Get("HX-Redirect"); to != "/admin/mfa/enrol?done=reauthenticated" {
		t.Errorf("reauth went to %q", to)
	}
	wantStatus(t, b.post("/admin/mfa/enrol", nil), http.StatusSeeOther)
	newSecret := secretOnPage(t, b.get("/admin/mfa/enrol").body)
	if newSecret == secret {
		t.Error("the new enrolment offers the old secret")
	}

	admins, err := e.svc.Admins(context.Background(), service.CLIActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range admins {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"olga", "nina"}, names); diff != "" {
		t.Errorf("admins (-want +got):\n%s", diff)
	}
}

func TestChangingOwnPasswordShowsErrorsInlineAndWorks(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	b := e.browser()
	b.login("vera", testPassword)

	r := b.post("/admin/account/password", url.Values{"current_password": {"nope"}, "new_password": {"short"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r,
		`<p class="field-error" id="password-current_password-error">wrong password</p>`,
		`<p class="field-error" id="password-new_password-error">use at least 12 characters</p>`,
		`aria-invalid="true" aria-describedby="password-new_password-error"`)

	r = b.post("/admin/account/password", url.Values{"current_password": {testPassword}, "new_password": {"a much longer passphrase"}})
	wantStatus(t, r, http.StatusSeeOther)
	if to := b.login("vera", "a much longer passphrase"); to != "/admin" {
		t.Errorf("login with the new password went to %q", to)
	}
}

func TestAChangeInterruptedByTheReauthFormIsOfferedAgainAsTyped(t *testing.T) {
	e := newEnv(t)
	b, secret := e.owner("olga")
	form := url.Values{"name": {"<b>nina</b>"}, "password": {testPassword}, "role_id": {strconv.FormatInt(e.roles[tandem.RoleViewer], 10)}}
	e.clock.Advance(10 * time.Minute)
	b.get("/admin")
	r := b.post("/admin/admins", form)
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, `<input type="hidden" name="resume:action" value="/admin/admins">`,
		`<input type="hidden" name="resume:field:name" value="&lt;b&gt;nina&lt;/b&gt;">`)

	// The confirmation carries the change; a wrong password keeps carrying it.
	reauth := url.Values{"password": {"wrong password!"}, "code": {"123456"}, "next": {"/admin/admins"},
		"resume:action": {"/admin/admins"}}
	for k, v := range form {
		reauth["resume:field:"+k] = v
	}
	r = b.post("/admin/reauth", reauth)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `<input type="hidden" name="resume:field:name" value="&lt;b&gt;nina&lt;/b&gt;">`)

	e.nextStep()
	reauth.Set("password", testPassword)
	reauth.Set("code", e.totp(secret))
	r = b.post("/admin/reauth", reauth)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<form class="stack" method="post" action="/admin/admins"`,
		`<input type="hidden" name="name" value="&lt;b&gt;nina&lt;/b&gt;">`, "Make the change")

	// The offered form makes the change; an action outside /admin is never offered.
	wantStatus(t, b.post("/admin/admins", form), http.StatusSeeOther)
	reauth.Set("resume:action", "https://evil.example/admin")
	e.clock.Advance(time.Minute)
	e.nextStep()
	reauth.Set("code", e.totp(secret))
	r = b.post("/admin/reauth", reauth)
	wantStatus(t, r, http.StatusSeeOther)
}
