package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// The live operations console: the realtime nodes, the live rooms, one
// room, and the commands sent to nodes, with the actions that send them
// (drain, close, lock, unlock, notice, kick). Every action goes through
// the service's command outbox, so a page only ever says a command is
// pending; the commands page tells how its delivery went.
//
// What these pages show comes from the cluster: room types, labels, node
// ids and log text that a game or a node chose. The templates only ever
// show it as text.
//
// The tables refresh themselves: a polling element (hx-trigger "every
// 2s") asks the page's own URL again, and render answers a request whose
// HX-Target names the element with that fragment alone.

// commandsPageLimit is how many commands the commands page shows.
const commandsPageLimit = 100

// liveFragments are the polled fragments, by target id.
var liveFragments = []string{"nodes-live", "rooms-live", "room-live", "commands-live"}

// roomPath is a live room's page.
func roomPath(id string) string { return "/admin/rooms/" + url.PathEscape(id) }

// nodePath prefixes the actions on a node.
func nodePath(id string) string { return "/admin/nodes/" + url.PathEscape(id) }

// ageText says how long ago t was, coarsely: the tables refresh every
// two seconds, so a second is the finest step worth showing.
func ageText(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds ago", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd %dh ago", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// isPoll reports whether r is the poll of the fragment target.
func isPoll(r *http.Request, target string) bool {
	return isHTMX(r) && r.Header.Get("HX-Target") == target
}

// pollStop is the status that answers a poll and ends it: htmx stops
// polling an element on 286 and swaps its content in all the same.
const pollStop = 286

// unavailable splits off the error of a cluster that cannot be read
// now, which a page shows in place of its table.
func unavailable(err error) (string, error) {
	if tandem.ErrorCodeOf(err) == tandem.EUnavailable {
		return tandem.ErrorMessageOf(err), nil
	}
	return "", err
}

// ---- nodes

type nodesData struct {
	Nodes []nodeRow
	// Unavailable says why the registry cannot be read (no cluster, the
	// bus is down): the page stays up and keeps polling until it is back.
	Unavailable string
	// CanManage shows the drain buttons (rooms:manage).
	CanManage bool
}

type nodeRow struct {
	service.NodeStatus
	Path string
	// Status is "live", "draining" or "down".
	Status       string
	HeartbeatAge string
}

func (u *ui) nodes(w http.ResponseWriter, r *http.Request) { u.nodesView(w, r, nil, http.StatusOK) }

func (u *ui) nodesView(w http.ResponseWriter, r *http.Request, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	d := nodesData{CanManage: a.Can(tandem.PermRoomsManage)}
	list, err := u.svc.Nodes(r.Context(), a)
	if d.Unavailable, err = unavailable(err); err != nil {
		u.fail(w, r, err)
		return
	}
	now := u.now()
	for _, n := range list {
		row := nodeRow{NodeStatus: n, Path: nodePath(n.ID), Status: "live", HeartbeatAge: ageText(now, n.Heartbeat)}
		switch {
		case n.Down:
			row.Status = "down"
		case n.Draining:
			row.Status = "draining"
		}
		d.Nodes = append(d.Nodes, row)
	}
	u.render(w, r, status, "nodes", &page{Title: "Nodes", Active: "/admin/nodes", Form: f, Data: d})
}

func (u *ui) drainNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	u.sendCommand(w, r, service.CommandRequest{Kind: tandem.CommandDrain, Node: id}, "drain", "/admin/nodes",
		func(f *Form, status int) { u.nodesView(w, r, f, status) })
}

// ---- rooms

type roomsData struct {
	Filter service.RoomFilter
	Rooms  []roomRow
	// Unavailable says why the directory cannot be read.
	Unavailable string
	// Self is the page's URL with its filter: what the table polls.
	Self string
	// FilterError says what is wrong with the filter: the table shows it
	// instead of rooms and does not poll (each poll would only repeat it).
	FilterError string
}

type roomRow struct {
	tandem.RoomEntry
	Path string
	Age  string
}

func (u *ui) rooms(w http.ResponseWriter, r *http.Request) {
	a := web.ActorFrom(r.Context())
	q := r.URL.Query()
	filter := service.RoomFilter{Type: strings.TrimSpace(q.Get("type")), Label: strings.TrimSpace(q.Get("label")),
		Node: strings.TrimSpace(q.Get("node"))}
	f := &Form{Key: "filter", Values: q}
	status := http.StatusOK
	d := roomsData{Filter: filter, Self: roomsURL(filter)}
	list, err := u.svc.LiveRooms(r.Context(), a, filter)
	d.Unavailable, err = unavailable(err)
	switch code := tandem.ErrorCodeOf(err); code {
	case 0:
	case tandem.EValidation, tandem.EInvalid:
		f, d.FilterError = formFromError("filter", q, err), filterError(err)
		status = code.HTTPStatus()
		if isPoll(r, "rooms-live") {
			// An error status would put the page, form and all, over
			// the filter the admin is typing: answer in place, and stop.
			status = pollStop
		}
	default:
		u.fail(w, r, err)
		return
	}
	now := u.now()
	for _, e := range list {
		d.Rooms = append(d.Rooms, roomRow{RoomEntry: e, Path: roomPath(e.ID), Age: ageText(now, e.CreatedAt)})
	}
	u.render(w, r, status, "rooms", &page{Title: "Rooms", Active: "/admin/rooms", Form: f, Data: d})
}

// filterError is the rooms table's note on a filter the service refused.
func filterError(err error) string {
	var te *tandem.Error
	if errors.As(err, &te) && len(te.Fields) > 0 {
		parts := make([]string, 0, len(te.Fields))
		for _, fe := range te.Fields {
			parts = append(parts, fe.Field+": "+fe.Message)
		}
		return strings.Join(parts, "; ")
	}
	return tandem.ErrorMessageOf(err)
}

// roomsURL is the rooms page with filter f.
func roomsURL(f service.RoomFilter) string {
	q := url.Values{}
	for k, v := range map[string]string{"type": f.Type, "label": f.Label, "node": f.Node} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return "/admin/rooms"
	}
	return "/admin/rooms?" + q.Encode()
}

// ---- one room

type roomData struct {
	Room tandem.RoomEntry
	Path string
	Age  string
	// Events are the room's recent events, newest first.
	Events []tandem.Event
	// Gone: the room left the directory while the page polled it.
	Gone bool
	// Members are the directory's players with what the room's node says
	// of their sessions.
	Members []roomMember
	// Snapshot is the room's state as text: indented JSON when it is
	// JSON, else a line saying how many bytes it has.
	Snapshot string
	// InspectError says why the node did not answer: the directory's data
	// is shown without the sessions and the snapshot.
	InspectError string
	// Unavailable says why the directory cannot be read (the bus is
	// down): the page says so in place of the room and keeps polling
	// until it is back, as the nodes and rooms pages do.
	Unavailable string
	// CanManage shows the actions (rooms:manage); CanSeePlayers links
	// player ids to their pages (players:read).
	CanManage, CanSeePlayers bool
}

func (u *ui) room(w http.ResponseWriter, r *http.Request) {
	u.roomView(w, r, r.PathValue("id"), nil, http.StatusOK)
}

func (u *ui) roomView(w http.ResponseWriter, r *http.Request, id string, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	det, err := u.svc.LiveRoom(r.Context(), a, id)
	switch code := tandem.ErrorCodeOf(err); {
	case code == tandem.ENotFound && isPoll(r, "room-live"):
		// The poll of a room that has just closed: say so in place and
		// stop polling instead of swapping an error page over the
		// actions the admin was looking at.
		u.render(w, r, pollStop, "room", &page{Title: "Room " + id, Active: "/admin/rooms",
			Data: roomData{Room: tandem.RoomEntry{ID: id}, Path: roomPath(id), Gone: true}})
		return
	case code == tandem.EUnavailable:
		// status stays what the caller asked: after a refused action it
		// is the refusal's, shown next to its form.
		u.render(w, r, status, "room", &page{Title: "Room " + id, Active: "/admin/rooms", Form: f,
			Data: roomData{Room: tandem.RoomEntry{ID: id}, Path: roomPath(id), Unavailable: tandem.ErrorMessageOf(err),
				CanManage: a.Can(tandem.PermRoomsManage), CanSeePlayers: a.Can(tandem.PermPlayersRead)}})
		return
	case err != nil:
		u.fail(w, r, err)
		return
	}
	d := roomData{Room: det.Room, Path: roomPath(det.Room.ID), Age: ageText(u.now(), det.Room.CreatedAt), Events: det.Events,
		Members: roomMembers(det), InspectError: det.InspectError,
		CanManage: a.Can(tandem.PermRoomsManage), CanSeePlayers: a.Can(tandem.PermPlayersRead)}
	if det.InspectError == "" {
		d.Snapshot = snapshotText(det.Snapshot)
	}
	u.render(w, r, status, "room", &page{Title: "Room " + det.Room.ID, Active: "/admin/rooms", Form: f, Data: d})
}

// roomMember is a row of the room page's players table.
type roomMember struct {
	ID string
	// Session is the node's account of the player's session; nil when
	// the node did not answer or did not list the player.
	Session *tandem.LivePlayer
}

// roomMembers lists the directory's players, in its order, with the
// sessions the node reported.
func roomMembers(det *service.RoomDetail) []roomMember {
	out := make([]roomMember, 0, len(det.Room.Players))
	for _, id := range det.Room.Players {
		m := roomMember{ID: id}
		for i := range det.Players {
			if det.Players[i].PlayerID == id {
				m.Session = &det.Players[i]
				break
			}
		}
		out = append(out, m)
	}
	return out
}

// snapshotText is how the page shows a room's state: a room type's
// snapshot is any bytes, so only valid JSON is shown as itself (indented);
// anything else is described, never written out raw.
func snapshotText(b []byte) string {
	switch {
	case len(b) == 0:
		return ""
	case json.Valid(b):
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err == nil {
			return out.String()
		}
	}
	return fmt.Sprintf("binary state, %d bytes", len(b))
}

// roomAction answers the posts of a room page's buttons: kind is the
// command sent about the room.
func (u *ui) roomAction(kind tandem.CommandKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !u.parseForm(w, r) {
			return
		}
		in := service.CommandRequest{Kind: kind, RoomID: id}
		key := string(kind)
		switch kind {
		case tandem.CommandNotice:
			in.Text = r.PostForm.Get("text")
		case tandem.CommandKick:
			// A kick ends the player's session, on whichever node holds it.
			in = service.CommandRequest{Kind: kind, PlayerID: r.PostForm.Get("player_id")}
			key = "kick"
		}
		u.sendCommand(w, r, in, key, roomPath(id), func(f *Form, status int) { u.roomView(w, r, id, f, status) })
	}
}

// ---- commands

type commandsData struct {
	Commands []service.CommandRecord
	// CanManage shows the notice form (rooms:manage); CanSeePlayers links
	// player ids to their pages (players:read).
	CanManage, CanSeePlayers bool
}

func (u *ui) commands(w http.ResponseWriter, r *http.Request) {
	u.commandsView(w, r, nil, http.StatusOK)
}

func (u *ui) commandsView(w http.ResponseWriter, r *http.Request, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	list, err := u.svc.Commands(r.Context(), a, commandsPageLimit)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := commandsData{Commands: list, CanManage: a.Can(tandem.PermRoomsManage), CanSeePlayers: a.Can(tandem.PermPlayersRead)}
	u.render(w, r, status, "commands", &page{Title: "Commands", Active: "/admin/commands", Form: f, Data: d})
}

// noticeEveryone sends a notice to every session of every live node.
func (u *ui) noticeEveryone(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	u.sendCommand(w, r, service.CommandRequest{Kind: tandem.CommandNotice, Text: r.PostForm.Get("text")}, "notice",
		"/admin/commands", func(f *Form, status int) { u.commandsView(w, r, f, status) })
}

// ---- a player's live status

// playerLive is the player page's live section.
type playerLive struct {
	*service.LiveStatus
	// Error says why the status could not be read (the bus is down); the
	// rest of the player page is shown all the same.
	Error string
	// CanManage shows kick and notice (rooms:manage); CanSeeRooms shows
	// the rooms the player is in (rooms:read, without which the service
	// leaves them out).
	CanManage, CanSeeRooms bool
}

func (u *ui) playerLiveStatus(r *http.Request, a *service.Actor, id string) *playerLive {
	st, err := u.svc.PlayerLiveStatus(r.Context(), a, id)
	l := &playerLive{LiveStatus: st, CanManage: a.Can(tandem.PermRoomsManage), CanSeeRooms: a.Can(tandem.PermRoomsRead)}
	if err != nil {
		if tandem.ErrorCodeOf(err) == tandem.EInternal {
			u.log.Error("admin: reading a player's live status", "player", id, "err", err)
		}
		l.LiveStatus, l.Error = &service.LiveStatus{}, tandem.ErrorMessageOf(err)
	}
	return l
}

func (u *ui) kickPlayer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	u.sendCommand(w, r, service.CommandRequest{Kind: tandem.CommandKick, PlayerID: id}, "live-kick", playerPath(id),
		func(f *Form, status int) { u.playerView(w, r, id, f, status) })
}

func (u *ui) noticePlayer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !u.parseForm(w, r) {
		return
	}
	u.sendCommand(w, r, service.CommandRequest{Kind: tandem.CommandNotice, PlayerID: id, Text: r.PostForm.Get("text")},
		"live-notice", playerPath(id), func(f *Form, status int) { u.playerView(w, r, id, f, status) })
}

// ---- sending

// sendCommand hands in to the service's outbox and returns to back with
// the ids of the commands written. A refusal (offline player, unknown
// room, no cluster, bad text) is shown next to form key on the page;
// pages show such errors outside their polled fragments, which the next
// poll would redraw without them.
func (u *ui) sendCommand(w http.ResponseWriter, r *http.Request, in service.CommandRequest, key, back string, show func(f *Form, status int)) {
	recs, err := u.svc.SendCommand(r.Context(), web.ActorFrom(r.Context()), in)
	if err != nil {
		switch code := tandem.ErrorCodeOf(err); code {
		case tandem.EInternal, tandem.EUnauthenticated, tandem.EMFARequired:
			u.fail(w, r, err)
		case tandem.EReauthRequired:
			u.reauthView(w, r, nil, code.HTTPStatus(), back)
		default:
			show(formFromError(key, r.PostForm, err), code.HTTPStatus())
		}
		return
	}
	q := url.Values{"done": {"command-sent"}}
	for _, c := range recs {
		q.Add("command", c.ID)
	}
	u.seeOther(w, r, back+"?"+q.Encode())
}

// commandIDRE is what a command id shown in a notice may look like: the
// ids come back in the redirect's URL, which anyone can write, so the
// notice shows nothing else.
var commandIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// maxNoticeIDs bounds the ids one notice lists (a notice to everyone
// writes one command per node).
const maxNoticeIDs = 20

// commandNotice is the notice after commands were sent.
func commandNotice(ids []string) string {
	var ok []string
	for _, id := range ids {
		if commandIDRE.MatchString(id) && len(ok) < maxNoticeIDs {
			ok = append(ok, id)
		}
	}
	switch len(ok) {
	case 0:
		return "Command sent: pending until its node acknowledges it."
	case 1:
		return "Command " + ok[0] + " sent: pending until its node acknowledges it."
	}
	// The count is of the ids shown, never of the URL's: anyone can
	// write a URL with a thousand of them.
	count, more := strconv.Itoa(len(ok)), ""
	if len(ids) > len(ok) {
		count, more = count+"…", ", …"
	}
	return fmt.Sprintf("%s commands sent, one to each node (%s%s): pending until each node acknowledges its own.",
		count, strings.Join(ok, ", "), more)
}

// noticeOf turns the query of a redirect after a successful post into
// the page's notice.
func noticeOf(q url.Values) string {
	if q.Get("done") == "command-sent" {
		return commandNotice(q["command"])
	}
	return noticeText(q.Get("done"))
}
