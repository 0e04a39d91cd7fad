package admin_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// guest logs a new device in as a player would, creating its account.
func (e *testEnv) guest(deviceID, name string) *service.AuthResult {
	e.t.Helper()
	res, err := e.guestLogin(deviceID, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// deviceSecret is the secret a test device logs in with: always the same
// for one device id, as a real client keeps it.
func deviceSecret(deviceID string) string {
	return "secret-of-" + hex.EncodeToString([]byte(deviceID)) + "-0123456789abcdef"
}

func (e *testEnv) guestLogin(deviceID, name string) (*service.AuthResult, error) {
	return e.svc.GuestLogin(context.Background(), service.GuestLogin{DeviceID: deviceID, Secret: deviceSecret(deviceID),
		DisplayName: name, Client: service.Client{Address: "203.0.113.7", UserAgent: "test client/1.0"}})
}

// register creates an account with an email as a player would.
func (e *testEnv) register(email, name string) *service.AuthResult {
	e.t.Helper()
	res, err := e.svc.Register(context.Background(), service.Registration{Email: email, Password: "a player's password",
		DisplayName: name, Client: service.Client{Address: "203.0.113.8", UserAgent: "test client/1.0"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *testEnv) detail(id string) *service.PlayerDetail {
	e.t.Helper()
	d, err := e.svc.PlayerDetail(context.Background(), service.CLIActor("test"), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func playerURL(id string) string { return "/admin/players/" + url.PathEscape(id) }

var resultLinkRE = regexp.MustCompile(`<a href="/admin/players/([^"?/]+)">`)

// searchResults returns the ids of the players a search page lists.
func searchResults(t *testing.T, r response) []string {
	t.Helper()
	var ids []string
	for _, m := range resultLinkRE.FindAllStringSubmatch(r.body, -1) {
		id, err := url.PathUnescape(m[1])
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestPlayerSearchFindsByIDEmailDeviceAndName(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("sam", tandem.RoleSupport)
	b := e.browser()
	b.login("sam", testPassword)

	alice := e.guest("alice-phone", "Alice Anders").Player
	bob := e.register("bob@example.com", "Bob").Player
	carol := e.guest("carol-tablet", "Carol Anderson").Player

	for _, c := range []struct {
		q    string
		want []string
	}{
		{alice.ID, []string{alice.ID}},
		{"bob@example.com", []string{bob.ID}},
		{"BOB@example.com", []string{bob.ID}},
		{"carol-tablet", []string{carol.ID}},
		{"Ander", []string{carol.ID, alice.ID}}, // newest first
		{"nobody", nil},
		{"", []string{carol.ID, bob.ID, alice.ID}},
	} {
		r := b.get("/admin/players?q=" + url.QueryEscape(c.q))
		wantStatus(t, r, http.StatusOK)
		if diff := cmp.Diff(c.want, searchResults(t, r)); diff != "" {
			t.Errorf("search %q (-want +got):\n%s", c.q, diff)
		}
	}
	r := b.get("/admin/players?q=bob%40example.com")
	wantContains(t, r, "<td>bob@example.com</td>", "3 accounts in all")

	// htmx swaps the results alone and puts the search in the address.
	r = b.get("/admin/players?q=Ander", "HX-Request", "true", "HX-Target", "player-results")
	wantStatus(t, r, http.StatusOK)
	wantLacks(t, r, "<h1>", "<form")
	if got := r.Header.Get("HX-Push-Url"); got != "/admin/players?q=Ander" {
		t.Errorf("HX-Push-Url = %q", got)
	}
	if diff := cmp.Diff([]string{carol.ID, alice.ID}, searchResults(t, r)); diff != "" {
		t.Errorf("htmx search (-want +got):\n%s", diff)
	}
	// A search the service refuses is shown next to the box.
	r = b.get("/admin/players?q=" + strings.Repeat("x", 300))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="search-q-error"`)
}

func TestPlayerTextIsOnlyTextOnTheSearchAndPlayerPages(t *testing.T) {
	const xss = `<script>alert(1)</script>`
	const escaped = `&lt;script&gt;alert(1)&lt;/script&gt;`
	e := newEnv(t)
	b, _ := e.owner("olga")
	res := e.guest("xss-device", xss)
	p := res.Player
	actor, err := e.svc.AuthenticatePlayer(context.Background(), res.AccessToken, service.Client{Address: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	avatar := `https://example.com/a.png?"><img src=x onerror=alert(2)>`
	if _, err := e.svc.UpdateProfile(context.Background(), actor, p.ID, service.ProfileUpdate{AvatarURL: &avatar}); err != nil {
		t.Fatal(err)
	}
	note := `<img src=x onerror=alert(3)>`
	if _, err := e.svc.AddPlayerNote(context.Background(), service.CLIActor("test"), p.ID, note); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{"/admin/players", "/admin/players?q=" + url.QueryEscape("<script>"), playerURL(p.ID)} {
		r := b.get(path) // do fails on any inline script
		wantStatus(t, r, http.StatusOK)
		wantLacks(t, r, xss)
		wantContains(t, r, escaped)
		for _, tg := range tags(r.body) {
			if tg.name == "img" {
				t.Errorf("GET %s: an <img> element: %v", path, tg.attrs)
			}
			for _, a := range []string{"href", "src"} {
				if strings.Contains(tg.attrs[a], "javascript:") {
					t.Errorf("GET %s: <%s %s=%q>", path, tg.name, a, tg.attrs[a])
				}
			}
		}
	}
	r := b.get(playerURL(p.ID))
	wantContains(t, r, "<title>Player "+escaped+" · Tandem admin</title>", "<code>https://example.com/a.png?&#34;&gt;&lt;img src=x onerror=alert(2)&gt;</code>",
		"&lt;img src=x onerror=alert(3)&gt;")
}

func TestBanAndUnbanThroughTheForms(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("sam", tandem.RoleSupport)
	b := e.browser()
	b.login("sam", testPassword)
	p := e.guest("dana-phone", "Dana").Player
	e.guest("dana-phone", "") // a second session
	other := e.guest("erin-phone", "Erin").Player
	path := playerURL(p.ID)

	// What is wrong with the form is shown next to its fields.
	r := b.post(path+"/bans", url.Values{"scope": {"account"}, "reason": {""}, "duration": {"custom"}}, htmx...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `<p class="field-error" id="ban-ends_at-error">give the end time, or choose a length</p>`)
	r = b.post(path+"/bans", url.Values{"scope": {"account"}, "reason": {""}, "duration": {"24h"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="ban-reason-error"`, `<option value="24h" selected>`)
	r = b.post(path+"/bans", url.Values{"scope": {"device"}, "device_id": {"erin-phone"}, "reason": {"x"}, "duration": {"1h"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `<p class="field-error" id="ban-device_id-error">is not a device of this player</p>`)

	r = b.post(path+"/bans", url.Values{"scope": {"account"}, "reason": {"cheating <b>badly</b>"}, "duration": {"7d"}})
	wantStatus(t, r, http.StatusSeeOther)
	if to := r.Header.Get("Location"); to != path+"?done=player-banned" {
		t.Fatalf("ban went to %q", to)
	}
	r = b.get(path + "?done=player-banned")
	// The sessions stay (every use of them is refused while the ban lasts).
	wantContains(t, r, "Ban added.", "cheating &lt;b&gt;badly&lt;/b&gt;", `<span class="badge badge-bad">active</span>`, "2 open", ">sam<")
	if _, err := e.guestLogin("dana-phone", ""); tandem.ErrorCodeOf(err) != tandem.EBanned {
		t.Fatalf("login of a banned player: %v, want banned", err)
	}
	wantContains(t, b.get("/admin/players?q=dana-phone"), `<span class="badge badge-bad">banned</span>`)
	d := e.detail(p.ID)
	if len(d.Bans) != 1 || len(d.Sessions) != 2 {
		t.Fatalf("after the ban: %d bans, %d sessions", len(d.Bans), len(d.Sessions))
	}
	ban := d.Bans[0]
	lift := path + "/bans/" + strconv.FormatInt(ban.ID, 10) + "/lift"

	// Another player's page cannot lift it.
	wantStatus(t, b.post(playerURL(other.ID)+"/bans/"+strconv.FormatInt(ban.ID, 10)+"/lift", nil), http.StatusNotFound)

	r = b.post(lift, nil, htmx...)
	wantStatus(t, r, http.StatusNoContent)
	if to := r.Header.Get("HX-Redirect"); to != path+"?done=ban-lifted" {
		t.Fatalf("unban went to %q", to)
	}
	r = b.get(path)
	wantContains(t, r, `<span class="badge">lifted</span>`, " by sam")
	wantLacks(t, r, `action="`+lift+`"`)
	e.guest("dana-phone", "")
	// Lifting it again is refused next to its row.
	r = b.post(lift, nil)
	wantStatus(t, r, http.StatusConflict)
	wantContains(t, r, "the ban was lifted already")

	// A device ban names the device, and stops that device only.
	r = b.post(path+"/bans", url.Values{"scope": {"device"}, "device_id": {"dana-phone"}, "reason": {"shared cheat device"}, "duration": {"permanent"}})
	wantStatus(t, r, http.StatusSeeOther)
	r = b.get(path)
	wantContains(t, r, "device <code>dana-phone</code>", "<td>permanent</td>")
	if _, err := e.guestLogin("dana-phone", ""); tandem.ErrorCodeOf(err) != tandem.EBanned {
		t.Fatalf("login from a banned device: %v, want banned", err)
	}
	wantContains(t, b.get("/admin/players?q=dana-phone"), `<span class="badge badge-warn">device banned</span>`)

	// A deleted account is marked so in the search.
	erin := e.guest("erin-phone", "")
	actor, err := e.svc.AuthenticatePlayer(context.Background(), erin.AccessToken, service.Client{Address: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteAccount(context.Background(), actor, other.ID); err != nil {
		t.Fatal(err)
	}
	r = b.get("/admin/players?q=" + other.ID)
	wantContains(t, r, `<span class="badge">deleted</span>`)
	r = b.get(playerURL(other.ID))
	wantContains(t, r, "This account was deleted on")
	wantLacks(t, r, `id="edit-heading"`, `action="`+playerURL(other.ID)+`/notes"`)

	recs, err := e.svc.AuditLog(context.Background(), service.CLIActor("test"), tandem.AuditFilter{Action: "player.", TargetID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, rec := range recs {
		if rec.Result == tandem.AuditOK && rec.ActorName == "sam" && rec.Action != "player.read" {
			actions = append(actions, rec.Action)
		}
	}
	if diff := cmp.Diff([]string{"player.ban", "player.ban"}, actions); diff != "" {
		t.Errorf("sam's audited changes of the player (-want +got):\n%s", diff)
	}
}

func TestAViewerSeesNoEnabledControlsAndIsRefusedTheirPosts(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("vera", tandem.RoleViewer)
	b := e.browser()
	b.login("vera", testPassword)
	p := e.guest("fay-phone", "Fay").Player
	if _, err := e.svc.BanPlayer(context.Background(), service.CLIActor("test"),
		service.BanRequest{PlayerID: p.ID, Scope: tandem.BanAccount, Reason: "spam"}); err != nil {
		t.Fatal(err)
	}
	path := playerURL(p.ID)
	ban := e.detail(p.ID).Bans[0]

	r := b.get(path)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Banning needs the <code>players:ban</code> permission.", "Editing needs the <code>players:write</code> permission.")
	forms := enabledControls(r.body, path)
	if len(forms) != 0 {
		t.Errorf("a viewer's player page has enabled controls: %v", forms)
	}

	for _, c := range []struct {
		path string
		form url.Values
		perm string
	}{
		{path, url.Values{"display_name": {"Hacked"}, "mm": {"skill=9999"}}, "players:write"},
		{path + "/bans", url.Values{"scope": {"account"}, "reason": {"x"}, "duration": {"1h"}}, "players:ban"},
		{path + "/bans/" + strconv.FormatInt(ban.ID, 10) + "/lift", nil, "players:ban"},
		{path + "/logout", nil, "players:ban"},
		{path + "/notes", url.Values{"text": {"hello"}}, "players:write"},
	} {
		r := b.post(c.path, c.form)
		wantStatus(t, r, http.StatusForbidden)
		wantContains(t, r, "this needs the "+c.perm+" permission")
	}
	d := e.detail(p.ID)
	if d.Player.DisplayName != "Fay" || len(d.Player.MM) != 0 || len(d.Notes) != 0 || len(d.Bans) != 1 || !d.Bans[0].LiftedAt.IsZero() {
		t.Errorf("the viewer changed the player: %+v, %d notes, bans %+v", d.Player, len(d.Notes), d.Bans[0])
	}
}

func TestAnAdminWhoMayOnlyBanUnbansFromTheForm(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateRole(ctx, service.CLIActor("test"),
		service.RoleInput{Name: "banner", Permissions: []tandem.Permission{tandem.PermPlayersBan}}); err != nil {
		t.Fatal(err)
	}
	e.loadRoles()
	e.createAdmin("bo", "banner")
	b := e.browser()
	b.login("bo", testPassword)
	p := e.guest("jan-phone", "Jan").Player
	other := e.guest("kai-phone", "Kai").Player
	ban, err := e.svc.BanPlayer(ctx, service.CLIActor("test"), service.BanRequest{PlayerID: p.ID, Scope: tandem.BanAccount, Reason: "spam"})
	if err != nil {
		t.Fatal(err)
	}
	lift := "/bans/" + strconv.FormatInt(ban.ID, 10) + "/lift"

	wantStatus(t, b.get(playerURL(p.ID)), http.StatusForbidden)
	wantStatus(t, b.post(playerURL(other.ID)+lift, nil), http.StatusNotFound)
	if d := e.detail(p.ID); !d.Bans[0].LiftedAt.IsZero() {
		t.Fatal("the ban was lifted through another player's page")
	}
	r := b.post(playerURL(p.ID)+lift, nil)
	wantStatus(t, r, http.StatusSeeOther)
	if d := e.detail(p.ID); d.Bans[0].LiftedAt.IsZero() || d.Bans[0].LiftedByName != "bo" {
		t.Errorf("after bo's unban: %+v", d.Bans[0])
	}
}

var formRE = regexp.MustCompile(`(?s)<form\b[^>]*>.*?</form>`)

// enabledControls lists the controls of the page's forms posting under
// path that are not disabled, by themselves or by a disabled fieldset
// around them.
func enabledControls(body, path string) []string {
	var out []string
	for _, f := range formRE.FindAllString(body, -1) {
		ts := tags(f)
		if ts[0].attrs["method"] != "post" || !strings.HasPrefix(ts[0].attrs["action"], path) {
			continue
		}
		fenced := false
		for _, tg := range ts {
			_, disabled := tg.attrs["disabled"]
			switch tg.name {
			case "fieldset":
				fenced = fenced || disabled
			case "button", "input", "select", "textarea":
				if !disabled && !fenced && tg.attrs["type"] != "hidden" {
					out = append(out, ts[0].attrs["action"]+" "+tg.name+" "+tg.attrs["name"])
				}
			}
		}
	}
	return out
}

func TestEditPlayerSetsNameAndMatchmakingProperties(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("sam", tandem.RoleSupport)
	b := e.browser()
	b.login("sam", testPassword)
	p := e.guest("gil-phone", "Gil").Player
	path := playerURL(p.ID)

	r := b.get(path)
	wantStatus(t, r, http.StatusOK)
	if n := len(enabledControls(r.body, path)); n == 0 {
		t.Error("support's player page has no enabled controls")
	}

	r = b.post(path, url.Values{"display_name": {"Gil the Great"}, "mm": {"skill = 1500\r\n\r\nregion=eu\nplatform=pc"}})
	wantStatus(t, r, http.StatusSeeOther)
	d := e.detail(p.ID)
	if diff := cmp.Diff(map[string]string{"skill": "1500", "region": "eu", "platform": "pc"}, d.Player.MM); diff != "" {
		t.Errorf("mm (-want +got):\n%s", diff)
	}
	if d.Player.DisplayName != "Gil the Great" {
		t.Errorf("display name %q", d.Player.DisplayName)
	}
	r = b.get(path + "?done=player-saved")
	wantContains(t, r, "Player saved.", "<code>region=eu</code>",
		">platform=pc\nregion=eu\nskill=1500\n</textarea>", `value="Gil the Great"`)

	// Lines that are not key=value, and keys the service refuses, are
	// shown on the field with what was typed kept.
	for _, c := range []struct{ mm, msg string }{
		{"skill", "line 1: write each property as key=value"},
		{"skill=1\nskill=2", "line 2: skill is set twice"},
		{"Skill=1", "Skill: a property name is 1 to 32 characters: a-z first, then a-z 0-9 _ . -"},
	} {
		r = b.post(path, url.Values{"display_name": {"Gil"}, "mm": {c.mm}}, htmx...)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r, `<p class="field-error" id="edit-mm-error">`+c.msg+`</p>`, ">"+c.mm+"</textarea>")
	}
	// An empty box removes every property.
	wantStatus(t, b.post(path, url.Values{"display_name": {"Gil"}, "mm": {""}}), http.StatusSeeOther)
	if mm := e.detail(p.ID).Player.MM; len(mm) != 0 {
		t.Errorf("mm after emptying the box: %v", mm)
	}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+_was)" value="([^"]*)">`)

// editForm returns the edit form as the page draws it: the fields the
// admin sees, and the hidden values the page was drawn with.
func editForm(t *testing.T, r response, name, mm string) url.Values {
	t.Helper()
	form := url.Values{"display_name": {name}, "mm": {mm}}
	for _, m := range hiddenRE.FindAllStringSubmatch(r.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if !form.Has("display_name_was") || !form.Has("mm_was") {
		t.Fatalf("the edit form lacks display_name_was or mm_was:\n%s", r.body)
	}
	return form
}

func TestSavingTheEditFormChangesOnlyWhatTheAdminChanged(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("sam", tandem.RoleSupport)
	b := e.browser()
	b.login("sam", testPassword)
	ctx := context.Background()

	// A guest who chose no name can be given properties: the empty name
	// is not sent, so it is not refused as missing.
	nameless := e.guest("hal-phone", "").Player
	path := playerURL(nameless.ID)
	r := b.get(path)
	wantStatus(t, r, http.StatusOK)
	wantStatus(t, b.post(path, editForm(t, r, "", "skill=1200")), http.StatusSeeOther)
	if p := e.detail(nameless.ID).Player; p.DisplayName != "" || p.MM["skill"] != "1200" {
		t.Errorf("nameless guest after saving properties: name %q, mm %v", p.DisplayName, p.MM)
	}

	// The player renames themselves while the page is open: saving the
	// properties keeps the new name.
	login := e.guest("ivy-phone", "Ivy")
	path = playerURL(login.Player.ID)
	page := b.get(path)
	wantStatus(t, page, http.StatusOK)
	me, err := e.svc.AuthenticatePlayer(ctx, login.AccessToken, service.Client{Address: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	renamed := "Ivy Prime"
	if _, err := e.svc.UpdateProfile(ctx, me, me.PlayerID, service.ProfileUpdate{DisplayName: &renamed}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, b.post(path, editForm(t, page, "Ivy", "region=eu")), http.StatusSeeOther)
	p := e.detail(login.Player.ID).Player
	if diff := cmp.Diff(map[string]string{"region": "eu"}, p.MM); diff != "" || p.DisplayName != renamed {
		t.Errorf("after saving properties: name %q, want %q; mm (-want +got):\n%s", p.DisplayName, renamed, diff)
	}

	// The game sets a property while the page is open: renaming keeps it.
	page = b.get(path)
	if _, err := e.svc.EditPlayer(ctx, service.CLIActor("game"), p.ID,
		service.PlayerEdit{MM: map[string]string{"region": "eu", "skill": "1700"}}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, b.post(path, editForm(t, page, "Ivy the Admin's Pick", "region=eu\n")), http.StatusSeeOther)
	p = e.detail(login.Player.ID).Player
	if diff := cmp.Diff(map[string]string{"region": "eu", "skill": "1700"}, p.MM); diff != "" || p.DisplayName != "Ivy the Admin's Pick" {
		t.Errorf("after renaming: name %q; mm (-want +got):\n%s", p.DisplayName, diff)
	}

	// A form shown again after an error keeps what it was first drawn
	// with, so the retry still compares against that.
	page = b.get(path)
	r = b.post(path, editForm(t, page, "Ivy the Admin's Pick", "Bad Key=1"), htmx...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	renamed = "Ivy Again"
	if _, err := e.svc.UpdateProfile(ctx, me, me.PlayerID, service.ProfileUpdate{DisplayName: &renamed}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, b.post(path, editForm(t, r, "Ivy the Admin's Pick", "region=us")), http.StatusSeeOther)
	p = e.detail(login.Player.ID).Player
	if p.DisplayName != renamed || p.MM["region"] != "us" {
		t.Errorf("after a retry: name %q, mm %v", p.DisplayName, p.MM)
	}
}

func TestLogOutEverywhereAndNotes(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("sam", tandem.RoleSupport)
	b := e.browser()
	b.login("sam", testPassword)
	first := e.guest("hal-phone", "Hal")
	e.guest("hal-phone", "")
	path := playerURL(first.Player.ID)

	wantContains(t, b.get(path), "2 open sessions")
	r := b.post(path+"/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, b.get(r.Header.Get("Location")), "Every session of the player has ended.", "0 open sessions")
	if _, err := e.svc.Refresh(context.Background(), first.RefreshToken, service.Client{Address: "203.0.113.7"}); err == nil {
		t.Error("a refresh token of a logged-out session still works")
	}

	r = b.post(path+"/notes", url.Values{"text": {""}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="note-text-error"`)
	r = b.post(path+"/notes", url.Values{"text": {"asked about a refund\nsecond line"}})
	wantStatus(t, r, http.StatusSeeOther)
	wantContains(t, b.get(path), `<p class="note-text">asked about a refund`+"\n"+`second line</p>`, `<span class="name">sam</span>`)
}

func TestAnUnknownPlayerIsNotFound(t *testing.T) {
	e := newEnv(t)
	e.createAdmin("sam", tandem.RoleSupport)
	b := e.browser()
	b.login("sam", testPassword)
	r := b.get(playerURL("no-such-player-" + randomHex(t)))
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r, "<h1>Not found</h1>")
}
