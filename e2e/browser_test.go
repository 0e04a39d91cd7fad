package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium for the test and returns its
// context; each newBrowserContext in it is a separate profile (cookies
// apart), like a second person at another computer.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is required under CI (.ci/run installs it): %v", err)
		}
		t.Skipf("no Chromium at %s (apt-get install chromium)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(browser); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	return browser
}

// newBrowserContext opens a tab in a fresh browser context of browser. Any
// JavaScript dialog (an alert from injected markup) fails the test.
func newBrowserContext(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	return newBrowserContextConfirming(t, browser, nil)
}

// newBrowserContextConfirming is newBrowserContext for pages that ask the
// confirmations confirm accepts (hx-confirm); any other dialog fails the
// test.
func newBrowserContextConfirming(t *testing.T, browser context.Context, confirm func(message string) bool) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatalf("open a browser context: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	opened := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			if ev.Type != page.DialogTypeConfirm || confirm == nil || !confirm(ev.Message) {
				select {
				case opened <- ev.Message:
				default:
				}
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		close(opened)
		for msg := range opened {
			t.Errorf("a page opened a JavaScript dialog: %q", msg)
		}
	})
	return ctx
}

// do runs browser steps with the test's deadline.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 2*deadline)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v (page %s)", what, err, loc)
	}
}

// get runs one browser action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 2*deadline)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func totpCode(t *testing.T, secret string) string { return totpCodeAt(t, secret, time.Now()) }

// totpCodeAt is the code of secret at time at. The server accepts the step
// after the current one (clock drift), and each step once: a second login
// right after enrolment uses the next step's code.
func totpCodeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// login fills the login form at url.
func login(t *testing.T, ctx context.Context, url, name, password string) {
	t.Helper()
	do(t, ctx, "log in as "+name,
		chromedp.Navigate(url+"/admin"),
		chromedp.WaitVisible(css(`input[name="name"]`)),
		chromedp.SendKeys(css(`input[name="name"]`), name),
		chromedp.SendKeys(css(`input[name="password"]`), password),
		chromedp.Click(css(`form[action="/admin/login"] button[type="submit"]`)),
	)
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// xssName is an admin name that would run script if a page rendered it as
// markup instead of text.
const xssName = `<img src=x onerror=alert(1)>`

func TestBrowserOwnerWithMFACreatesAnAuditorWhoReadsTheLogAndIsRefusedAdmins(t *testing.T) {
	t.Parallel()
	db, key := newWebDatabase(t, "owner", "owner password 1")
	web := startWeb(t, db, key)
	browser := newBrowser(t)

	// The owner logs in and must enrol an authenticator before anything else.
	owner := newBrowserContext(t, browser)
	login(t, owner, web.url, "owner", "owner password 1")
	do(t, owner, "start enrolment",
		chromedp.WaitVisible(css(`form[action="/admin/mfa/enrol"] button`)),
		chromedp.Click(css(`form[action="/admin/mfa/enrol"] button`)),
		chromedp.WaitVisible(css(`#mfa-secret`)),
	)
	secret := strings.TrimSpace(get(t, owner, "read the secret", chromedp.Text(css(`#mfa-secret`))))
	do(t, owner, "confirm enrolment",
		chromedp.SendKeys(css(`form[action="/admin/mfa/confirm"] input[name="code"]`), totpCode(t, secret)),
		chromedp.Click(css(`form[action="/admin/mfa/confirm"] button`)),
		chromedp.WaitVisible(css(`#recovery-codes`)),
	)

	// A role with only audit:read, and an admin holding it.
	do(t, owner, "create the auditor role",
		chromedp.Navigate(web.url+"/admin/roles"),
		chromedp.WaitVisible(css(`form[action="/admin/roles"] input[name="name"]`)),
		chromedp.SendKeys(css(`form[action="/admin/roles"] input[name="name"]`), "auditor"),
		chromedp.Click(css(`form[action="/admin/roles"] input[name="permissions"][value="audit:read"]`)),
		chromedp.Click(css(`form[action="/admin/roles"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//a[text()="auditor"]`)),
	)
	do(t, owner, "create the auditor admin",
		chromedp.Navigate(web.url+"/admin/admins"),
		chromedp.WaitVisible(css(`form[action="/admin/admins"] input[name="name"]`)),
		chromedp.SendKeys(css(`form[action="/admin/admins"] input[name="name"]`), xssName),
		chromedp.SendKeys(css(`form[action="/admin/admins"] input[name="password"]`), "auditor password 1"),
		selectOption(`form[action="/admin/admins"] select[name="role_id"]`, "auditor"),
		chromedp.Click(css(`form[action="/admin/admins"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//td[contains(., "<img src=x")]`)),
	)

	// The auditor, in a second browser context, reads the audit log and is
	// refused the admins page.
	auditor := newBrowserContext(t, browser)
	login(t, auditor, web.url, xssName, "auditor password 1")
	do(t, auditor, "open the audit log",
		chromedp.WaitVisible(css(`nav a[href="/admin/audit"]`)),
		chromedp.Click(css(`nav a[href="/admin/audit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//td[contains(., "admin.create")]`)),
	)
	if n := get(t, auditor, "count admin links", chromedp.Evaluate[int](`document.querySelectorAll('a[href="/admin/admins"]').length`)); n != 0 {
		t.Error("the auditor's navigation links to the admins page")
	}
	do(t, auditor, "open the admins page",
		chromedp.Navigate(web.url+"/admin/admins"),
		chromedp.WaitVisible(css(`body`)),
	)
	if body := get(t, auditor, "read the page", chromedp.Text(css(`main`))); !strings.Contains(strings.ToLower(body), "permission") {
		t.Errorf("admins page for the auditor says %q, want a permission refusal", body)
	}

	// The log shows the auditor's creation and the refused attempt.
	do(t, auditor, "find the refusal in the audit log",
		chromedp.Navigate(web.url+"/admin/audit?result=denied"),
		chromedp.WaitVisible(chromedp.Search(`//td[contains(., "/admin/admins")]`)),
	)
	do(t, auditor, "find the owner's creation of the auditor in the audit log",
		chromedp.Navigate(web.url+"/admin/audit?action=admin.create&actor=owner"),
		chromedp.WaitVisible(chromedp.Search(`//td[contains(., "admin.create")]`)),
	)
	if body := get(t, auditor, "read the log", chromedp.TextContent(css(`main`))); !strings.Contains(body, xssName) {
		t.Errorf("the owner's admin.create record does not name the new admin:\n%s", body)
	}

	// The hostile name is text on every page that shows it: never an element.
	for _, path := range []string{"/admin/audit", "/admin/account", "/admin", "/admin/admins", "/admin/reauth"} {
		checkNoInjectedImage(t, auditor, web.url+path)
	}

	// A later login of the owner passes the challenge with the next code.
	again := newBrowserContext(t, browser)
	login(t, again, web.url, "owner", "owner password 1")
	do(t, again, "pass the challenge",
		chromedp.WaitVisible(css(`form[action="/admin/mfa"] input[name="code"]`)),
		chromedp.SendKeys(css(`form[action="/admin/mfa"] input[name="code"]`), totpCodeAt(t, secret, time.Now().Add(30*time.Second))),
		chromedp.Click(css(`form[action="/admin/mfa"] button[type="submit"]`)),
		chromedp.WaitVisible(css(`a[href="/admin/admins"]`)),
	)
	for _, path := range []string{"/admin/admins", "/admin/audit"} {
		checkNoInjectedImage(t, owner, web.url+path)
	}
}

// selectOption picks the option with the given text in a <select>.
func selectOption(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			const s = document.querySelector(`+strconv.Quote(sel)+`);
			const o = [...s.options].find(o => o.text.trim() === `+strconv.Quote(text)+`);
			s.value = o.value;
			return o.value;
		})()`))
		return err
	})
}

// checkNoInjectedImage loads url and fails if the page shows xssName as
// anything but text.
func checkNoInjectedImage(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	do(t, ctx, "load "+url, chromedp.Navigate(url), chromedp.WaitVisible(css(`main`)))
	injected := get(t, ctx, "count injected images", chromedp.Evaluate[int](`document.querySelectorAll('img[src="x"]').length`))
	body := get(t, ctx, "read the page", chromedp.Text(css(`body`)))
	if injected != 0 {
		t.Errorf("%s: the admin's name became an <img> element", url)
	}
	if !strings.Contains(body, xssName) {
		t.Errorf("%s: the admin's name %q is not on the page as text", url, xssName)
	}
}
