package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// writeKeyEncryptionKey writes a key encryption key file into dir, as
// `openssl rand -hex 32 > file` would, and returns its path.
func writeKeyEncryptionKey(t *testing.T, dir string) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	path := filepath.Join(dir, "key-encryption-key")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// guestLogin logs a device in through the player API and returns the
// answer's status and body.
func guestLogin(t *testing.T, url, deviceID, secret, name string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"device_id": deviceID, "secret": secret, "display_name": name})
	resp, err := http.Post(url+"/api/v1/auth/guest", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("guest login answer: %v", err)
	}
	return resp.StatusCode, out
}

func TestBrowserOwnerFindsAPlayerAndBansThem(t *testing.T) {
	t.Parallel()
	db, key := newWebDatabase(t, "owner", "owner password 1")
	web := startWeb(t, db, key)

	// A player logs in from a device; their chosen name would run script if
	// a page took it for markup.
	const device, secret = "browser-test-device-1", "c2VjcmV0LW9mLXRoZS1kZXZpY2Ux"
	if status, out := guestLogin(t, web.url, device, secret, xssName); status != http.StatusOK {
		t.Fatalf("guest login: %d %v", status, out)
	}

	browser := newBrowser(t)
	owner := newBrowserContext(t, browser)
	login(t, owner, web.url, "owner", "owner password 1")
	do(t, owner, "enrol the authenticator",
		chromedp.WaitVisible(css(`form[action="/admin/mfa/enrol"] button`)),
		chromedp.Click(css(`form[action="/admin/mfa/enrol"] button`)),
		chromedp.WaitVisible(css(`#mfa-secret`)),
	)
	mfa := strings.TrimSpace(get(t, owner, "read the secret", chromedp.Text(css(`#mfa-secret`))))
	do(t, owner, "confirm enrolment",
		chromedp.SendKeys(css(`form[action="/admin/mfa/confirm"] input[name="code"]`), totpCode(t, mfa)),
		chromedp.Click(css(`form[action="/admin/mfa/confirm"] button`)),
		chromedp.WaitVisible(css(`#recovery-codes`)),
	)

	do(t, owner, "search for the device",
		chromedp.Navigate(web.url+"/admin"),
		chromedp.WaitVisible(css(`nav a[href="/admin/players"]`)),
		chromedp.Click(css(`nav a[href="/admin/players"]`)),
		chromedp.WaitVisible(css(`form[action="/admin/players"] input[name="q"]`)),
		chromedp.SendKeys(css(`form[action="/admin/players"] input[name="q"]`), device),
		chromedp.Click(css(`form[action="/admin/players"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//p[contains(., "1 found")]`)),
	)
	if loc := get(t, owner, "read the address", chromedp.Location()); !strings.HasSuffix(loc, "/admin/players?q="+device) {
		t.Errorf("the search's address is %q", loc)
	}
	do(t, owner, "open the player",
		chromedp.Click(css(`#player-results a[href^="/admin/players/"]`)),
		chromedp.WaitVisible(css(`form[action$="/bans"] input[name="reason"]`)),
	)
	playerPage := get(t, owner, "read the address", chromedp.Location())
	if body := get(t, owner, "read the profile", chromedp.Text(css(`main`))); !strings.Contains(body, device) {
		t.Errorf("the player page does not list the device %q:\n%s", device, body)
	}

	do(t, owner, "ban the player for a week",
		chromedp.SendKeys(css(`form[action$="/bans"] input[name="reason"]`), "cheating in ranked"),
		selectOption(`form[action$="/bans"] select[name="duration"]`, "7 days"),
		chromedp.Click(css(`form[action$="/bans"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//div[@class="notice"][contains(., "Ban added.")]`)),
	)
	row := get(t, owner, "read the bans table", chromedp.Text(css(`tr[id^="ban-"]`)))
	for _, want := range []string{"account", "cheating in ranked", "owner", "active"} {
		if !strings.Contains(row, want) {
			t.Errorf("the ban's row lacks %q: %q", want, row)
		}
	}

	// The player is refused, told until when.
	status, out := guestLogin(t, web.url, device, secret, "")
	if status != http.StatusForbidden || out["title"] != "banned" || out["until"] == nil {
		t.Errorf("login of the banned player: %d %v", status, out)
	}

	// The name was text on both pages (a dialog would have failed the test).
	checkNoInjectedImage(t, owner, web.url+"/admin/players?q="+device)
	checkNoInjectedImage(t, owner, playerPage)
}
