package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// ClusterAPIRoutes returns the admin JSON API's live operations routes:
// realtime nodes, live rooms, a player's live status, and the commands
// sent to nodes. Each route's Permission mirrors the one its service
// method checks.
func ClusterAPIRoutes(svc *service.Service) []Route {
	a := &clusterAPI{svc: svc}
	const p = APIPrefix
	get, post := http.MethodGet, http.MethodPost
	return []Route{
		{Method: get, Path: p + "/nodes", Access: Admin, Permission: tandem.PermRoomsRead, API: true, Handler: a.nodes,
			Summary: "the realtime nodes: live ones from the node registry and those declared down in the last 24 h"},
		{Method: get, Path: p + "/rooms", Access: Admin, Permission: tandem.PermRoomsRead, API: true, Handler: a.rooms,
			Summary: "live rooms of every node from the room directory, oldest first; query: type, label (key=value), node"},
		{Method: get, Path: p + "/rooms/{id}", Access: Admin, Permission: tandem.PermRoomsRead, API: true, Handler: a.room,
			Summary: "one live room: {room (the directory's entry), players (the node's sessions of its members: connected, rtt_ms, …), " +
				"snapshot (the room's state as its first member sees it: the JSON itself when it is valid JSON, else a base64 string; null without members), " +
				"events (recent, newest first), inspect_error (why the node did not answer, players and snapshot then empty; \"\" when it did)}"},
		{Method: get, Path: p + "/players/{id}/live", Access: Admin, Permission: tandem.PermPlayersRead, API: true, Handler: a.playerLive,
			Summary: "a player's live status: online, node, session, rooms (empty without rooms:read), and from the session's node connected (false: held for a resume) " +
				"and rtt_ms (median of recent pings, 0 before the first); inspect_error says why the node did not answer (\"\" when it did)"},
		{Method: get, Path: p + "/commands", Access: Admin, Permission: tandem.PermRoomsRead, API: true, Handler: a.commands,
			Summary: "recent node commands with their delivery state (pending, delivered, failed), newest first; query: limit (1–200, default 50)"},
		{Method: post, Path: p + "/commands", Access: Admin, Permission: tandem.PermRoomsManage, API: true,
			Body: "{kind, node?, player_id?, room_id?, text?}", Handler: a.sendCommand,
			Summary: "send a command to the node that holds the player or room (kind kick, notice, close_room, lock_room, unlock_room, drain); " +
				"a notice with neither player_id nor room_id goes to every node; answers 202 with the commands written (state pending)"},
	}
}

type clusterAPI struct{ svc *service.Service }

type nodeJSON struct {
	tandem.NodeInfo
	Down   bool       `json:"down"`
	DownAt *time.Time `json:"down_at"`
}

type commandJSON struct {
	tandem.Command
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	ResultOK    bool       `json:"result_ok"`
	ResultError string     `json:"result_error,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at"`
	CreatedBy   string     `json:"created_by"`
}

func commandsOut(list []service.CommandRecord) []commandJSON {
	out := make([]commandJSON, len(list))
	for i, c := range list {
		out[i] = commandJSON{Command: c.Command, State: c.State, Attempts: c.Attempts, LastError: c.LastError,
			ResultOK: c.ResultOK, ResultError: c.ResultError, DeliveredAt: optionalTime(c.DeliveredAt), CreatedBy: c.CreatedBy}
	}
	return out
}

func (a *clusterAPI) nodes(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.Nodes(r.Context(), ActorFrom(r.Context()))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]nodeJSON, len(list))
	for i, n := range list {
		out[i] = nodeJSON{NodeInfo: n.NodeInfo, Down: n.Down, DownAt: optionalTime(n.DownAt)}
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *clusterAPI) rooms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	list, err := a.svc.LiveRooms(r.Context(), ActorFrom(r.Context()),
		service.RoomFilter{Type: q.Get("type"), Label: q.Get("label"), Node: q.Get("node")})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if list == nil {
		list = []tandem.RoomEntry{}
	}
	WriteJSON(w, http.StatusOK, list)
}

func (a *clusterAPI) room(w http.ResponseWriter, r *http.Request) {
	d, err := a.svc.LiveRoom(r.Context(), ActorFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	events := d.Events
	if events == nil {
		events = []tandem.Event{}
	}
	players := d.Players
	if players == nil {
		players = []tandem.LivePlayer{}
	}
	WriteJSON(w, http.StatusOK, struct {
		Room         tandem.RoomEntry    `json:"room"`
		Players      []tandem.LivePlayer `json:"players"`
		Snapshot     json.RawMessage     `json:"snapshot"`
		Events       []tandem.Event      `json:"events"`
		InspectError string              `json:"inspect_error"`
	}{d.Room, players, snapshotJSON(d.Snapshot), events, d.InspectError})
}

// snapshotJSON is how the API carries a room's state: any bytes to the
// room type, so JSON is embedded as itself and anything else as a base64
// string (a client tells them apart by the value's JSON type), null when
// there is none.
func snapshotJSON(b []byte) json.RawMessage {
	switch {
	case len(b) == 0:
		return json.RawMessage("null")
	case json.Valid(b):
		return json.RawMessage(b)
	}
	enc, _ := json.Marshal(b) // a []byte marshals as a base64 string
	return enc
}

func (a *clusterAPI) playerLive(w http.ResponseWriter, r *http.Request) {
	s, err := a.svc.PlayerLiveStatus(r.Context(), ActorFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	rooms := s.Rooms
	if rooms == nil {
		rooms = []string{}
	}
	WriteJSON(w, http.StatusOK, struct {
		Online       bool       `json:"online"`
		Node         string     `json:"node"`
		SessionID    string     `json:"session_id"`
		Since        *time.Time `json:"since"`
		Rooms        []string   `json:"rooms"`
		Connected    bool       `json:"connected"`
		RTTMillis    float64    `json:"rtt_ms"`
		InspectError string     `json:"inspect_error"`
	}{s.Online, s.Node, s.SessionID, optionalTime(s.Since), rooms, s.Connected, s.RTTMillis, s.InspectError})
}

func (a *clusterAPI) commands(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			WriteError(w, r, tandem.Invalid([]tandem.FieldError{{Field: "limit", Message: "must be a whole number from 1 to 200"}}))
			return
		}
		limit = n
	}
	list, err := a.svc.Commands(r.Context(), ActorFrom(r.Context()), limit)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, commandsOut(list))
}

func (a *clusterAPI) sendCommand(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Kind     tandem.CommandKind `json:"kind"`
		Node     string             `json:"node"`
		PlayerID string             `json:"player_id"`
		RoomID   string             `json:"room_id"`
		Text     string             `json:"text"`
	}
	if err := DecodeJSON(w, r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	list, err := a.svc.SendCommand(r.Context(), ActorFrom(r.Context()),
		service.CommandRequest{Kind: in.Kind, Node: in.Node, PlayerID: in.PlayerID, RoomID: in.RoomID, Text: in.Text})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusAccepted, commandsOut(list))
}
