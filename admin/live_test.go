package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/clustertest"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/service"
)

// clusterEnv is testEnv whose service has a cluster: a real bus on an
// embedded NATS server, whose buckets the tests write as nodes would.
type clusterEnv struct {
	*testEnv
	bus *natsbus.Bus
}

func newClusterEnv(t *testing.T) *clusterEnv {
	t.Helper()
	return newClusterEnvWith(t, nil)
}

// newClusterEnvWith is newClusterEnv whose service sees the bus through
// wrap (nil: as it is).
func newClusterEnvWith(t *testing.T, wrap func(*natsbus.Bus) tandem.Cluster) *clusterEnv {
	t.Helper()
	// A long node TTL: the registry entries the tests write are never
	// rewritten, and must not expire on a slow machine.
	bus := clustertest.Connect(t, clustertest.StartNATS(t), natsbus.Config{Name: "web", NodeTTL: time.Hour})
	var cluster tandem.Cluster = bus
	if wrap != nil {
		cluster = wrap(bus)
	}
	return &clusterEnv{testEnv: newEnvWith(t, func(c *service.Config) { c.Cluster = cluster }), bus: bus}
}

func (e *clusterEnv) putNode(n tandem.NodeInfo) {
	e.t.Helper()
	if n.Heartbeat.IsZero() {
		n.Heartbeat = time.Now()
	}
	if n.StartedAt.IsZero() {
		n.StartedAt = n.Heartbeat.Add(-time.Hour)
	}
	if err := e.bus.PutNode(context.Background(), n); err != nil {
		e.t.Fatal(err)
	}
}

func (e *clusterEnv) putRoom(r tandem.RoomEntry) {
	e.t.Helper()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now().Add(-5 * time.Minute)
	}
	if err := e.bus.PutRoom(context.Background(), r); err != nil {
		e.t.Fatal(err)
	}
}

// operator logs in an admin with rooms:manage (no MFA needed).
func (e *clusterEnv) operator(name string) *browser {
	e.t.Helper()
	e.createAdmin(name, tandem.RoleOperator)
	b := e.browser()
	b.login(name, testPassword)
	return b
}

// support logs in an admin with rooms:read but not rooms:manage.
func (e *clusterEnv) support(name string) *browser {
	e.t.Helper()
	e.createAdmin(name, tandem.RoleSupport)
	b := e.browser()
	b.login(name, testPassword)
	return b
}

const scriptLabel = `<script>alert(1)</script>`

// twoNodesThreeRooms fills the registry and the directory.
func (e *clusterEnv) twoNodesThreeRooms(players ...string) {
	e.t.Helper()
	e.putNode(tandem.NodeInfo{ID: "node-a", URL: "ws://127.0.0.1:7701/ws", Version: "1.2.3", Connections: 12, Rooms: 2})
	e.putNode(tandem.NodeInfo{ID: "node-b", URL: "ws://127.0.0.1:7702/ws", Version: "1.2.4", Draining: true, Connections: 3, Rooms: 1})
	e.putRoom(tandem.RoomEntry{ID: "room-1", Type: "arena", Node: "node-a", Players: players, MaxPlayers: 4,
		Labels: map[string]string{"mode": "ranked", "note": scriptLabel}, Open: true})
	e.putRoom(tandem.RoomEntry{ID: "room-2", Type: "relay", Node: "node-a", MaxPlayers: 8, Labels: map[string]string{"mode": "casual"}})
	e.putRoom(tandem.RoomEntry{ID: "room-3", Type: "arena", Node: "node-b", MaxPlayers: 2, Locked: true})
}

var roomLinkRE = regexp.MustCompile(`<a href="/admin/rooms/([^"?/]+)">`)

// roomLinks returns the ids of the rooms a page links to, in order.
func roomLinks(t *testing.T, r response) []string {
	t.Helper()
	var ids []string
	for _, m := range roomLinkRE.FindAllStringSubmatch(r.body, -1) {
		id, err := url.PathUnescape(m[1])
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// sentCommands returns the ids of the commands a redirect after an
// action names, checking it goes back to back.
func sentCommands(t *testing.T, r response, back string) []string {
	t.Helper()
	wantStatus(t, r, http.StatusSeeOther)
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Path != back || loc.Query().Get("done") != "command-sent" {
		t.Fatalf("%s redirected to %s, want %s?done=command-sent…", r.Request.URL.Path, loc, back)
	}
	return loc.Query()["command"]
}

func TestNodesPageShowsEveryNodeWithItsStatus(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms()
	b := e.operator("oscar")

	r := b.get("/admin/nodes")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "<code>node-a</code>", "<code>ws://127.0.0.1:7701/ws</code>", "1.2.3", `<span class="badge badge-ok">live</span>`,
		"<code>node-b</code>", `<span class="badge badge-warn">draining</span>`, "<td>12</td>",
		`hx-get="/admin/nodes" hx-trigger="every 2s"`)
	// A drain button for the live node only.
	if got := strings.Count(r.body, `action="/admin/nodes/`); got != 1 {
		t.Errorf("%d drain forms, want 1 (the live node's):\n%s", got, r.body)
	}
	wantContains(t, r, `action="/admin/nodes/node-a/drain"`, `hx-confirm="Drain node node-a?`)
}

func TestRoomsPageFiltersByTypeLabelAndNode(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms("p-1", "p-2")
	b := e.support("sam")

	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{"room-1", "room-2", "room-3"}},
		{"?type=arena", []string{"room-1", "room-3"}},
		{"?label=" + url.QueryEscape("mode=ranked"), []string{"room-1"}},
		{"?node=node-b", []string{"room-3"}},
		{"?type=arena&node=node-a", []string{"room-1"}},
		{"?type=nothing", nil},
	} {
		r := b.get("/admin/rooms" + c.query)
		wantStatus(t, r, http.StatusOK)
		if diff := cmp.Diff(c.want, roomLinks(t, r), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("rooms%s (-want +got):\n%s", c.query, diff)
		}
	}
	r := b.get("/admin/rooms?node=node-a")
	wantContains(t, r, "<td>2 / 4</td>", `<span class="badge badge-ok">open</span>`, " ago</time>",
		`hx-get="/admin/rooms?node=node-a" hx-trigger="every 2s"`)
	r = b.get("/admin/rooms?node=node-b")
	wantContains(t, r, `<span class="badge badge-warn">locked</span>`)

	// A room's labels are shown, as text.
	r = b.get("/admin/rooms")
	row := roomRow(t, r, "room-1")
	for _, want := range []string{"<code>mode=ranked</code>", "<code>note=&lt;script&gt;alert(1)&lt;/script&gt;</code>"} {
		if !strings.Contains(row, want) {
			t.Errorf("room-1's row lacks %q:\n%s", want, row)
		}
	}
	wantLacks(t, r, scriptLabel)
	if row := roomRow(t, r, "room-3"); strings.Contains(row, `<ul class="tags">`) {
		t.Errorf("room-3 has no labels, its row shows some:\n%s", row)
	}
}

// roomRow returns the rooms table's row of room id.
func roomRow(t *testing.T, r response, id string) string {
	t.Helper()
	link := strings.Index(r.body, `<a href="/admin/rooms/`+id+`">`)
	if link < 0 {
		t.Fatalf("no row for room %s:\n%s", id, r.body)
	}
	start := strings.LastIndex(r.body[:link], "<tr>")
	end := strings.Index(r.body[link:], "</tr>")
	return r.body[start : link+end]
}

func TestRoomPageShowsTheRoomAndItsPlayersAsText(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms("p-1", `<b>p-2</b>`)
	b := e.operator("oscar")

	r := b.get("/admin/rooms/room-1")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "<h1>Room room-1</h1>", "<dd>arena</dd>", "<code>node-a</code>", "2 of at most 4",
		"<code>mode=ranked</code>", "<code>note=&lt;script&gt;alert(1)&lt;/script&gt;</code>",
		`<a href="/admin/players/p-1"><code>p-1</code></a>`, "<code>&lt;b&gt;p-2&lt;/b&gt;</code>",
		`action="/admin/rooms/room-1/close"`, `action="/admin/rooms/room-1/lock"`, `action="/admin/rooms/room-1/notice"`,
		`action="/admin/rooms/room-1/kick"`, `<input type="hidden" name="player_id" value="&lt;b&gt;p-2&lt;/b&gt;">`,
		`hx-get="/admin/rooms/room-1" hx-trigger="every 2s"`)
	wantLacks(t, r, scriptLabel, "<b>p-2", `action="/admin/rooms/room-1/unlock"`)

	// A locked room offers Unlock instead of Lock.
	r = b.get("/admin/rooms/room-3")
	wantContains(t, r, `action="/admin/rooms/room-3/unlock"`)
	wantLacks(t, r, `action="/admin/rooms/room-3/lock"`)

	r = b.get("/admin/rooms/no-such-room")
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r, "<h1>Not found</h1>")
}

func TestCloseRoomCreatesAPendingCommand(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms("p-1")
	b := e.operator("oscar")

	ids := sentCommands(t, b.post("/admin/rooms/room-1/close", nil), "/admin/rooms/room-1")
	if len(ids) != 1 {
		t.Fatalf("close sent %v, want one command", ids)
	}
	r := b.get("/admin/rooms/room-1?done=command-sent&command=" + ids[0])
	wantContains(t, r, `<div class="notice" role="status">Command `+ids[0]+` sent: pending until its node acknowledges it.</div>`)

	r = b.get("/admin/commands")
	wantStatus(t, r, http.StatusOK)
	row := tableRow(t, r, "command-"+ids[0])
	for _, want := range []string{"<code>close_room</code>", "<code>node-a</code>", `room <a href="/admin/rooms/room-1"><code>room-1</code></a>`,
		`<span class="badge">pending</span>`, "<td>oscar</td>"} {
		if !strings.Contains(row, want) {
			t.Errorf("command row lacks %q:\n%s", want, row)
		}
	}
	// Lock and a notice to the room go the same way.
	sentCommands(t, b.post("/admin/rooms/room-1/lock", nil), "/admin/rooms/room-1")
	sentCommands(t, b.post("/admin/rooms/room-1/notice", url.Values{"text": {"Server restarts in 5 minutes"}}), "/admin/rooms/room-1")
	r = b.get("/admin/commands")
	wantContains(t, r, "<code>lock_room</code>", "<code>notice</code>", "“Server restarts in 5 minutes”")
}

// tableRow returns the table row whose id is id.
func tableRow(t *testing.T, r response, id string) string {
	t.Helper()
	start := strings.Index(r.body, `<tr id="`+id+`">`)
	if start < 0 {
		t.Fatalf("no row %s:\n%s", id, r.body)
	}
	end := strings.Index(r.body[start:], "</tr>")
	return r.body[start : start+end]
}

func TestDrainAndNoticeToEveryoneWriteCommandsPerNode(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms()
	e.putNode(tandem.NodeInfo{ID: "node-c", URL: "ws://127.0.0.1:7703/ws", Version: "1.2.3"})
	b := e.operator("oscar")

	ids := sentCommands(t, b.post("/admin/nodes/node-a/drain", nil), "/admin/nodes")
	if len(ids) != 1 {
		t.Fatalf("drain sent %v, want one command", ids)
	}
	r := b.get("/admin/commands")
	row := tableRow(t, r, "command-"+ids[0])
	if !strings.Contains(row, "<code>drain</code>") || !strings.Contains(row, "<code>node-a</code>") {
		t.Errorf("drain row:\n%s", row)
	}

	ids = sentCommands(t, b.post("/admin/commands/notice", url.Values{"text": {"Hello, everyone"}}), "/admin/commands")
	if len(ids) < 2 {
		t.Fatalf("a notice to everyone sent %v, want one command per live node", ids)
	}
	q := url.Values{"done": {"command-sent"}, "command": ids}
	r = b.get("/admin/commands?" + q.Encode())
	wantContains(t, r, "commands sent, one to each node", "every session of the node", "“Hello, everyone”")
	for _, id := range ids {
		tableRow(t, r, "command-"+id)
	}
}

func TestARefusedCommandShowsTheErrorOnThePage(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms()
	b := e.operator("oscar")
	bob := e.guest("bob-phone", "Bob").Player

	// A notice without text: the form is shown again, saying so.
	r := b.post("/admin/rooms/room-1/notice", url.Values{"text": {""}})
	if r.StatusCode < 400 || r.StatusCode >= 500 {
		t.Fatalf("empty notice: status %d, want a 4xx:\n%s", r.StatusCode, r.body)
	}
	wantContains(t, r, "<h1>Room room-1</h1>", `id="notice-text"`)
	if !strings.Contains(r.body, `class="field-error"`) && !strings.Contains(r.body, `<div class="alert" role="alert">`) {
		t.Errorf("empty notice: no error shown:\n%s", r.body)
	}

	// Kicking a player who is offline: the player page says why.
	r = b.post(playerURL(bob.ID)+"/kick", nil)
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r, "<h1>Player Bob</h1>", `<div class="alert" role="alert">`)
}

func TestWithoutRoomsManageThereAreNoActions(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms("p-1")
	bob := e.guest("bob-phone", "Bob").Player
	claimPresence(t, e, bob.ID, "node-a", "sess-1")
	b := e.support("sam")

	for _, path := range []string{"/admin/nodes", "/admin/rooms", "/admin/rooms/room-1", "/admin/commands", playerURL(bob.ID)} {
		r := b.get(path)
		wantStatus(t, r, http.StatusOK)
		wantLacks(t, r, "Drain</button>", "Close room", "Lock</button>", "Kick</button>", "Send notice", "Send to everyone")
		for _, tg := range tags(r.body) {
			action := tg.attrs["action"]
			if tg.name != "form" {
				continue
			}
			for _, suffix := range []string{"/drain", "/close", "/lock", "/unlock", "/notice", "/kick"} {
				if strings.HasSuffix(action, suffix) {
					t.Errorf("GET %s: a form posting to %s", path, action)
				}
			}
		}
	}
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/admin/nodes/node-a/drain", nil},
		{"/admin/rooms/room-1/close", nil},
		{"/admin/rooms/room-1/lock", nil},
		{"/admin/rooms/room-1/unlock", nil},
		{"/admin/rooms/room-1/notice", url.Values{"text": {"hi"}}},
		{"/admin/rooms/room-1/kick", url.Values{"player_id": {"p-1"}}},
		{"/admin/commands/notice", url.Values{"text": {"hi"}}},
		{playerURL(bob.ID) + "/kick", nil},
		{playerURL(bob.ID) + "/notice", url.Values{"text": {"hi"}}},
	} {
		r := b.post(c.path, c.form)
		wantStatus(t, r, http.StatusForbidden)
		wantContains(t, r, "rooms:manage")
	}
	r := b.get("/admin/commands")
	wantContains(t, r, "No commands sent yet.")
}

func TestLiveFragmentsAreRenderedAlone(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms("p-1")
	b := e.operator("oscar")
	sentCommands(t, b.post("/admin/rooms/room-2/close", nil), "/admin/rooms/room-2")

	for _, c := range []struct {
		path, target string
		want         []string
	}{
		{"/admin/nodes", "nodes-live", []string{"<code>node-a</code>", "<code>node-b</code>"}},
		{"/admin/rooms?type=arena", "rooms-live", []string{"room-1", "room-3"}},
		{"/admin/rooms/room-1", "room-live", []string{"<code>p-1</code>", "Recent events"}},
		{"/admin/commands", "commands-live", []string{"<code>close_room</code>"}},
	} {
		r := b.get(c.path, "HX-Request", "true", "HX-Target", c.target)
		wantStatus(t, r, http.StatusOK)
		wantContains(t, r, c.want...)
		wantLacks(t, r, "<html", "<h1>", `id="`+c.target+`"`, "<nav")
		if !strings.HasPrefix(strings.TrimSpace(r.body), "<") || r.Header.Get("HX-Retarget") != "" {
			t.Errorf("GET %s for %s: not a fragment:\n%s", c.path, c.target, r.body)
		}
	}
	// The filter form stays outside the polled table.
	r := b.get("/admin/rooms?type=arena", "HX-Request", "true", "HX-Target", "rooms-live")
	wantLacks(t, r, `name="type"`, "room-2")

	// A room that closes while its page polls says so in place, and the
	// poll stops (htmx stops polling on 286).
	r = b.get("/admin/rooms/gone-room", "HX-Request", "true", "HX-Target", "room-live")
	wantStatus(t, r, 286)
	wantContains(t, r, "no longer in the directory")
	wantLacks(t, r, "<html", "<h1>")
}

func claimPresence(t *testing.T, e *clusterEnv, player, node, session string) {
	t.Helper()
	if _, err := e.bus.ClaimPresence(context.Background(), tandem.Presence{PlayerID: player, Node: node, SessionID: session,
		Since: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

func TestPlayerPageShowsLiveStatusAndActions(t *testing.T) {
	e := newClusterEnv(t)
	alice := e.guest("alice-phone", "Alice").Player
	bob := e.guest("bob-phone", "Bob").Player
	e.twoNodesThreeRooms(alice.ID)
	claimPresence(t, e, alice.ID, "node-a", "sess-alice")
	b := e.operator("oscar")

	r := b.get(playerURL(alice.ID))
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<h2 id="live-heading">Live</h2>`, `<span class="badge badge-ok">online</span>`, "<code>node-a</code>",
		"<code>sess-alice</code>", `<a href="/admin/rooms/room-1"><code>room-1</code></a>`,
		`action="`+playerURL(alice.ID)+`/kick"`, `action="`+playerURL(alice.ID)+`/notice"`)

	ids := sentCommands(t, b.post(playerURL(alice.ID)+"/notice", url.Values{"text": {"Please stop"}}), playerURL(alice.ID))
	ids = append(ids, sentCommands(t, b.post(playerURL(alice.ID)+"/kick", nil), playerURL(alice.ID))...)
	r = b.get("/admin/commands")
	for i, kind := range []string{"notice", "kick"} {
		row := tableRow(t, r, "command-"+ids[i])
		for _, want := range []string{"<code>" + kind + "</code>", "<code>node-a</code>", `player <a href="` + playerURL(alice.ID) + `">`} {
			if !strings.Contains(row, want) {
				t.Errorf("%s row lacks %q:\n%s", kind, want, row)
			}
		}
	}

	// Offline: no session, no actions.
	r = b.get(playerURL(bob.ID))
	wantContains(t, r, `<span class="badge">offline</span>`)
	wantLacks(t, r, `action="`+playerURL(bob.ID)+`/kick"`, `action="`+playerURL(bob.ID)+`/notice"`)
}

func TestRoomPageShowsStoredEvents(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms("p-1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.svc.RunClusterJobs(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	for _, ev := range []tandem.Event{
		{ID: "ev-1", Node: "node-a", Kind: tandem.EventRoomJoined, At: at, RoomID: "room-1", PlayerID: "p-1"},
		{ID: "ev-2", Node: "node-a", Kind: tandem.EventRoomLeft, At: at.Add(time.Second), RoomID: "room-1", PlayerID: "p-9", Reason: scriptLabel},
	} {
		if err := e.bus.PublishEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	b := e.operator("oscar")
	var r response
	for deadline := time.Now().Add(20 * time.Second); ; {
		r = b.get("/admin/rooms/room-1", "HX-Request", "true", "HX-Target", "room-live")
		if strings.Contains(r.body, "room.left") || time.Now().After(deadline) {
			break
		}
		waitABit()
	}
	wantContains(t, r, "<code>room.joined</code>", "<code>room.left</code>", "&lt;script&gt;alert(1)&lt;/script&gt;",
		`<a href="/admin/players/p-9"><code>p-9</code></a>`, at.Add(time.Second).Format("2006-01-02 15:04:05 UTC"))
	wantLacks(t, r, scriptLabel)
	if strings.Index(r.body, "room.left") > strings.Index(r.body, "room.joined") {
		t.Errorf("events not newest first:\n%s", r.body)
	}
}

// waitABit paces a poll loop; correctness never depends on it.
func waitABit() { <-time.After(20 * time.Millisecond) }

func TestRoomAndPlayerPagesShowWhatTheNodeAnswers(t *testing.T) {
	e := newClusterEnv(t)
	alice := e.guest("alice-phone", "Alice").Player
	bob := e.guest("bob-phone", "Bob").Player
	e.twoNodesThreeRooms(alice.ID, bob.ID)
	e.putRoom(tandem.RoomEntry{ID: "room-4", Type: "chess", Node: "node-a", Players: []string{alice.ID}})
	claimPresence(t, e, alice.ID, "node-a", "sess-alice")
	claimPresence(t, e, bob.ID, "node-b", "sess-bob")
	since := time.Now().Add(-time.Minute)
	aliceLive := tandem.LivePlayer{PlayerID: alice.ID, SessionID: "sess-alice", Connected: true, RTTMillis: 12.345, Rooms: []string{"room-1"}, Since: since}
	bobLive := tandem.LivePlayer{PlayerID: bob.ID, SessionID: "sess-bob", RTTMillis: 80, Rooms: []string{"room-1"}, Since: since}
	clustertest.ServeInspections(e.t, e.bus, "node-a", clustertest.Inspector{
		Rooms: map[string]tandem.RoomInspection{
			"room-1": {Players: []tandem.LivePlayer{aliceLive, bobLive}, Snapshot: []byte(`{"turn":"alice","note":"` + scriptLabel + `"}`)},
			"room-4": {Players: []tandem.LivePlayer{aliceLive}, Snapshot: []byte{0xff, 0x00, '<', 'b', '>'}},
		},
		Players: map[string]tandem.LivePlayer{alice.ID: aliceLive},
	})
	b := e.operator("oscar")

	r := b.get("/admin/rooms/room-1")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<span class="badge badge-ok">connected</span>`, "12.3 ms", `<span class="badge badge-warn">held</span>`, "80.0 ms",
		"<pre>{\n  &#34;turn&#34;: &#34;alice&#34;,\n  &#34;note&#34;: &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;\n}</pre>")
	wantLacks(t, r, scriptLabel, "did not tell")

	// Not JSON: described, never written out.
	r = b.get("/admin/rooms/room-4")
	wantContains(t, r, "<pre>binary state, 5 bytes</pre>")
	wantLacks(t, r, "<b>")

	// node-b serves no inspections: the directory's data and a note.
	r = b.get("/admin/rooms/room-3")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "<code>node-b</code>", "The room's node did not tell its sessions and state: node node-b did not answer")
	wantLacks(t, r, `<h2 id="state-heading">`)

	r = b.get(playerURL(alice.ID))
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<dt>Connection</dt><dd><span class="badge badge-ok">connected</span></dd>`, "<dt>RTT</dt><dd>12.3 ms</dd>")
	r = b.get(playerURL(bob.ID))
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<span class="badge badge-ok">online</span>`, "<code>sess-bob</code>", "unknown: node node-b did not answer")
	wantLacks(t, r, "<dt>RTT</dt>")
}
