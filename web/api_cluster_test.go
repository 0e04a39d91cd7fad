package web_test

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/clustertest"
	"github.com/tandemhq/tandem/internal/servicetest"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// newClusterEnv is newEnv with a bus on an embedded NATS server, and a
// node n1 answering inspections with h.
func newClusterEnv(t *testing.T, h tandem.InspectHandler) (*testEnv, *natsbus.Bus) {
	t.Helper()
	bus := clustertest.Connect(t, clustertest.StartNATS(t), natsbus.Config{Name: "web", NodeTTL: time.Hour, RequestTimeout: time.Second})
	clustertest.ServeInspections(t, bus, "n1", h)

	log := slog.New(slog.DiscardHandler)
	se := servicetest.New(t, func(c *service.Config) { c.Logger = log; c.Cluster = bus })
	e := &testEnv{t: t, store: se.Store, svc: se.Service, clock: se.Clock, logs: &syncBuffer{}, roles: se.Roles}
	s, err := web.New(web.Config{Service: e.svc, Logger: log, Routes: web.APIRoutes(e.svc, web.Cookies{})})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e, bus
}

func TestRoomAndPlayerLiveAPIsCarryTheNodesAnswer(t *testing.T) {
	now := time.Now().UTC()
	p1 := tandem.LivePlayer{PlayerID: "p1", SessionID: "s1", Connected: true, RTTMillis: 12.5, Rooms: []string{"r1"}, Since: now}
	e, bus := newClusterEnv(t, clustertest.Inspector{
		Rooms: map[string]tandem.RoomInspection{
			"r1": {Players: []tandem.LivePlayer{p1}, Snapshot: []byte(`{"turn":"p1"}`)},
			"r2": {Players: []tandem.LivePlayer{p1}, Snapshot: []byte{0xff, 0x00}},
		},
		Players: map[string]tandem.LivePlayer{"p1": p1},
	})
	ctx := t.Context()
	for _, r := range []tandem.RoomEntry{
		{ID: "r1", Type: "relay", Node: "n1", Players: []string{"p1"}, CreatedAt: now},
		{ID: "r2", Type: "chess", Node: "n1", Players: []string{"p1"}, CreatedAt: now},
		{ID: "r3", Type: "relay", Node: "gone", Players: []string{"p2"}, CreatedAt: now},
	} {
		if err := bus.PutRoom(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bus.ClaimPresence(ctx, tandem.Presence{PlayerID: "p1", Node: "n1", SessionID: "s1", Since: now}); err != nil {
		t.Fatal(err)
	}
	// A presence counts only on a live node.
	if err := bus.PutNode(ctx, tandem.NodeInfo{ID: "n1", URL: "ws://n1/ws", Heartbeat: now}); err != nil {
		t.Fatal(err)
	}
	secret, _ := e.apiKey("ops", e.roles[tandem.RoleViewer])
	c := e.client()
	bearer := []string{"Authorization", "Bearer " + secret}

	type roomOut struct {
		Room         tandem.RoomEntry    `json:"room"`
		Players      []tandem.LivePlayer `json:"players"`
		Snapshot     json.RawMessage     `json:"snapshot"`
		InspectError string              `json:"inspect_error"`
	}
	get := func(path string, v any) {
		t.Helper()
		r := e.do(c, "GET", path, nil, bearer...)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, v)
	}
	var room roomOut
	get("/api/admin/v1/rooms/r1", &room)
	if string(room.Snapshot) != `{"turn":"p1"}` || len(room.Players) != 1 || room.Players[0].RTTMillis != 12.5 || room.InspectError != "" {
		t.Errorf("room r1 = %+v (snapshot %s), want the node's players and the JSON snapshot as itself", room, room.Snapshot)
	}
	room = roomOut{}
	get("/api/admin/v1/rooms/r2", &room)
	if want, _ := json.Marshal(base64.StdEncoding.EncodeToString([]byte{0xff, 0x00})); string(room.Snapshot) != string(want) {
		t.Errorf("room r2 snapshot %s, want the base64 string %s", room.Snapshot, want)
	}
	room = roomOut{}
	get("/api/admin/v1/rooms/r3", &room)
	if room.Room.Node != "gone" || room.InspectError == "" || len(room.Players) != 0 || string(room.Snapshot) != "null" {
		t.Errorf("room r3 = %+v (snapshot %s), want the directory's entry and an inspect error", room, room.Snapshot)
	}

	type liveOut struct {
		Online    bool     `json:"online"`
		Connected bool     `json:"connected"`
		RTTMillis float64  `json:"rtt_ms"`
		Rooms     []string `json:"rooms"`
	}
	var live liveOut
	get("/api/admin/v1/players/p1/live", &live)
	if !live.Online || !live.Connected || live.RTTMillis != 12.5 || !slices.Equal(live.Rooms, []string{"r1", "r2"}) {
		t.Errorf("p1 live = %+v, want online, connected, 12.5 ms, in r1 and r2", live)
	}

	// The rooms a player is in are rooms:read data: a key reading players
	// only is told where the player is connected, and no room.
	playersOnly, _ := e.apiKey("helpdesk", e.createRole("helpdesk", tandem.PermPlayersRead))
	r := e.do(c, "GET", "/api/admin/v1/players/p1/live", nil, "Authorization", "Bearer "+playersOnly)
	wantStatus(t, r, http.StatusOK)
	live = liveOut{}
	r.decode(t, &live)
	if !live.Online || live.Rooms == nil || len(live.Rooms) != 0 {
		t.Errorf("p1 live without rooms:read = %+v, want online and rooms []", live)
	}
}
