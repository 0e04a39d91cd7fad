package web

import (
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// PlayerAPIPrefix is where the player API lives.
const PlayerAPIPrefix = "/api/v1"

// underPlayerAPI reports whether path belongs to the player API.
func underPlayerAPI(path string) bool { return strings.HasPrefix(path, PlayerAPIPrefix+"/") }

// playerAPI holds the player API's handlers. Each calls one service method
// about the caller's own account; the response structs below say exactly
// what leaves the server (never a hash, a password or another player's
// data).
type playerAPI struct {
	svc *service.Service
}

// PlayerAPIRoutes returns the player API (/api/v1) and the realtime token
// keys (/.well-known/jwks.json). Player routes name the caller's resources
// in their path, declared in Owns: the server refuses another player's
// {player_id} with 404 and the service checks every id again.
func PlayerAPIRoutes(svc *service.Service) []Route {
	a := &playerAPI{svc: svc}
	const p = PlayerAPIPrefix
	get, post, patch, del := http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete
	me := []string{OwnsPlayerID}
	return []Route{
		{Method: get, Path: JWKSPath, Access: Public, API: true, Handler: a.jwks,
			Summary: "the public keys realtime tokens are signed with, as a JWK Set (Ed25519); cacheable for 60 s"},
		{Method: post, Path: p + "/auth/guest", Access: Public, API: true, OwnsNothing: true,
			Body: "{device_id, secret, display_name?}", Handler: a.guestLogin,
			Summary: "log in as the guest of a device (device id chosen by the client, a secret of at least 128 random bits); the first login creates the account (created: true); answers AuthResult"},
		{Method: post, Path: p + "/auth/register", Access: Public, API: true, OwnsNothing: true,
			Body: "{email, password, display_name?, device_id?}", Handler: a.register,
			Summary: "create an account with an email and a password and log it in: 201 AuthResult"},
		{Method: post, Path: p + "/auth/login", Access: Public, API: true, OwnsNothing: true,
			Body: "{email, password, device_id?}", Handler: a.login,
			Summary: "log in with an email and a password; answers AuthResult"},
		{Method: post, Path: p + "/auth/refresh", Access: Public, API: true, OwnsNothing: true,
			Body: "{refresh_token}", Handler: a.refresh,
			Summary: "use up a refresh token for new access, refresh and realtime tokens (AuthResult); a refresh token used twice ends its session (401)"},
		{Method: post, Path: p + "/auth/logout", Access: Player, API: true, OwnsNothing: true, Handler: a.logout,
			Summary: "end the caller's session: 204"},
		{Method: get, Path: p + "/players/{player_id}", Access: Player, API: true, Owns: me, Handler: a.profile,
			Summary: "the caller's profile"},
		{Method: patch, Path: p + "/players/{player_id}", Access: Player, API: true, Owns: me,
			Body: "{display_name?, locale?, avatar_url?}", Handler: a.updateProfile,
			Summary: "change the caller's display name, locale or avatar URL; answers the profile"},
		{Method: post, Path: p + "/players/{player_id}/email", Access: Player, API: true, Owns: me,
			Body: "{email, password}", Handler: a.linkEmail,
			Summary: "give a guest account an email and a password (409 if it has an email); answers the profile"},
		{Method: del, Path: p + "/players/{player_id}", Access: Player, API: true, Owns: me, Handler: a.deleteAccount,
			Summary: "delete the caller's account: personal data erased, every session ended: 204"},
		{Method: get, Path: p + "/players/{player_id}/sessions", Access: Player, API: true, Owns: me, Handler: a.sessions,
			Summary: "the caller's sessions: {sessions: [{id, method, created_at, last_used_at, address, user_agent, current}]}"},
		{Method: del, Path: p + "/players/{player_id}/sessions/{session_id}", Access: Player, API: true,
			Owns: []string{OwnsPlayerID, OwnsSessionID}, Handler: a.endSession,
			Summary: "end one of the caller's sessions: 204"},
		{Method: post, Path: p + "/players/{player_id}/realtime-token", Access: Player, API: true, Owns: me, Handler: a.realtimeToken,
			Summary: "a new realtime token: {realtime_token, realtime_expires_at, realtime_url}"},
	}
}

// The response bodies.

// authResultJSON answers every login-type call.
type authResultJSON struct {
	PlayerID          string    `json:"player_id"`
	Created           bool      `json:"created"`
	SessionID         string    `json:"session_id"`
	AccessToken       string    `json:"access_token"`
	AccessExpiresAt   time.Time `json:"access_expires_at"`
	RefreshToken      string    `json:"refresh_token"`
	RefreshExpiresAt  time.Time `json:"refresh_expires_at"`
	RealtimeToken     string    `json:"realtime_token"`
	RealtimeExpiresAt time.Time `json:"realtime_expires_at"`
	// RealtimeURL is where to connect with the realtime token; "" when the
	// web server was not told.
	RealtimeURL string `json:"realtime_url"`
}

func authResultOut(res *service.AuthResult) authResultJSON {
	return authResultJSON{PlayerID: res.Player.ID, Created: res.Created, SessionID: res.SessionID,
		AccessToken: res.AccessToken, AccessExpiresAt: res.AccessExpiresAt.UTC(),
		RefreshToken: res.RefreshToken, RefreshExpiresAt: res.RefreshExpiresAt.UTC(),
		RealtimeToken: res.Token, RealtimeExpiresAt: res.ExpiresAt.UTC(), RealtimeURL: res.URL}
}

type realtimeTokenJSON struct {
	RealtimeToken     string    `json:"realtime_token"`
	RealtimeExpiresAt time.Time `json:"realtime_expires_at"`
	RealtimeURL       string    `json:"realtime_url"`
}

// profileJSON is a player's own view of their account: no password hash,
// no deletion or login bookkeeping.
type profileJSON struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
	// Guest is true while the account has no email.
	Guest     bool              `json:"guest"`
	Locale    string            `json:"locale"`
	AvatarURL string            `json:"avatar_url"`
	MM        map[string]string `json:"mm"`
	CreatedAt time.Time         `json:"created_at"`
}

func profileOut(p *tandem.PlayerAccount) profileJSON {
	mm := maps.Clone(p.MM)
	if mm == nil {
		mm = map[string]string{}
	}
	return profileJSON{ID: p.ID, DisplayName: p.DisplayName, Email: p.Email, Guest: p.Email == "",
		Locale: p.Locale, AvatarURL: p.AvatarURL, MM: mm, CreatedAt: p.CreatedAt.UTC()}
}

type playerSessionJSON struct {
	ID         string    `json:"id"`
	Method     string    `json:"method"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	Address    string    `json:"address"`
	UserAgent  string    `json:"user_agent"`
	// Current marks the session of the request's access token.
	Current bool `json:"current"`
}

// playerClient is where a player's request comes from.
func playerClient(r *http.Request) service.Client {
	return service.Client{Address: ClientAddress(r), UserAgent: r.UserAgent()}
}

// The handlers.

func (a *playerAPI) guestLogin(w http.ResponseWriter, r *http.Request) {
	var in struct {
		DeviceID    string `json:"device_id"`
		Secret      string `json:"secret"`
		DisplayName string `json:"display_name"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	res, err := a.svc.GuestLogin(r.Context(), service.GuestLogin{DeviceID: in.DeviceID, Secret: in.Secret,
		DisplayName: in.DisplayName, Client: playerClient(r)})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, authResultOut(res))
}

func (a *playerAPI) register(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email       string `json:"email"`
		Password    string `json:"password"`
		DisplayName string `json:"display_name"`
		DeviceID    string `json:"device_id"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	res, err := a.svc.Register(r.Context(), service.Registration{Email: in.Email, Password: in.Password,
		DisplayName: in.DisplayName, DeviceID: in.DeviceID, Client: playerClient(r)})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", PlayerAPIPrefix+"/players/"+res.Player.ID)
	WriteJSON(w, http.StatusCreated, authResultOut(res))
}

func (a *playerAPI) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		DeviceID string `json:"device_id"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	res, err := a.svc.PasswordLogin(r.Context(), service.PasswordLogin{Email: in.Email, Password: in.Password,
		DeviceID: in.DeviceID, Client: playerClient(r)})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, authResultOut(res))
}

func (a *playerAPI) refresh(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	res, err := a.svc.Refresh(r.Context(), in.RefreshToken, playerClient(r))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, authResultOut(res))
}

func (a *playerAPI) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.PlayerLogout(r.Context(), PlayerFrom(r.Context())); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *playerAPI) profile(w http.ResponseWriter, r *http.Request) {
	p, err := a.svc.Profile(r.Context(), PlayerFrom(r.Context()), r.PathValue("player_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, profileOut(p))
}

func (a *playerAPI) updateProfile(w http.ResponseWriter, r *http.Request) {
	var in struct {
		DisplayName *string `json:"display_name"`
		Locale      *string `json:"locale"`
		AvatarURL   *string `json:"avatar_url"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	p, err := a.svc.UpdateProfile(r.Context(), PlayerFrom(r.Context()), r.PathValue("player_id"),
		service.ProfileUpdate{DisplayName: in.DisplayName, Locale: in.Locale, AvatarURL: in.AvatarURL})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, profileOut(p))
}

func (a *playerAPI) linkEmail(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	p, err := a.svc.LinkEmail(r.Context(), PlayerFrom(r.Context()), r.PathValue("player_id"), in.Email, in.Password)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, profileOut(p))
}

func (a *playerAPI) deleteAccount(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteAccount(r.Context(), PlayerFrom(r.Context()), r.PathValue("player_id")); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *playerAPI) sessions(w http.ResponseWriter, r *http.Request) {
	caller := PlayerFrom(r.Context())
	list, err := a.svc.OwnSessions(r.Context(), caller, r.PathValue("player_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := struct {
		Sessions []playerSessionJSON `json:"sessions"`
	}{Sessions: make([]playerSessionJSON, len(list))}
	for i, s := range list {
		out.Sessions[i] = playerSessionJSON{ID: s.ID, Method: s.Method, CreatedAt: s.CreatedAt.UTC(),
			LastUsedAt: s.LastUsedAt.UTC(), Address: s.Address, UserAgent: s.UserAgent, Current: s.ID == caller.SessionID}
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *playerAPI) endSession(w http.ResponseWriter, r *http.Request) {
	err := a.svc.EndOwnSession(r.Context(), PlayerFrom(r.Context()), r.PathValue("player_id"), r.PathValue("session_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *playerAPI) realtimeToken(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.IssueRealtimeToken(r.Context(), PlayerFrom(r.Context()), r.PathValue("player_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, realtimeTokenJSON{RealtimeToken: t.Token, RealtimeExpiresAt: t.ExpiresAt.UTC(), RealtimeURL: t.URL})
}
