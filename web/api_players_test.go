package web_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
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
)

// adminPlayerJSON is the player object of the admin API.
type adminPlayerJSON struct {
	ID          string            `json:"id"`
	DisplayName string            `json:"display_name"`
	Email       string            `json:"email"`
	Guest       bool              `json:"guest"`
	MM          map[string]string `json:"mm"`
	DeletedAt   *time.Time        `json:"deleted_at"`
}

type adminBanJSON struct {
	ID           int64      `json:"id"`
	PlayerID     string     `json:"player_id"`
	Scope        string     `json:"scope"`
	DeviceID     string     `json:"device_id"`
	Reason       string     `json:"reason"`
	EndsAt       *time.Time `json:"ends_at"`
	LiftedAt     *time.Time `json:"lifted_at"`
	LiftedByName string     `json:"lifted_by_name"`
	Active       bool       `json:"active"`
}

type adminPlayerDetailJSON struct {
	Player  adminPlayerJSON `json:"player"`
	Devices []struct {
		ID string `json:"id"`
	} `json:"devices"`
	Logins []struct {
		Method   string `json:"method"`
		DeviceID string `json:"device_id"`
		Address  string `json:"address"`
	} `json:"logins"`
	Sessions []map[string]any `json:"sessions"`
	Bans     []adminBanJSON   `json:"bans"`
	Notes    []struct {
		Text      string `json:"text"`
		AdminName string `json:"admin_name"`
	} `json:"notes"`
}

// deviceLogin logs a device in through the service, creating its player.
func (e *testEnv) deviceLogin(deviceID, secret, name string) (*service.AuthResult, error) {
	return e.svc.GuestLogin(context.Background(), service.GuestLogin{DeviceID: deviceID, Secret: secret, DisplayName: name,
		Client: service.Client{Address: "198.51.100.9", UserAgent: "admin api test"}})
}

func (e *testEnv) mustDeviceLogin(deviceID, secret, name string) *service.AuthResult {
	e.t.Helper()
	res, err := e.deviceLogin(deviceID, secret, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func keyAuth(secret string) []string { return []string{"Authorization", "Bearer " + secret} }

func playersPath(id string) string { return "/api/admin/v1/players/" + url.PathEscape(id) }

func TestPlayerAdminAPISearchAndDetail(t *testing.T) {
	e := newEnv(t, nil)
	key, _ := e.apiKey("support tool", e.roles[tandem.RoleSupport])
	c := e.client()
	secret := "a-device-secret-of-enough-length-0001"
	res := e.mustDeviceLogin("ivy-phone", secret, "Ivy")
	ivy := res.Player
	other := e.mustDeviceLogin("jon-phone", "a-device-secret-of-enough-length-0002", "Jon").Player

	var found []adminPlayerJSON
	for _, c2 := range []struct {
		q    string
		want []string
	}{
		{"ivy-phone", []string{ivy.ID}},
		{ivy.ID, []string{ivy.ID}},
		{"o", []string{other.ID}},
		{"", []string{other.ID, ivy.ID}},
	} {
		r := e.do(c, "GET", "/api/admin/v1/players?q="+url.QueryEscape(c2.q), nil, keyAuth(key)...)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &found)
		var ids []string
		for _, p := range found {
			ids = append(ids, p.ID)
		}
		if diff := cmp.Diff(c2.want, ids); diff != "" {
			t.Errorf("search %q (-want +got):\n%s", c2.q, diff)
		}
	}
	r := e.do(c, "GET", "/api/admin/v1/players?limit=1", nil, keyAuth(key)...)
	wantStatus(t, r, http.StatusOK)
	if r.decode(t, &found); len(found) != 1 {
		t.Errorf("limit=1 answered %d players", len(found))
	}
	r = e.do(c, "GET", "/api/admin/v1/players?query=ivy&limit=0", nil, keyAuth(key)...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if diff := cmp.Diff([]string{"query", "limit"}, fieldNames(r.problem(t))); diff != "" {
		t.Errorf("refused parameters (-want +got):\n%s", diff)
	}

	r = e.do(c, "GET", playersPath(ivy.ID), nil, keyAuth(key)...)
	wantStatus(t, r, http.StatusOK)
	var d adminPlayerDetailJSON
	r.decode(t, &d)
	if d.Player.ID != ivy.ID || d.Player.DisplayName != "Ivy" || !d.Player.Guest || d.Player.MM == nil ||
		len(d.Devices) != 1 || d.Devices[0].ID != "ivy-phone" || len(d.Sessions) != 1 ||
		len(d.Logins) != 1 || d.Logins[0].Address != "198.51.100.9" || d.Logins[0].DeviceID != "ivy-phone" {
		t.Errorf("detail: %s", r.body)
	}
	// No secret and no hash of one leaves the server.
	stored := e.detailOf(ivy.ID)
	forbidden := []string{secret, res.AccessToken, res.RefreshToken, "hash", "secret"}
	for _, h := range [][]byte{stored.Devices[0].SecretHash, stored.Sessions[0].AccessHash, stored.Sessions[0].RefreshHash} {
		forbidden = append(forbidden, hex.EncodeToString(h), base64.StdEncoding.EncodeToString(h), base64.RawURLEncoding.EncodeToString(h))
	}
	for _, s := range forbidden {
		if strings.Contains(string(r.body), s) {
			t.Errorf("the detail holds %q: %s", s, r.body)
		}
	}

	wantStatus(t, e.do(c, "GET", playersPath("no-such-player"), nil, keyAuth(key)...), http.StatusNotFound)
}

func (e *testEnv) detailOf(id string) *service.PlayerDetail {
	e.t.Helper()
	d, err := e.svc.PlayerDetail(context.Background(), service.CLIActor("test"), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func TestAGameServerKeyWithPlayersWriteSetsMatchmakingProperties(t *testing.T) {
	e := newEnv(t, nil)
	key, _ := e.apiKey("game server", e.createRole("game server", tandem.PermPlayersWrite))
	c := e.client()
	p := e.mustDeviceLogin("kim-phone", "a-device-secret-of-enough-length-0003", "Kim").Player

	r := e.do(c, "PATCH", playersPath(p.ID), map[string]any{"mm": map[string]string{"skill": "1510", "region": "eu"}}, keyAuth(key)...)
	wantStatus(t, r, http.StatusOK)
	var got adminPlayerJSON
	r.decode(t, &got)
	if diff := cmp.Diff(map[string]string{"skill": "1510", "region": "eu"}, got.MM); diff != "" {
		t.Errorf("mm answered (-want +got):\n%s", diff)
	}
	if got.DisplayName != "Kim" {
		t.Errorf("display name %q changed without being sent", got.DisplayName)
	}
	if diff := cmp.Diff(map[string]string{"skill": "1510", "region": "eu"}, e.detailOf(p.ID).Player.MM); diff != "" {
		t.Errorf("mm stored (-want +got):\n%s", diff)
	}
	// The next token the player gets carries them.
	again := e.mustDeviceLogin("kim-phone", "a-device-secret-of-enough-length-0003", "")
	if again.Player.MM["skill"] != "1510" {
		t.Errorf("the player's next login sees mm %v", again.Player.MM)
	}

	r = e.do(c, "PATCH", playersPath(p.ID), map[string]any{"display_name": "Kim K"}, keyAuth(key)...)
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &got)
	if got.DisplayName != "Kim K" || got.MM["region"] != "eu" {
		t.Errorf("after a name change: %+v", got)
	}
	r = e.do(c, "PATCH", playersPath(p.ID), map[string]any{"mm": map[string]string{"Bad Key": "1"}}, keyAuth(key)...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if diff := cmp.Diff([]string{"mm.Bad Key"}, fieldNames(r.problem(t))); diff != "" {
		t.Errorf("refused fields (-want +got):\n%s", diff)
	}
	r = e.do(c, "PATCH", playersPath(p.ID), map[string]any{"mm": map[string]string{}}, keyAuth(key)...)
	wantStatus(t, r, http.StatusOK)
	var cleared adminPlayerJSON
	if r.decode(t, &cleared); len(cleared.MM) != 0 {
		t.Errorf("mm after {}: %v", cleared.MM)
	}

	// The key holds players:write only: reading and banning are refused.
	wantStatus(t, e.do(c, "GET", playersPath(p.ID), nil, keyAuth(key)...), http.StatusForbidden)
	wantStatus(t, e.do(c, "POST", playersPath(p.ID)+"/bans", map[string]any{"scope": "account", "reason": "x"}, keyAuth(key)...), http.StatusForbidden)
	// Each change is audited as the key's; the refused one is not a change.
	recs, err := e.svc.AuditLog(context.Background(), service.CLIActor("test"),
		tandem.AuditFilter{Action: "player.update", TargetID: p.ID, Result: tandem.AuditOK})
	if err != nil {
		t.Fatal(err)
	}
	var by []string
	for _, rec := range recs {
		by = append(by, string(rec.ActorKind)+" "+rec.ActorName)
	}
	if diff := cmp.Diff([]string{"apikey game server", "apikey game server", "apikey game server"}, by); diff != "" {
		t.Errorf("audited edits (-want +got):\n%s", diff)
	}
}

func TestAKeyThatMayOnlyBanLiftsBansOfThePathsPlayerOnly(t *testing.T) {
	e := newEnv(t, nil)
	key, _ := e.apiKey("ban tool", e.createRole("ban tool", tandem.PermPlayersBan))
	c := e.client()
	const secret = "a-device-secret-of-enough-length-0006"
	nia := e.mustDeviceLogin("nia-phone", secret, "Nia").Player
	oto := e.mustDeviceLogin("oto-phone", "a-device-secret-of-enough-length-0007", "Oto").Player

	r := e.do(c, "POST", playersPath(nia.ID)+"/bans", map[string]any{"scope": "account", "reason": "spam"}, keyAuth(key)...)
	wantStatus(t, r, http.StatusCreated)
	var ban adminBanJSON
	r.decode(t, &ban)
	// The key cannot read the player, and does not need to.
	wantStatus(t, e.do(c, "GET", playersPath(nia.ID), nil, keyAuth(key)...), http.StatusForbidden)

	// Through another player's path, or a path naming no player, the ban
	// is as unknown as one that does not exist.
	for _, p := range []string{
		fmt.Sprintf("%s/bans/%d", playersPath(oto.ID), ban.ID),
		fmt.Sprintf("%s/bans/%d", playersPath("not-a-player"), ban.ID),
		fmt.Sprintf("%s/bans/%d", playersPath(nia.ID), ban.ID+1000),
	} {
		r := e.do(c, "DELETE", p, nil, keyAuth(key)...)
		wantStatus(t, r, http.StatusNotFound)
		if prob := r.problem(t); prob.Title != "not_found" {
			t.Errorf("DELETE %s: title %q, want not_found", p, prob.Title)
		}
	}
	if _, err := e.deviceLogin("nia-phone", secret, ""); tandem.ErrorCodeOf(err) != tandem.EBanned {
		t.Fatalf("login after the refused lifts: %v, want still banned", err)
	}

	r = e.do(c, "DELETE", fmt.Sprintf("%s/bans/%d", playersPath(nia.ID), ban.ID), nil, keyAuth(key)...)
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &ban)
	if ban.Active || ban.LiftedAt == nil || ban.LiftedByName != "ban tool" || ban.PlayerID != nia.ID {
		t.Errorf("lifted ban answered: %s", r.body)
	}
	e.mustDeviceLogin("nia-phone", secret, "")
}

func TestPlayerAdminAPIBansLogsOutAndNotes(t *testing.T) {
	e := newEnv(t, nil)
	key, _ := e.apiKey("support tool", e.roles[tandem.RoleSupport])
	viewer, _ := e.apiKey("dashboard", e.roles[tandem.RoleViewer])
	c := e.client()
	const secret = "a-device-secret-of-enough-length-0004"
	lee := e.mustDeviceLogin("lee-phone", secret, "Lee").Player
	e.mustDeviceLogin("lee-phone", secret, "")
	other := e.mustDeviceLogin("max-phone", "a-device-secret-of-enough-length-0005", "Max").Player
	path := playersPath(lee.ID)

	r := e.do(c, "POST", path+"/bans", map[string]any{"scope": "planet", "reason": ""}, keyAuth(key)...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if diff := cmp.Diff([]string{"scope", "reason"}, fieldNames(r.problem(t))); diff != "" {
		t.Errorf("refused fields (-want +got):\n%s", diff)
	}
	wantStatus(t, e.do(c, "POST", path+"/bans", map[string]any{"scope": "account", "reason": "x"}, keyAuth(viewer)...), http.StatusForbidden)

	end := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	r = e.do(c, "POST", path+"/bans", map[string]any{"scope": "device", "device_id": "lee-phone", "reason": "botting", "ends_at": end}, keyAuth(key)...)
	wantStatus(t, r, http.StatusCreated)
	var ban adminBanJSON
	r.decode(t, &ban)
	if ban.PlayerID != lee.ID || ban.Scope != "device" || ban.DeviceID != "lee-phone" || ban.Reason != "botting" ||
		ban.EndsAt == nil || !ban.EndsAt.Equal(end) || !ban.Active {
		t.Errorf("ban answered: %s", r.body)
	}
	if loc := r.Header.Get("Location"); loc != fmt.Sprintf("%s/bans/%d", path, ban.ID) {
		t.Errorf("Location %q", loc)
	}
	if _, err := e.deviceLogin("lee-phone", secret, ""); tandem.ErrorCodeOf(err) != tandem.EBanned {
		t.Fatalf("login from the banned device: %v, want banned", err)
	}
	var d adminPlayerDetailJSON
	e.do(c, "GET", path, nil, keyAuth(key)...).decode(t, &d)
	// The sessions stay: every use of them is refused while the ban lasts.
	if len(d.Bans) != 1 || d.Bans[0].DeviceID != "lee-phone" || !d.Bans[0].Active || len(d.Sessions) != 2 {
		t.Errorf("detail after the ban: %+v", d)
	}

	// A ban is lifted through its own player's path only.
	banPath := fmt.Sprintf("%s/bans/%d", path, ban.ID)
	wantStatus(t, e.do(c, "DELETE", fmt.Sprintf("%s/bans/%d", playersPath(other.ID), ban.ID), nil, keyAuth(key)...), http.StatusNotFound)
	wantStatus(t, e.do(c, "DELETE", path+"/bans/x", nil, keyAuth(key)...), http.StatusUnprocessableEntity)
	wantStatus(t, e.do(c, "DELETE", banPath, nil, keyAuth(viewer)...), http.StatusForbidden)
	r = e.do(c, "DELETE", banPath, nil, keyAuth(key)...)
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &ban)
	// The answer names no device: that needs players:read, lifting only players:ban.
	if ban.Active || ban.LiftedAt == nil || ban.LiftedByName != "support tool" || ban.DeviceID != "" {
		t.Errorf("lifted ban answered: %s", r.body)
	}
	wantStatus(t, e.do(c, "DELETE", banPath, nil, keyAuth(key)...), http.StatusConflict)
	e.mustDeviceLogin("lee-phone", secret, "")

	// An account ban without an end is permanent.
	r = e.do(c, "POST", path+"/bans", map[string]any{"scope": "account", "reason": "fraud"}, keyAuth(key)...)
	wantStatus(t, r, http.StatusCreated)
	if r.decode(t, &ban); ban.EndsAt != nil || ban.DeviceID != "" {
		t.Errorf("permanent ban answered: %s", r.body)
	}
	wantStatus(t, e.do(c, "DELETE", fmt.Sprintf("%s/bans/%d", path, ban.ID), nil, keyAuth(key)...), http.StatusOK)

	// Log out everywhere says how many sessions ended: bans ended none,
	// so every login of this test left one.
	sessions := len(e.detailOf(lee.ID).Sessions)
	if sessions != 3 {
		t.Errorf("%d sessions before logging out everywhere, want 3", sessions)
	}
	r = e.do(c, "POST", path+"/logout", nil, keyAuth(key)...)
	wantStatus(t, r, http.StatusOK)
	var out struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	if r.decode(t, &out); out.SessionsEnded != sessions {
		t.Errorf("sessions_ended = %d, want %d: %s", out.SessionsEnded, sessions, r.body)
	}
	if n := len(e.detailOf(lee.ID).Sessions); n != 0 {
		t.Errorf("%d sessions left", n)
	}

	r = e.do(c, "POST", path+"/notes", map[string]any{"text": "called support twice"}, keyAuth(key)...)
	wantStatus(t, r, http.StatusCreated)
	wantStatus(t, e.do(c, "POST", path+"/notes", map[string]any{"text": ""}, keyAuth(key)...), http.StatusUnprocessableEntity)
	wantStatus(t, e.do(c, "POST", path+"/notes", map[string]any{"text": "x"}, keyAuth(viewer)...), http.StatusForbidden)
	e.do(c, "GET", path, nil, keyAuth(viewer)...).decode(t, &d)
	if len(d.Notes) != 1 || d.Notes[0].Text != "called support twice" || d.Notes[0].AdminName != "support tool" {
		t.Errorf("notes: %+v", d.Notes)
	}
	var actions []string
	recs, err := e.svc.AuditLog(context.Background(), service.CLIActor("test"), tandem.AuditFilter{Action: "player.", Result: tandem.AuditOK})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if rec.Action != "player.read" && rec.Action != "player.search" {
			actions = append(actions, rec.Action)
		}
	}
	slices.Reverse(actions)
	want := []string{"player.ban", "player.unban", "player.ban", "player.unban", "player.logout_all", "player.note"}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("audited actions (-want +got):\n%s", diff)
	}
}
