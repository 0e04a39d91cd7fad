package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// PlayerAdminAPIRoutes returns the admin JSON API's player routes: search,
// detail, edit (how the game's servers set matchmaking properties with an
// API key), bans, log out everywhere and notes. Each route's Permission
// mirrors the one its service method checks.
func PlayerAdminAPIRoutes(svc *service.Service) []Route {
	a := &playerAdminAPI{svc: svc, now: time.Now}
	const p = APIPrefix + "/players"
	get, post, patch, del := http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete
	return []Route{
		{Method: get, Path: p, Access: Admin, Permission: tandem.PermPlayersRead, API: true, Handler: a.search,
			Summary: "search players, newest first; query: q (an id, a device id or an email exactly, or part of a display name), limit (1–200, default 50)"},
		{Method: get, Path: p + "/{id}", Access: Admin, Permission: tandem.PermPlayersRead, API: true, Handler: a.detail,
			Summary: "one player with devices, recent logins, sessions, bans and notes"},
		{Method: patch, Path: p + "/{id}", Access: Admin, Permission: tandem.PermPlayersWrite, API: true,
			Body: "{display_name?, mm?}", Handler: a.edit,
			Summary: "set a player's display name, or replace their matchmaking properties (what realtime tokens carry as mm)"},
		{Method: post, Path: p + "/{id}/bans", Access: Admin, Permission: tandem.PermPlayersBan, API: true,
			Body: "{scope, device_id?, reason, starts_at?, ends_at?}", Handler: a.ban,
			Summary: "ban a player's account or one of their devices (scope account or device); no ends_at is permanent; from its start the player is refused logins, refreshes, tokens and player API calls (sessions stay: see logout)"},
		{Method: del, Path: p + "/{id}/bans/{ban_id}", Access: Admin, Permission: tandem.PermPlayersBan, API: true, Handler: a.liftBan,
			Summary: "lift one of the player's bans early; answers the ban (device_id empty: naming devices needs players:read)"},
		{Method: post, Path: p + "/{id}/logout", Access: Admin, Permission: tandem.PermPlayersBan, API: true, Handler: a.logout,
			Summary: "end every session of a player; answers {sessions_ended}"},
		{Method: post, Path: p + "/{id}/notes", Access: Admin, Permission: tandem.PermPlayersWrite, API: true,
			Body: "{text}", Handler: a.addNote,
			Summary: "add a note to a player's admin page"},
	}
}

// playerAdminAPI holds the player routes' handlers. now only marks which
// bans are active in answers; the service decides who is kept out.
type playerAdminAPI struct {
	svc *service.Service
	now func() time.Time
}

// The response bodies: what leaves the server, never a password, device
// secret or token hash.

type adminPlayerJSON struct {
	ID          string            `json:"id"`
	DisplayName string            `json:"display_name"`
	Email       string            `json:"email"`
	Guest       bool              `json:"guest"`
	Locale      string            `json:"locale"`
	AvatarURL   string            `json:"avatar_url"`
	MM          map[string]string `json:"mm"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	LastLoginAt *time.Time        `json:"last_login_at"`
	// DeletedAt is set for a deleted account, of which only the id is left.
	DeletedAt *time.Time `json:"deleted_at"`
}

func adminPlayerOut(p *tandem.PlayerAccount) adminPlayerJSON {
	mm := p.MM
	if mm == nil {
		mm = map[string]string{}
	}
	return adminPlayerJSON{ID: p.ID, DisplayName: p.DisplayName, Email: p.Email, Guest: p.Email == "" && !p.Deleted(),
		Locale: p.Locale, AvatarURL: p.AvatarURL, MM: mm, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
		LastLoginAt: optionalTime(p.LastLoginAt), DeletedAt: optionalTime(p.DeletedAt)}
}

type adminDeviceJSON struct {
	ID         string     `json:"id"`
	CreatedAt  time.Time  `json:"created_at"`
	LastSeenAt *time.Time `json:"last_seen_at"`
}

type adminLoginJSON struct {
	At        time.Time `json:"at"`
	Method    string    `json:"method"`
	DeviceID  string    `json:"device_id"`
	Address   string    `json:"address"`
	UserAgent string    `json:"user_agent"`
}

type adminSessionJSON struct {
	ID               string    `json:"id"`
	Method           string    `json:"method"`
	Address          string    `json:"address"`
	UserAgent        string    `json:"user_agent"`
	CreatedAt        time.Time `json:"created_at"`
	LastUsedAt       time.Time `json:"last_used_at"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
}

type adminBanJSON struct {
	ID       int64           `json:"id"`
	PlayerID string          `json:"player_id"`
	Scope    tandem.BanScope `json:"scope"`
	// DeviceID names the banned device when it is one of the player's
	// ("" otherwise: a ban keeps only a hash of the device id).
	DeviceID      string     `json:"device_id"`
	Reason        string     `json:"reason"`
	StartsAt      time.Time  `json:"starts_at"`
	EndsAt        *time.Time `json:"ends_at"` // null: permanent
	CreatedBy     int64      `json:"created_by"`
	CreatedByName string     `json:"created_by_name"`
	CreatedAt     time.Time  `json:"created_at"`
	LiftedAt      *time.Time `json:"lifted_at"`
	LiftedBy      int64      `json:"lifted_by"`
	LiftedByName  string     `json:"lifted_by_name"`
	// Active is whether the ban keeps the player out at the time of the answer.
	Active bool `json:"active"`
}

func adminBanOut(b *tandem.Ban, deviceID string, now time.Time) adminBanJSON {
	return adminBanJSON{ID: b.ID, PlayerID: b.PlayerID, Scope: b.Scope, DeviceID: deviceID, Reason: b.Reason,
		StartsAt: b.StartsAt, EndsAt: optionalTime(b.EndsAt), CreatedBy: b.CreatedBy, CreatedByName: b.CreatedByName,
		CreatedAt: b.CreatedAt, LiftedAt: optionalTime(b.LiftedAt), LiftedBy: b.LiftedBy, LiftedByName: b.LiftedByName,
		Active: b.ActiveAt(now)}
}

type adminNoteJSON struct {
	ID        int64     `json:"id"`
	PlayerID  string    `json:"player_id"`
	AdminID   int64     `json:"admin_id"`
	AdminName string    `json:"admin_name"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

func adminNoteOut(n *tandem.PlayerNote) adminNoteJSON {
	return adminNoteJSON{ID: n.ID, PlayerID: n.PlayerID, AdminID: n.AdminID, AdminName: n.AdminName, Text: n.Text, CreatedAt: n.CreatedAt}
}

type adminPlayerDetailJSON struct {
	Player   adminPlayerJSON    `json:"player"`
	Devices  []adminDeviceJSON  `json:"devices"`
	Logins   []adminLoginJSON   `json:"logins"`
	Sessions []adminSessionJSON `json:"sessions"`
	Bans     []adminBanJSON     `json:"bans"`
	Notes    []adminNoteJSON    `json:"notes"`
}

func adminDetailOut(d *service.PlayerDetail, now time.Time) adminPlayerDetailJSON {
	out := adminPlayerDetailJSON{Player: adminPlayerOut(d.Player), Devices: []adminDeviceJSON{}, Logins: []adminLoginJSON{},
		Sessions: []adminSessionJSON{}, Bans: []adminBanJSON{}, Notes: []adminNoteJSON{}}
	for _, x := range d.Devices {
		out.Devices = append(out.Devices, adminDeviceJSON{ID: x.ID, CreatedAt: x.CreatedAt, LastSeenAt: optionalTime(x.LastSeenAt)})
	}
	for _, x := range d.Logins {
		out.Logins = append(out.Logins, adminLoginJSON{At: x.At, Method: x.Method, DeviceID: x.DeviceID, Address: x.Address, UserAgent: x.UserAgent})
	}
	for _, x := range d.Sessions {
		out.Sessions = append(out.Sessions, adminSessionJSON{ID: x.ID, Method: x.Method, Address: x.Address, UserAgent: x.UserAgent,
			CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, RefreshExpiresAt: x.RefreshExpiresAt})
	}
	for _, x := range d.Bans {
		out.Bans = append(out.Bans, adminBanOut(x, d.BannedDevices[x.ID], now))
	}
	for _, x := range d.Notes {
		out.Notes = append(out.Notes, adminNoteOut(x))
	}
	return out
}

// adminPlayerPath is a player's resource in the API.
func adminPlayerPath(id string) string { return APIPrefix + "/players/" + url.PathEscape(id) }

// maxPlayerSearch is the most players one search answers (the service's
// own bound).
const maxPlayerSearch = 200

// playerSearchQuery is every query parameter GET /players takes.
var playerSearchQuery = []string{"q", "limit"}

// playerSearchParams reads GET /players' query, refusing a parameter it does
// not know: a misspelt one must not silently list everyone.
func playerSearchParams(r *http.Request) (string, int, error) {
	q := r.URL.Query()
	var fields []tandem.FieldError
	for name := range q {
		if !slices.Contains(playerSearchQuery, name) {
			fields = append(fields, tandem.FieldError{Field: name, Message: "is not a parameter of this request"})
		}
	}
	slices.SortFunc(fields, func(a, b tandem.FieldError) int { return strings.Compare(a.Field, b.Field) })
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPlayerSearch {
			fields = append(fields, tandem.FieldError{Field: "limit", Message: "must be between 1 and 200"})
		}
		limit = n
	}
	return strings.TrimSpace(q.Get("q")), limit, tandem.Invalid(fields)
}

func (a *playerAdminAPI) search(w http.ResponseWriter, r *http.Request) {
	q, limit, err := playerSearchParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	list, err := a.svc.SearchPlayers(r.Context(), ActorFrom(r.Context()), q, limit)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]adminPlayerJSON, len(list))
	for i, x := range list {
		out[i] = adminPlayerOut(x)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *playerAdminAPI) detail(w http.ResponseWriter, r *http.Request) {
	d, err := a.svc.PlayerDetail(r.Context(), ActorFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, adminDetailOut(d, a.now()))
}

func (a *playerAdminAPI) edit(w http.ResponseWriter, r *http.Request) {
	var in struct {
		DisplayName *string `json:"display_name"`
		// MM, when present, replaces every matchmaking property ({}
		// removes them all).
		MM map[string]string `json:"mm"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	p, err := a.svc.EditPlayer(r.Context(), ActorFrom(r.Context()), r.PathValue("id"),
		service.PlayerEdit{DisplayName: in.DisplayName, MM: in.MM})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, adminPlayerOut(p))
}

func (a *playerAdminAPI) ban(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Scope    tandem.BanScope `json:"scope"`
		DeviceID string          `json:"device_id"`
		Reason   string          `json:"reason"`
		StartsAt *time.Time      `json:"starts_at"`
		EndsAt   *time.Time      `json:"ends_at"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	id := r.PathValue("id")
	req := service.BanRequest{PlayerID: id, Scope: in.Scope, DeviceID: in.DeviceID, Reason: in.Reason}
	if in.StartsAt != nil {
		req.StartsAt = *in.StartsAt
	}
	if in.EndsAt != nil {
		req.EndsAt = *in.EndsAt
	}
	b, err := a.svc.BanPlayer(r.Context(), ActorFrom(r.Context()), req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	deviceID := ""
	if b.Scope == tandem.BanDevice {
		deviceID = in.DeviceID
	}
	w.Header().Set("Location", adminPlayerPath(id)+"/bans/"+strconv.FormatInt(b.ID, 10))
	WriteJSON(w, http.StatusCreated, adminBanOut(b, deviceID, a.now()))
}

func (a *playerAdminAPI) liftBan(w http.ResponseWriter, r *http.Request) {
	banID, err := strconv.ParseInt(r.PathValue("ban_id"), 10, 64)
	if err != nil || banID <= 0 {
		WriteError(w, r, tandem.Invalid([]tandem.FieldError{{Field: "ban_id", Message: "must be a positive integer"}}))
		return
	}
	// The service refuses a ban of another player than the path's.
	b, err := a.svc.LiftBan(r.Context(), ActorFrom(r.Context()), r.PathValue("id"), banID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	// No device id: naming the player's devices needs players:read, and
	// unbanning needs only players:ban.
	WriteJSON(w, http.StatusOK, adminBanOut(b, "", a.now()))
}

func (a *playerAdminAPI) logout(w http.ResponseWriter, r *http.Request) {
	n, err := a.svc.LogoutPlayerEverywhere(r.Context(), ActorFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, struct {
		SessionsEnded int `json:"sessions_ended"`
	}{n})
}

func (a *playerAdminAPI) addNote(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Text string `json:"text"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	n, err := a.svc.AddPlayerNote(r.Context(), ActorFrom(r.Context()), r.PathValue("id"), in.Text)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, adminNoteOut(n))
}
