package web_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/token"
	"github.com/tandemhq/tandem/web"
)

// checkAuthResult checks what every login-type answer holds.
func checkAuthResult(t *testing.T, e *testEnv, res authResult) {
	t.Helper()
	now := e.clock.Now()
	switch {
	case res.PlayerID == "" || res.SessionID == "":
		t.Errorf("no player or session id: %+v", res)
	case !strings.HasPrefix(res.AccessToken, "tpa_") || !strings.HasPrefix(res.RefreshToken, "tpr_"):
		t.Errorf("access token %q / refresh token %q lack their prefixes", res.AccessToken, res.RefreshToken)
	case !strings.HasPrefix(res.RealtimeToken, "eyJ"):
		t.Errorf("realtime token %q is not a JWT", res.RealtimeToken)
	case !res.AccessExpiresAt.After(now) || !res.RefreshExpiresAt.After(res.AccessExpiresAt):
		t.Errorf("access expires %v, refresh %v: want future, refresh later", res.AccessExpiresAt, res.RefreshExpiresAt)
	case !res.RealtimeExpiresAt.After(now) || res.RealtimeExpiresAt.After(now.Add(tandem.MaxTokenLifetime+time.Second)):
		t.Errorf("realtime token expires %v, want within %s of %v", res.RealtimeExpiresAt, tandem.MaxTokenLifetime, now)
	case res.RealtimeURL != testRealtimeURL:
		t.Errorf("realtime_url %q, want %q", res.RealtimeURL, testRealtimeURL)
	}
}

func TestPlayerAPIEndToEnd(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		e := newPlayerEnv(t, b, nil, nil)
		c := e.client()
		const password = "a long enough password"

		// Guest login: the first login of a device creates the account.
		secret := newSecret()
		ann := e.guestLogin("ann-phone", secret, "Ann")
		checkAuthResult(t, e, ann)
		if !ann.Created {
			t.Error("the first guest login of a device did not say created")
		}
		again := e.guestLogin("ann-phone", secret, "")
		if again.Created || again.PlayerID != ann.PlayerID || again.SessionID == ann.SessionID {
			t.Errorf("second guest login: created %v, player %s (want %s), session %s (want a new one)",
				again.Created, again.PlayerID, ann.PlayerID, again.SessionID)
		}
		r := e.do(c, "POST", "/api/v1/auth/guest", map[string]string{"device_id": "ann-phone", "secret": newSecret()})
		wantStatus(t, r, http.StatusUnauthorized)
		r = e.do(c, "POST", "/api/v1/auth/guest", `{"device_id":"x","secret":"`+newSecret()+`","admin":true}`)
		wantStatus(t, r, http.StatusUnprocessableEntity)

		// Register and log in with an email.
		r = e.do(c, "POST", "/api/v1/auth/register", map[string]string{"email": "Bob@Example.com", "password": password, "display_name": "Bob"})
		wantStatus(t, r, http.StatusCreated)
		var bob authResult
		r.decode(t, &bob)
		checkAuthResult(t, e, bob)
		if !bob.Created || r.Header.Get("Location") != "/api/v1/players/"+bob.PlayerID {
			t.Errorf("register: created %v, Location %q", bob.Created, r.Header.Get("Location"))
		}
		r = e.do(c, "POST", "/api/v1/auth/login", map[string]string{"email": "bob@example.com", "password": password})
		wantStatus(t, r, http.StatusOK)
		var bobLogin authResult
		r.decode(t, &bobLogin)
		checkAuthResult(t, e, bobLogin)
		if bobLogin.Created || bobLogin.PlayerID != bob.PlayerID {
			t.Errorf("login: created %v, player %s, want false and %s", bobLogin.Created, bobLogin.PlayerID, bob.PlayerID)
		}
		r = e.do(c, "POST", "/api/v1/auth/login", map[string]string{"email": "bob@example.com", "password": "not the password"})
		wantStatus(t, r, http.StatusUnauthorized)

		// Refresh rotates every token; a used refresh token revokes the session.
		r = e.do(c, "POST", "/api/v1/auth/refresh", map[string]string{"refresh_token": bobLogin.RefreshToken})
		wantStatus(t, r, http.StatusOK)
		var rotated authResult
		r.decode(t, &rotated)
		checkAuthResult(t, e, rotated)
		if rotated.SessionID != bobLogin.SessionID || rotated.RefreshToken == bobLogin.RefreshToken || rotated.AccessToken == bobLogin.AccessToken {
			t.Errorf("refresh: session %s (want %s) with new tokens; got the same tokens back", rotated.SessionID, bobLogin.SessionID)
		}
		wantStatus(t, e.do(c, "GET", "/api/v1/players/"+bob.PlayerID, nil, bearer(rotated.AccessToken)...), http.StatusOK)
		wantStatus(t, e.do(c, "GET", "/api/v1/players/"+bob.PlayerID, nil, bearer(bobLogin.AccessToken)...), http.StatusUnauthorized)
		// Replayed after the retry leeway (a client whose answer was lost
		// may retry within 30 s).
		e.clock.Advance(31 * time.Second)
		r = e.do(c, "POST", "/api/v1/auth/refresh", map[string]string{"refresh_token": bobLogin.RefreshToken})
		wantStatus(t, r, http.StatusUnauthorized)
		r = e.do(c, "POST", "/api/v1/auth/refresh", map[string]string{"refresh_token": rotated.RefreshToken})
		wantStatus(t, r, http.StatusUnauthorized)
		wantStatus(t, e.do(c, "GET", "/api/v1/players/"+bob.PlayerID, nil, bearer(rotated.AccessToken)...), http.StatusUnauthorized)
		// Bob's other session (the registration's) is another family.
		wantStatus(t, e.do(c, "GET", "/api/v1/players/"+bob.PlayerID, nil, bearer(bob.AccessToken)...), http.StatusOK)

		// Profile.
		me := "/api/v1/players/" + ann.PlayerID
		auth := bearer(again.AccessToken)
		r = e.do(c, "GET", me, nil, auth...)
		wantStatus(t, r, http.StatusOK)
		var p profile
		r.decode(t, &p)
		want := profile{ID: ann.PlayerID, DisplayName: "Ann", Guest: true, MM: map[string]string{}, CreatedAt: p.CreatedAt}
		if diff := cmp.Diff(want, p); diff != "" || p.CreatedAt.IsZero() {
			t.Errorf("profile (-want +got):\n%s", diff)
		}
		r = e.do(c, "PATCH", me, map[string]string{"display_name": "Annie", "locale": "pt-BR", "avatar_url": "https://cdn.example.com/a.png"}, auth...)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &p)
		want.DisplayName, want.Locale, want.AvatarURL = "Annie", "pt-BR", "https://cdn.example.com/a.png"
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("patched profile (-want +got):\n%s", diff)
		}
		r = e.do(c, "PATCH", me, map[string]any{"mm": map[string]string{"skill": "9999"}}, auth...)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if diff := cmp.Diff([]string{"mm"}, fieldNames(r.problem(t))); diff != "" {
			t.Errorf("a player setting mm: fields (-want +got):\n%s", diff)
		}

		// Link the guest to an email.
		r = e.do(c, "POST", me+"/email", map[string]string{"email": "ann@example.com", "password": password}, auth...)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &p)
		want.Email, want.Guest = "ann@example.com", false
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("linked profile (-want +got):\n%s", diff)
		}
		r = e.do(c, "POST", me+"/email", map[string]string{"email": "ann2@example.com", "password": password}, auth...)
		wantStatus(t, r, http.StatusConflict)
		r = e.do(c, "POST", "/api/v1/auth/login", map[string]string{"email": "ann@example.com", "password": password})
		wantStatus(t, r, http.StatusOK)
		var annByEmail authResult
		r.decode(t, &annByEmail)
		if annByEmail.PlayerID != ann.PlayerID {
			t.Errorf("login by the linked email: player %s, want %s", annByEmail.PlayerID, ann.PlayerID)
		}

		// Sessions: three now (two guest logins, one password login).
		r = e.do(c, "GET", me+"/sessions", nil, auth...)
		wantStatus(t, r, http.StatusOK)
		var raw struct {
			Sessions []map[string]any `json:"sessions"`
		}
		r.decode(t, &raw)
		wantKeys := []string{"address", "created_at", "current", "id", "last_used_at", "method", "user_agent"}
		var ids []string
		current := ""
		for _, s := range raw.Sessions {
			if diff := cmp.Diff(wantKeys, slices.Sorted(maps.Keys(s))); diff != "" {
				t.Errorf("session fields (-want +got):\n%s", diff)
			}
			ids = append(ids, s["id"].(string))
			if s["current"] == true {
				current = s["id"].(string)
			}
			if s["address"] != "127.0.0.1" || s["user_agent"] != "Go-http-client/1.1" {
				t.Errorf("session %v: address and user agent are not the client's", s)
			}
		}
		slices.Sort(ids)
		wantIDs := []string{ann.SessionID, again.SessionID, annByEmail.SessionID}
		slices.Sort(wantIDs)
		if diff := cmp.Diff(wantIDs, ids); diff != "" || current != again.SessionID {
			t.Errorf("sessions (-want +got):\n%s\ncurrent %q, want %q", diff, current, again.SessionID)
		}
		wantStatus(t, e.do(c, "DELETE", me+"/sessions/"+ann.SessionID, nil, auth...), http.StatusNoContent)
		wantStatus(t, e.do(c, "GET", me, nil, bearer(ann.AccessToken)...), http.StatusUnauthorized)
		wantStatus(t, e.do(c, "DELETE", me+"/sessions/"+ann.SessionID, nil, auth...), http.StatusNotFound)

		// A realtime token, verified with the published keys.
		r = e.do(c, "POST", me+"/realtime-token", nil, auth...)
		wantStatus(t, r, http.StatusOK)
		var rt struct {
			Token     string    `json:"realtime_token"`
			ExpiresAt time.Time `json:"realtime_expires_at"`
			URL       string    `json:"realtime_url"`
		}
		r.decode(t, &rt)
		if rt.URL != testRealtimeURL || !rt.ExpiresAt.After(e.clock.Now()) {
			t.Errorf("realtime token answer %+v", rt)
		}
		r = e.do(c, "GET", "/.well-known/jwks.json", nil)
		wantStatus(t, r, http.StatusOK)
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=60" {
			t.Errorf("JWKS Cache-Control %q, want public, max-age=60", cc)
		}
		keys, err := token.ParseJWKS(r.body)
		if err != nil || len(keys) == 0 {
			t.Fatalf("JWKS %s: %d keys, %v", r.body, len(keys), err)
		}
		set := token.NewKeySet(keys)
		for _, tok := range []string{ann.RealtimeToken, rt.Token} {
			claims, err := set.Verify(tok, e.clock.Now(), tandem.AudienceRealtime)
			if err != nil {
				t.Fatalf("realtime token does not verify with the JWKS: %v", err)
			}
			if claims.Subject != ann.PlayerID {
				t.Errorf("realtime token sub %q, want %q", claims.Subject, ann.PlayerID)
			}
		}

		// Logout ends this session only.
		wantStatus(t, e.do(c, "POST", "/api/v1/auth/logout", nil, auth...), http.StatusNoContent)
		r = e.do(c, "GET", me, nil, auth...)
		wantStatus(t, r, http.StatusUnauthorized)
		if r.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("401 without WWW-Authenticate: Bearer: %q", r.Header.Get("WWW-Authenticate"))
		}
		wantStatus(t, e.do(c, "GET", me, nil, bearer(annByEmail.AccessToken)...), http.StatusOK)

		// Deleting the account ends every session and frees the device and email.
		wantStatus(t, e.do(c, "DELETE", me, nil, bearer(annByEmail.AccessToken)...), http.StatusNoContent)
		wantStatus(t, e.do(c, "GET", me, nil, bearer(annByEmail.AccessToken)...), http.StatusUnauthorized)
		r = e.do(c, "POST", "/api/v1/auth/login", map[string]string{"email": "ann@example.com", "password": password})
		wantStatus(t, r, http.StatusUnauthorized)
		fresh := e.guestLogin("ann-phone", secret, "")
		if !fresh.Created || fresh.PlayerID == ann.PlayerID {
			t.Errorf("the deleted account's device logs in to player %s (created %v), want a new account", fresh.PlayerID, fresh.Created)
		}
	})
}

func TestAccessTokenRefusals(t *testing.T) {
	e := newPlayerEnv(t, onSQLite, func(c *service.Config) { c.Players.AccessTTL = time.Minute }, nil)
	c := e.client()
	ann := e.newGuest("Ann")
	me := "/api/v1/players/" + ann.PlayerID
	for _, tc := range []struct {
		name   string
		header []string
		title  string
	}{
		{"no header", nil, "unauthenticated"},
		{"not bearer", []string{"Authorization", "Basic " + ann.AccessToken}, "unauthenticated"},
		{"unknown token", bearer("tpa_" + newSecret()), "unauthenticated"},
		{"refresh token", bearer(ann.RefreshToken), "unauthenticated"},
		{"realtime token", bearer(ann.RealtimeToken), "unauthenticated"},
	} {
		r := e.do(c, "GET", me, nil, tc.header...)
		wantStatus(t, r, http.StatusUnauthorized)
		if p := r.problem(t); p.Title != tc.title {
			t.Errorf("%s: title %q, want %q", tc.name, p.Title, tc.title)
		}
	}
	e.clock.Advance(time.Minute)
	r := e.do(c, "GET", me, nil, bearer(ann.AccessToken)...)
	wantStatus(t, r, http.StatusUnauthorized)
	if p := r.problem(t); p.Title != "token_expired" {
		t.Errorf("expired access token: title %q, want token_expired", p.Title)
	}
}

// bannedProblem is a problem document with the field of a banned answer,
// kept raw to tell an absent until from a present one.
type bannedProblem struct {
	Title  string          `json:"title"`
	Code   int             `json:"code"`
	Detail string          `json:"detail"`
	Until  json.RawMessage `json:"until"`
}

func TestBannedPlayerIsRefusedSayingUntilWhen(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		e := newPlayerEnv(t, b, nil, nil)
		ctx := context.Background()
		c := e.client()
		ban := func(playerID string, ends time.Time) {
			t.Helper()
			_, err := e.svc.BanPlayer(ctx, service.CLIActor("test"), service.BanRequest{PlayerID: playerID,
				Scope: tandem.BanAccount, Reason: "cheating", EndsAt: ends})
			if err != nil {
				t.Fatal(err)
			}
		}
		refused := func(r response) bannedProblem {
			t.Helper()
			wantStatus(t, r, http.StatusForbidden)
			var p bannedProblem
			r.decode(t, &p)
			if p.Title != "banned" || p.Code != int(tandem.EBanned) || !strings.Contains(p.Detail, "cheating") {
				t.Errorf("banned answer %+v, want banned (21) saying cheating", p)
			}
			return p
		}

		secret := newSecret()
		ann := e.guestLogin("ann-device", secret, "Ann")
		ends := e.clock.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
		ban(ann.PlayerID, ends)
		p := refused(e.do(c, "POST", "/api/v1/auth/guest", map[string]string{"device_id": "ann-device", "secret": secret}))
		var until time.Time
		if err := json.Unmarshal(p.Until, &until); err != nil || !until.Equal(ends) {
			t.Errorf("until %s, want %s", p.Until, ends.Format(time.RFC3339))
		}

		const password = "a long enough password"
		r := e.do(c, "POST", "/api/v1/auth/register", map[string]string{"email": "bob@example.com", "password": password})
		wantStatus(t, r, http.StatusCreated)
		var bob authResult
		r.decode(t, &bob)
		ban(bob.PlayerID, time.Time{})
		p = refused(e.do(c, "POST", "/api/v1/auth/login", map[string]string{"email": "bob@example.com", "password": password}))
		if p.Until != nil {
			t.Errorf("a permanent ban says until %s", p.Until)
		}
		if !strings.Contains(p.Detail, "permanently") {
			t.Errorf("detail %q does not say permanently", p.Detail)
		}
	})
}

func TestPlayerTokensAndAdminCredentialsDoNotCross(t *testing.T) {
	e := newPlayerEnv(t, onSQLite, nil, nil)
	e.createAdmin("ann", e.roles[tandem.RoleViewer])
	key, _ := e.apiKey("game servers", e.roles[tandem.RoleOwner])
	player := e.newGuest("Pat")
	me := "/api/v1/players/" + player.PlayerID

	r := e.do(e.client(), "GET", me, nil, bearer(key)...)
	wantStatus(t, r, http.StatusUnauthorized)

	admin := e.client()
	e.login(admin, "ann")
	wantStatus(t, e.do(admin, "GET", "/api/admin/v1/me", nil), http.StatusOK)
	r = e.do(admin, "GET", me, nil)
	wantStatus(t, r, http.StatusUnauthorized)
	if sc := r.Header.Get("Set-Cookie"); sc != "" {
		t.Errorf("a player route touched the admin's cookie: %s", sc)
	}
	wantStatus(t, e.do(admin, "GET", "/api/admin/v1/me", nil), http.StatusOK)

	for _, path := range []string{"/api/admin/v1/me", "/api/admin/v1/players"} {
		r = e.do(e.client(), "GET", path, nil, bearer(player.AccessToken)...)
		wantStatus(t, r, http.StatusUnauthorized)
	}
}

func TestPlayerAPICORS(t *testing.T) {
	const game = "https://game.example.com"
	e := newPlayerEnv(t, onSQLite, nil, func(c *web.Config) { c.CORSOrigins = []string{game, "http://localhost:5173"} })
	c := e.client()
	guest := func() map[string]string {
		return map[string]string{"device_id": "d-" + newSecret(), "secret": newSecret()}
	}
	corsHeaders := func(r response) map[string]string {
		got := map[string]string{}
		for k, v := range r.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				got[k] = strings.Join(v, ", ")
			}
		}
		return got
	}

	t.Run("preflight from an allowed origin", func(t *testing.T) {
		r := e.do(c, "OPTIONS", "/api/v1/auth/guest", nil, "Origin", game,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
		wantStatus(t, r, http.StatusNoContent)
		want := map[string]string{
			"Access-Control-Allow-Origin":  game,
			"Access-Control-Allow-Methods": "POST",
			"Access-Control-Allow-Headers": "Authorization, Content-Type",
			"Access-Control-Max-Age":       "600",
		}
		if diff := cmp.Diff(want, corsHeaders(r)); diff != "" {
			t.Errorf("preflight headers (-want +got):\n%s", diff)
		}
		if !slices.Contains(r.Header.Values("Vary"), "Origin") {
			t.Errorf("Vary %q lacks Origin", r.Header.Values("Vary"))
		}
		r = e.do(c, "OPTIONS", "/api/v1/players/someone", nil, "Origin", game, "Access-Control-Request-Method", "PATCH")
		if got := r.Header.Get("Access-Control-Allow-Methods"); got != "GET, HEAD, PATCH, DELETE" {
			t.Errorf("preflight of a player path allows %q", got)
		}
	})
	t.Run("cross-origin calls from an allowed origin", func(t *testing.T) {
		r := e.do(c, "POST", "/api/v1/auth/guest", guest(), "Origin", game, "Sec-Fetch-Site", "cross-site")
		wantStatus(t, r, http.StatusOK)
		want := map[string]string{"Access-Control-Allow-Origin": game, "Access-Control-Expose-Headers": "Retry-After, X-Request-Id, Location"}
		if diff := cmp.Diff(want, corsHeaders(r)); diff != "" {
			t.Errorf("headers (-want +got):\n%s", diff)
		}
		var res authResult
		r.decode(t, &res)
		r = e.do(c, "DELETE", "/api/v1/players/"+res.PlayerID+"/sessions/"+res.SessionID, nil,
			append(bearer(res.AccessToken), "Origin", "http://localhost:5173", "Sec-Fetch-Site", "cross-site")...)
		wantStatus(t, r, http.StatusNoContent)
	})
	t.Run("other origins are refused without CORS headers", func(t *testing.T) {
		r := e.do(c, "POST", "/api/v1/auth/guest", guest(), "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		wantStatus(t, r, http.StatusForbidden)
		if h := corsHeaders(r); len(h) != 0 {
			t.Errorf("a refused origin got CORS headers %v", h)
		}
		r = e.do(c, "OPTIONS", "/api/v1/auth/guest", nil, "Origin", "https://game.example.com.evil.example", "Access-Control-Request-Method", "POST")
		wantStatus(t, r, http.StatusForbidden)
		if h := corsHeaders(r); len(h) != 0 {
			t.Errorf("a refused preflight got CORS headers %v", h)
		}
	})
	t.Run("no origin and the server's own origin need no CORS", func(t *testing.T) {
		for _, h := range [][]string{nil, {"Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin"}} {
			r := e.do(c, "POST", "/api/v1/auth/guest", guest(), h...)
			wantStatus(t, r, http.StatusOK)
			if h := corsHeaders(r); len(h) != 0 {
				t.Errorf("CORS headers %v on a request that needs none", h)
			}
		}
	})
	t.Run("the admin API keeps its cross-origin protection", func(t *testing.T) {
		e.createAdmin("ann", e.roles[tandem.RoleViewer])
		r := e.do(c, "POST", "/api/admin/v1/session", map[string]string{"name": "ann", "password": testPassword},
			"Origin", game, "Sec-Fetch-Site", "cross-site")
		wantStatus(t, r, http.StatusForbidden)
		if h := corsHeaders(r); len(h) != 0 {
			t.Errorf("the admin API sent CORS headers %v", h)
		}
	})
	t.Run("the JWKS answers every origin", func(t *testing.T) {
		r := e.do(c, "GET", "/.well-known/jwks.json", nil, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		wantStatus(t, r, http.StatusOK)
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("JWKS Access-Control-Allow-Origin %q, want *", got)
		}
	})
	t.Run("New refuses origins that are not exact", func(t *testing.T) {
		for _, o := range []string{"*", "null", "game.example.com", "https://game.example.com/app", "ftp://game.example.com", "https://user@game.example.com"} {
			if _, err := web.New(web.Config{Service: e.svc, CORSOrigins: []string{o}}); err == nil {
				t.Errorf("New accepted the CORS origin %q", o)
			}
		}
	})
}
