package room

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem/protocol"
)

func arenaScript(t *testing.T, seed uint64) (*script, *arena) {
	s := newScript(t, Config{Type: ArenaType(), Seed: seed})
	return s, s.r.handler.(*arena)
}

// playerIn reads a player's entity from the arena's state.
func playerIn(t *testing.T, a *arena, id string) arenaPlayer {
	t.Helper()
	raw, ok := a.state.Get("p:" + id)
	if !ok {
		t.Fatalf("no entity for %s", id)
	}
	var p arenaPlayer
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func move(dx, dy int) Message {
	return Message{Topic: "move", Data: fmt.Appendf(nil, `{"dx":%d,"dy":%d}`, dx, dy), Delivery: protocol.Delivery_DELIVERY_ROOM}
}

// towardCentre returns the direction from a coordinate to the arena's middle.
func towardCentre(v, size int) int {
	if v < size/2 {
		return 1
	}
	return -1
}

func TestArenaTypeIsAuthoritativeAt20Hz(t *testing.T) {
	typ := ArenaType()
	if typ.Name != "arena" || typ.TickRate != 20 || typ.MaxPlayers != ArenaMaxPlayers {
		t.Errorf("arena type = %+v", typ)
	}
}

func TestArenaSpawnsJoinersInsideTheArena(t *testing.T) {
	s, a := arenaScript(t, 1)
	alice := s.join("alice", protocol.CodecJSON)
	p := playerIn(t, a, "alice")
	// The joined snapshot is taken after the Join hook: it has the joiner.
	joinedState := fmt.Sprintf(`{"tick":0,"entities":{"p:alice":{"x":%d,"y":%d,"dx":0,"dy":0,"connected":true}}}`, p.X, p.Y)
	if got := string(alice.lastReply(t).GetJoined().State); got != joinedState {
		t.Errorf("alice's joined state = %s, want %s", got, joinedState)
	}
	s.tick()

	if p.X < 0 || p.X > ArenaWidth || p.Y < 0 || p.Y > ArenaHeight || !p.Connected || p.DX != 0 || p.DY != 0 {
		t.Errorf("alice spawned as %+v", p)
	}
	want := fmt.Sprintf(`{"tick":1,"set":{"p:alice":{"x":%d,"y":%d,"dx":0,"dy":0,"connected":true}},"del":[]}`, p.X, p.Y)
	if diff := cmp.Diff([]string{want}, deltas(alice)); diff != "" {
		t.Errorf("alice's deltas (-want +got):\n%s", diff)
	}

	bob := s.join("bob", protocol.CodecBinary)
	b := playerIn(t, a, "bob")
	wantState := fmt.Sprintf(`{"tick":1,"entities":{"p:alice":{"x":%d,"y":%d,"dx":0,"dy":0,"connected":true},"p:bob":{"x":%d,"y":%d,"dx":0,"dy":0,"connected":true}}}`, p.X, p.Y, b.X, b.Y)
	if got := string(bob.lastReply(t).GetJoined().State); got != wantState {
		t.Errorf("bob's joined state = %s, want %s", got, wantState)
	}
	s.tick()
	for _, m := range []*captureMember{alice, bob} {
		if got := last(deltas(m)); !strings.Contains(got, `"p:bob":`) {
			t.Errorf("%s's delta after bob joined: %s", m.player.ID, got)
		}
	}
}

func TestArenaMovesPlayersBySpeedEachTick(t *testing.T) {
	s, a := arenaScript(t, 2)
	alice := s.join("alice", protocol.CodecJSON)
	s.tick()
	start := playerIn(t, a, "alice")
	dx, dy := towardCentre(start.X, ArenaWidth), towardCentre(start.Y, ArenaHeight)

	s.send("alice", move(dx, dy))
	for range 3 {
		s.tick()
	}

	want := arenaPlayer{X: start.X + 3*ArenaSpeed*dx, Y: start.Y + 3*ArenaSpeed*dy, DX: dx, DY: dy, Connected: true}
	if diff := cmp.Diff(want, playerIn(t, a, "alice")); diff != "" {
		t.Errorf("alice after 3 ticks (-want +got):\n%s", diff)
	}
	wantDelta := fmt.Sprintf(`{"tick":4,"set":{"p:alice":{"x":%d,"y":%d,"dx":%d,"dy":%d,"connected":true}},"del":[]}`, want.X, want.Y, dx, dy)
	if got := last(deltas(alice)); got != wantDelta {
		t.Errorf("last delta = %s, want %s", got, wantDelta)
	}
	if n := len(deltas(alice)); n != 4 {
		t.Errorf("%d deltas, want one per tick", n)
	}
}

func TestArenaClampsDirectionAndStopsAtTheEdges(t *testing.T) {
	s, a := arenaScript(t, 3)
	alice := s.join("alice", protocol.CodecJSON)
	s.send("alice", move(5, -9))
	s.tick()
	if p := playerIn(t, a, "alice"); p.DX != 1 || p.DY != -1 {
		t.Errorf("direction (5,-9) became (%d,%d), want (1,-1)", p.DX, p.DY)
	}
	for range ArenaWidth/ArenaSpeed + 1 {
		s.tick()
	}
	if p := playerIn(t, a, "alice"); p.X != ArenaWidth || p.Y != 0 {
		t.Errorf("alice ran to (%d,%d), want the corner (%d,0)", p.X, p.Y, ArenaWidth)
	}

	// Pressing against the wall changes nothing, so nothing is sent.
	before := len(deltas(alice))
	s.tick()
	if n := len(deltas(alice)) - before; n != 0 {
		t.Errorf("%d deltas while standing at the wall", n)
	}
}

func TestArenaIgnoresAndCountsMalformedMessages(t *testing.T) {
	s, a := arenaScript(t, 4)
	s.join("alice", protocol.CodecJSON)
	s.tick()
	start := playerIn(t, a, "alice")

	bad := []Message{
		{Topic: "jump", Data: []byte(`{"dx":1,"dy":0}`)},
		{Topic: "move", Data: []byte(`not json`)},
		{Topic: "move", Data: []byte(`null`)},
		{Topic: "move", Data: []byte(`[1,0]`)},
		{Topic: "move", Data: []byte(`{"dx":0.5,"dy":0}`)},
		{Topic: "move", Data: []byte(`{"dx":"1"}`)},
		{Topic: "move", Data: []byte(`{"dx":99999999999999999999}`)},
	}
	for _, m := range bad {
		s.send("alice", m)
	}
	s.tick()
	if a.ignored != len(bad) {
		t.Errorf("ignored %d messages, want %d", a.ignored, len(bad))
	}
	if diff := cmp.Diff(start, playerIn(t, a, "alice")); diff != "" {
		t.Errorf("bad messages moved alice (-before +after):\n%s", diff)
	}

	s.send("alice", Message{Topic: "move", Data: []byte(`{"dx":1,"extra":true}`)})
	if p := playerIn(t, a, "alice"); p.DX != 1 || p.DY != 0 || a.ignored != len(bad) {
		t.Errorf("a move with an unknown field: direction (%d,%d), ignored %d", p.DX, p.DY, a.ignored)
	}
}

func TestArenaKeepsDisconnectedPlayersStillAndMarked(t *testing.T) {
	s, a := arenaScript(t, 5)
	alice := s.join("alice", protocol.CodecJSON)
	s.join("bob", protocol.CodecJSON)
	s.tick()
	bob := playerIn(t, a, "bob")
	s.send("bob", move(towardCentre(bob.X, ArenaWidth), 0))
	s.tick()

	s.disconnect("bob")
	s.tick()
	s.tick()
	parked := playerIn(t, a, "bob")
	want := arenaPlayer{X: bob.X + ArenaSpeed*towardCentre(bob.X, ArenaWidth), Y: bob.Y}
	if diff := cmp.Diff(want, parked); diff != "" {
		t.Errorf("disconnected bob (-want +got):\n%s", diff)
	}
	if got := last(deltas(alice)); !strings.Contains(got, `"connected":false`) {
		t.Errorf("alice was not told bob is disconnected: %s", got)
	}

	s.rejoin("bob", nil)
	s.tick()
	if p := playerIn(t, a, "bob"); !p.Connected {
		t.Error("bob is still marked disconnected after his rejoin")
	}
}

func TestArenaDeletesPlayersWhoLeave(t *testing.T) {
	s, a := arenaScript(t, 6)
	alice := s.join("alice", protocol.CodecJSON)
	s.join("bob", protocol.CodecJSON)
	s.tick()
	s.leave("bob", protocol.LeaveReason_LEAVE_REASON_REQUESTED)
	s.tick()

	if got, want := last(deltas(alice)), `{"tick":2,"set":{},"del":["p:bob"]}`; got != want {
		t.Errorf("alice's delta = %s, want %s", got, want)
	}
	if diff := cmp.Diff([]string{"p:alice"}, a.state.Keys()); diff != "" {
		t.Errorf("entities (-want +got):\n%s", diff)
	}
}

func TestArenaGapCarriesTheSnapshot(t *testing.T) {
	s, a := arenaScript(t, 7)
	s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecJSON)
	s.tick()
	s.rejoin("bob", &protocol.StreamPos{Room: "room-1", Epoch: 9}) // an epoch bob never had

	gap := last(bob.Frames()).GetGap()
	if gap == nil {
		t.Fatalf("bob got %s, want a gap", summary(last(bob.Frames())))
	}
	if got, want := string(gap.State), string(a.state.Snapshot(s.r, nil)); got != want {
		t.Errorf("gap state = %s, want the snapshot %s", got, want)
	}
}
