package admin

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// The player pages: the search, and one player's page with what an admin
// may do about them (ban, unban, log out everywhere, edit, notes) and
// their live status (kick and notice are live.go's). Every
// text on them came from a player, so the templates only ever show it as
// text.

// playerSearchLimit is how many players one search shows.
const playerSearchLimit = 50

type playersData struct {
	Query   string
	Players []*tandem.PlayerAccount
	// Bans is what keeps each listed player out now, by player id: "account"
	// or "device" (the account can still log in from other devices).
	Bans map[string]tandem.BanScope
	// Total counts every account, deleted ones too.
	Total int
	// Full says the search found as many as it shows: there may be more.
	Full bool
}

func (u *ui) players(w http.ResponseWriter, r *http.Request) {
	a := web.ActorFrom(r.Context())
	q := r.URL.Query()
	d := playersData{Query: strings.TrimSpace(q.Get("q"))}
	f := &Form{Key: "search", Values: q}
	status := http.StatusOK
	var err error
	d.Players, err = u.svc.SearchPlayers(r.Context(), a, d.Query, playerSearchLimit)
	switch tandem.ErrorCodeOf(err) {
	case 0:
	case tandem.EValidation:
		f, status = formFromError("search", q, err), http.StatusUnprocessableEntity
	default:
		u.fail(w, r, err)
		return
	}
	if d.Total, err = u.svc.CountPlayers(r.Context(), a); err != nil {
		u.fail(w, r, err)
		return
	}
	if d.Bans, err = u.bansInForce(r.Context(), a, d.Players); err != nil {
		u.fail(w, r, err)
		return
	}
	d.Full = len(d.Players) == playerSearchLimit
	if isHTMX(r) {
		// htmx would put the form's own encoding in the address; this one
		// is the link to share.
		w.Header().Set("HX-Push-Url", playersURL(d.Query))
	}
	u.render(w, r, status, "players", &page{Title: "Players", Active: "/admin/players", Form: f, Data: d})
}

// bansInForce tells which of players a ban keeps out now.
func (u *ui) bansInForce(ctx context.Context, a *service.Actor, players []*tandem.PlayerAccount) (map[string]tandem.BanScope, error) {
	ids := make([]string, 0, len(players))
	for _, p := range players {
		if !p.Deleted() {
			ids = append(ids, p.ID)
		}
	}
	return u.svc.BansInForce(ctx, a, ids)
}

func playersURL(q string) string {
	if q == "" {
		return "/admin/players"
	}
	return "/admin/players?" + url.Values{"q": {q}}.Encode()
}

// playerPath is the player's page.
func playerPath(id string) string { return "/admin/players/" + url.PathEscape(id) }

// banDurations are the ban form's choices of length; "" (permanent) and
// "custom" (the end time typed) are the others.
var banDurations = map[string]time.Duration{
	"1h":  time.Hour,
	"24h": 24 * time.Hour,
	"7d":  7 * 24 * time.Hour,
	"30d": 30 * 24 * time.Hour,
}

type playerData struct {
	*service.PlayerDetail
	// Path is the page's own path, the prefix of its forms' actions.
	Path string
	// MMText is the matchmaking properties as the edit form's lines, and
	// MMQuery as its hidden mm_was (what the page was drawn with).
	MMText, MMQuery string
	// Bans are the player's bans as the table shows them.
	Bans []banRow
	// CanBan and CanWrite enable the forms that need players:ban and
	// players:write; without them the forms are shown disabled.
	CanBan, CanWrite bool
	// Durations are the ban form's choices, in order.
	Durations []option
	// Live is the player's realtime status (nil for a deleted account).
	Live *playerLive
}

// banRow is a ban as the bans table shows it.
type banRow struct {
	*tandem.Ban
	// DeviceID is the banned device when it is one of the player's
	// (a ban keeps only the device id's hash).
	DeviceID string
	// Active: the ban keeps the player out now. Pending: it starts later.
	Active, Pending bool
	// Ended: it ran out (a lifted ban has LiftedAt instead).
	Ended bool
}

func (u *ui) player(w http.ResponseWriter, r *http.Request) {
	u.playerView(w, r, r.PathValue("id"), nil, http.StatusOK)
}

func (u *ui) playerView(w http.ResponseWriter, r *http.Request, id string, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	det, err := u.svc.PlayerDetail(r.Context(), a, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := playerData{PlayerDetail: det, Path: playerPath(det.Player.ID),
		MMText: mmText(det.Player.MM), MMQuery: mmQuery(det.Player.MM), Bans: banRows(det, u.now()),
		CanBan: a.Can(tandem.PermPlayersBan), CanWrite: a.Can(tandem.PermPlayersWrite)}
	if !det.Player.Deleted() {
		d.Live = u.playerLiveStatus(r, a, det.Player.ID)
	}
	chosen := "24h"
	if f != nil && f.Key == "ban" {
		chosen = f.Value("duration")
	}
	for _, c := range []struct{ value, label string }{
		{"1h", "1 hour"}, {"24h", "24 hours"}, {"7d", "7 days"}, {"30d", "30 days"},
		{"permanent", "Permanent"}, {"custom", "Until the end time below"},
	} {
		d.Durations = append(d.Durations, option{Value: c.value, Label: c.label, Selected: c.value == chosen})
	}
	u.render(w, r, status, "player", &page{Title: "Player " + playerName(det.Player), Active: "/admin/players", Form: f, Data: d})
}

// playerName is what a page calls the player: the display name, or the id
// of a player without one (a guest who chose none, a deleted account).
func playerName(p *tandem.PlayerAccount) string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.ID
}

// banRows describes the player's bans at now.
func banRows(det *service.PlayerDetail, now time.Time) []banRow {
	rows := make([]banRow, len(det.Bans))
	for i, b := range det.Bans {
		row := banRow{Ban: b, Active: b.ActiveAt(now)}
		if b.LiftedAt.IsZero() {
			row.Pending = now.Before(b.StartsAt)
			row.Ended = !b.EndsAt.IsZero() && !now.Before(b.EndsAt)
		}
		if b.Scope == tandem.BanDevice {
			row.DeviceID = det.BannedDevices[b.ID]
		}
		rows[i] = row
	}
	return rows
}

// mmText writes matchmaking properties as the edit form's key=value lines,
// sorted by key.
func mmText(mm map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(mm)) {
		b.WriteString(k + "=" + mm[k] + "\n")
	}
	return b.String()
}

// mmQuery writes matchmaking properties as the edit form's hidden mm_was:
// a query string, sorted by key, that a hidden input keeps intact and
// that equals mmQuery of the same properties however the box was typed.
func mmQuery(mm map[string]string) string {
	q := url.Values{}
	for k, v := range mm {
		q.Set(k, v)
	}
	return q.Encode()
}

// parseMM reads the edit form's key=value lines. Blank lines are skipped;
// the service checks the keys and values themselves.
func parseMM(text string) (map[string]string, []tandem.FieldError) {
	mm := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		n := strconv.Itoa(i + 1)
		switch {
		case !ok || k == "":
			return nil, []tandem.FieldError{{Field: "mm", Message: "line " + n + ": write each property as key=value"}}
		case dup(mm, k):
			return nil, []tandem.FieldError{{Field: "mm", Message: "line " + n + ": " + k + " is set twice"}}
		}
		mm[k] = v
	}
	return mm, nil
}

func dup(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// editPlayer sets the display name and the matchmaking properties.
func (u *ui) editPlayer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !u.parseForm(w, r) {
		return
	}
	show := func(f *Form, status int) { u.playerView(w, r, id, f, status) }
	mm, fields := parseMM(r.PostForm.Get("mm"))
	if fields != nil {
		u.formError(w, r, tandem.Invalid(fields), "edit", playerPath(id), show)
		return
	}
	// Only what the admin changed goes to the service, judged against the
	// values the page was drawn with: a guest without a name can be given
	// properties, and saving the properties puts back neither a name the
	// player has since chosen nor properties the game has since set.
	var edit service.PlayerEdit
	if name := r.PostForm.Get("display_name"); edited(r.PostForm, "display_name", name) {
		edit.DisplayName = &name
	}
	if edited(r.PostForm, "mm", mmQuery(mm)) {
		edit.MM = mm
	}
	if _, err := u.svc.EditPlayer(r.Context(), web.ActorFrom(r.Context()), id, edit); err != nil {
		u.formError(w, r, foldFields(err, "mm"), "edit", playerPath(id), show)
		return
	}
	u.seeOther(w, r, playerPath(id)+"?done=player-saved")
}

// edited reports whether the edit form changes field: it was sent and
// value differs from the field's hidden <field>_was, what the page was
// drawn with. A form without the hidden field saves what it sends.
func edited(form url.Values, field, value string) bool {
	if !form.Has(field) {
		return false
	}
	was, ok := form[field+"_was"]
	return !ok || len(was) != 1 || was[0] != value
}

// foldFields reports the service's errors about the parts of a field
// ("mm.skill") on the field the form has ("mm"), naming the part.
func foldFields(err error, field string) error {
	var te *tandem.Error
	if !errors.As(err, &te) || te.Code != tandem.EValidation {
		return err
	}
	out := *te
	out.Fields = make([]tandem.FieldError, len(te.Fields))
	for i, f := range te.Fields {
		if part, ok := strings.CutPrefix(f.Field, field+"."); ok {
			f = tandem.FieldError{Field: field, Message: part + ": " + f.Message}
		}
		out.Fields[i] = f
	}
	return &out
}

// banPlayer bans the account or one of its devices.
func (u *ui) banPlayer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !u.parseForm(w, r) {
		return
	}
	show := func(f *Form, status int) { u.playerView(w, r, id, f, status) }
	in, fields := banRequest(id, r.PostForm, u.now())
	if fields != nil {
		u.formError(w, r, tandem.Invalid(fields), "ban", playerPath(id), show)
		return
	}
	if _, err := u.svc.BanPlayer(r.Context(), web.ActorFrom(r.Context()), in); err != nil {
		u.formError(w, r, err, "ban", playerPath(id), show)
		return
	}
	u.seeOther(w, r, playerPath(id)+"?done=player-banned")
}

// banRequest reads the ban form. The duration is a choice counted from
// now, "permanent", or "custom" with an end time typed in UTC.
func banRequest(playerID string, form url.Values, now time.Time) (service.BanRequest, []tandem.FieldError) {
	in := service.BanRequest{PlayerID: playerID, Scope: tandem.BanScope(form.Get("scope")), Reason: form.Get("reason")}
	if in.Scope == tandem.BanDevice {
		in.DeviceID = form.Get("device_id")
	}
	var fields []tandem.FieldError
	switch dur := form.Get("duration"); dur {
	case "permanent":
	case "custom":
		end, ok := parseFilterTime(form.Get("ends_at"))
		switch {
		case !ok:
			fields = append(fields, tandem.FieldError{Field: "ends_at", Message: "use a date and time such as 2025-01-31T14:05"})
		case end.IsZero():
			fields = append(fields, tandem.FieldError{Field: "ends_at", Message: "give the end time, or choose a length"})
		}
		in.EndsAt = end
	default:
		d, ok := banDurations[dur]
		if !ok {
			fields = append(fields, tandem.FieldError{Field: "duration", Message: "choose how long the ban lasts"})
		}
		in.EndsAt = now.Add(d)
	}
	return in, fields
}

// liftBan ends one of the player's bans early. The service refuses a ban
// of another player than the page's, and needs only players:ban.
func (u *ui) liftBan(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	banID, err := strconv.ParseInt(r.PathValue("ban_id"), 10, 64)
	if err != nil || banID <= 0 {
		u.fail(w, r, tandem.Invalid([]tandem.FieldError{{Field: "ban_id", Message: "must be a positive integer"}}))
		return
	}
	key := "ban-" + strconv.FormatInt(banID, 10)
	show := func(f *Form, status int) { u.playerView(w, r, id, f, status) }
	if _, err := u.svc.LiftBan(r.Context(), web.ActorFrom(r.Context()), id, banID); err != nil {
		u.formError(w, r, err, key, playerPath(id), show)
		return
	}
	u.seeOther(w, r, playerPath(id)+"?done=ban-lifted")
}

// logoutPlayer ends every session of the player.
func (u *ui) logoutPlayer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := u.svc.LogoutPlayerEverywhere(r.Context(), web.ActorFrom(r.Context()), id); err != nil {
		u.formError(w, r, err, "logout", playerPath(id), func(f *Form, status int) { u.playerView(w, r, id, f, status) })
		return
	}
	u.seeOther(w, r, playerPath(id)+"?done=player-logged-out")
}

// addPlayerNote adds an admin's note to the player's page.
func (u *ui) addPlayerNote(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !u.parseForm(w, r) {
		return
	}
	if _, err := u.svc.AddPlayerNote(r.Context(), web.ActorFrom(r.Context()), id, r.PostForm.Get("text")); err != nil {
		u.formError(w, r, err, "note", playerPath(id), func(f *Form, status int) { u.playerView(w, r, id, f, status) })
		return
	}
	u.seeOther(w, r, playerPath(id)+"?done=note-added")
}
