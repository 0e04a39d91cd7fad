package admin_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/service"
)

func TestAnInvalidRoomFilterIsNotPolledAndItsPollIsAnsweredInPlace(t *testing.T) {
	e := newClusterEnv(t)
	e.twoNodesThreeRooms()
	b := e.support("sam")

	r := b.get("/admin/rooms?label=foo")
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="rooms-live"`, "write key=value", "No rooms shown: the filter cannot be used")
	wantLacks(t, r, `hx-trigger="every 2s"`)

	// A poll that asks all the same (a page loaded before) gets the
	// fragment with the error and a status that ends the polling, never
	// the page swapped over the form being typed in.
	r = b.get("/admin/rooms?label=foo", "HX-Request", "true", "HX-Target", "rooms-live")
	wantStatus(t, r, 286)
	wantContains(t, r, "No rooms shown: the filter cannot be used (label: write key=value)")
	wantLacks(t, r, "<html", "<h1>", `name="label"`, "room-1")
	if h := r.Header.Get("HX-Retarget"); h != "" {
		t.Errorf("the poll of an invalid filter is retargeted to %s", h)
	}

	// A valid filter polls again.
	r = b.get("/admin/rooms?label=" + url.QueryEscape("mode=casual"))
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `hx-trigger="every 2s"`, "room-2")
}

// flakyCluster is the bus with its room directory out of reach while
// down is set, as when the NATS server is away.
type flakyCluster struct {
	*natsbus.Bus
	down *atomic.Bool
}

func (c flakyCluster) Room(ctx context.Context, id string) (tandem.RoomEntry, error) {
	if c.down.Load() {
		return tandem.RoomEntry{}, errors.New("nats: no servers available for connection")
	}
	return c.Bus.Room(ctx, id)
}

func TestRoomPageSaysTheClusterIsUnavailableInPlaceAndKeepsPolling(t *testing.T) {
	var down atomic.Bool
	e := newClusterEnvWith(t, func(bus *natsbus.Bus) tandem.Cluster { return flakyCluster{Bus: bus, down: &down} })
	e.twoNodesThreeRooms("p-1")
	b := e.operator("oscar")
	down.Store(true)

	r := b.get("/admin/rooms/room-1")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "<h1>Room room-1</h1>", "The cluster cannot be read now", `hx-get="/admin/rooms/room-1" hx-trigger="every 2s"`)

	poll := func() response {
		return b.get("/admin/rooms/room-1", "HX-Request", "true", "HX-Target", "room-live")
	}
	r = poll()
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "The cluster cannot be read now")
	wantLacks(t, r, "<html", "<h1>", "Close room")
	if h := r.Header.Get("HX-Retarget"); h != "" {
		t.Errorf("the poll of an unreadable room is retargeted to %s", h)
	}

	// Back: the next poll shows the room.
	down.Store(false)
	r = poll()
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "<code>p-1</code>", "Close room")
	wantLacks(t, r, "cannot be read now")
}

func TestCommandsSentNoticeCountsTheIDsItShows(t *testing.T) {
	e := newClusterEnv(t)
	b := e.operator("oscar")

	q := url.Values{"done": {"command-sent"}, "command": {"c-1", "c-2", "c-3"}}
	r := b.get("/admin/commands?" + q.Encode())
	wantContains(t, r, "3 commands sent, one to each node (c-1, c-2, c-3): pending")

	q = url.Values{"done": {"command-sent"}}
	for i := range 1000 {
		q.Add("command", "c-"+strconv.Itoa(i))
	}
	r = b.get("/admin/commands?" + q.Encode())
	wantContains(t, r, "20… commands sent, one to each node (c-0, c-1, ", "c-19, …): pending")
	wantLacks(t, r, "1000", "c-20,")
}

func TestPlayerPageWithoutRoomsReadShowsNoRooms(t *testing.T) {
	e := newClusterEnv(t)
	alice := e.guest("alice-phone", "Alice").Player
	e.twoNodesThreeRooms(alice.ID)
	claimPresence(t, e, alice.ID, "node-a", "sess-alice")
	if _, err := e.svc.CreateRole(context.Background(), service.CLIActor("test"),
		service.RoleInput{Name: "helpdesk", Permissions: []tandem.Permission{tandem.PermPlayersRead}}); err != nil {
		t.Fatal(err)
	}
	e.loadRoles()
	e.createAdmin("hana", "helpdesk")
	b := e.browser()
	b.login("hana", testPassword)

	r := b.get(playerURL(alice.ID))
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<span class="badge badge-ok">online</span>`, "<code>node-a</code>")
	wantLacks(t, r, "room-1", "<dt>Rooms</dt>")
	if strings.Contains(r.body, "/admin/rooms/") {
		t.Errorf("a player page for an admin without rooms:read links to a room:\n%s", r.body)
	}
}
