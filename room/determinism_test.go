package room

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// snapshotTap wraps a room's handler and records, after every tick, the
// snapshot each member would get at that moment.
type snapshotTap struct {
	Handler
	ticks atomic.Int64
	snaps []string
}

func (h *snapshotTap) Tick(r *Room) {
	h.Handler.Tick(r)
	for _, p := range r.Players() {
		h.snaps = append(h.snaps, fmt.Sprintf("tick %d %s: %s", r.Ticks(), p.ID, h.Handler.Snapshot(r, p)))
	}
	h.ticks.Add(1)
}

// tappedArena is the arena type, ticking fast so a live match is short,
// with a snapshotTap around each room's handler.
func tappedArena() Type {
	typ := ArenaType()
	inner := typ.New
	typ.New = func() Handler { return &snapshotTap{Handler: inner()} }
	typ.TickRate = 200
	return typ
}

// stepClock is a room clock that moves a millisecond per reading.
func stepClock() func() time.Time {
	var n atomic.Int64
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

// received is everything one player's sessions got from a room, in order:
// each room-stream frame as delivered and each reply as encoded.
func received(members []*captureMember, id string) [][]byte {
	var out [][]byte
	for _, m := range members {
		if m.player.ID != id {
			continue
		}
		out = append(out, m.Raw()...)
		for _, env := range m.Replies() {
			b, err := encode(m.codec, env)
			if err != nil {
				panic(err)
			}
			out = append(out, b)
		}
	}
	return out
}

func TestArenaReplayFromJournalIsByteIdentical(t *testing.T) {
	codecOf := map[string]protocol.CodecID{
		"alice": protocol.CodecJSON, "bob": protocol.CodecBinary, "carol": protocol.CodecJSON, "dave": protocol.CodecBinary,
	}
	var (
		mu      sync.Mutex
		journal []Input
	)
	cfg := Config{
		ID:      "arena-1",
		Type:    tappedArena(),
		Seed:    42,
		Encoder: encode,
		Clock:   stepClock(),
		Journal: func(in Input) {
			mu.Lock()
			defer mu.Unlock()
			journal = append(journal, in)
		},
	}
	live, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go live.Run(context.Background())
	defer func() { _ = live.Close(context.Background()); <-live.Done() }()
	tap := live.handler.(*snapshotTap)

	// The match, played live: every input goes through the mailbox and the
	// ticks come from the room's ticker.
	ctx := context.Background()
	var liveMembers []*captureMember
	current := make(map[string]*captureMember)
	join := func(id string) *captureMember {
		t.Helper()
		m := newMember(t, id, codecOf[id])
		liveMembers = append(liveMembers, m)
		current[id] = m
		if err := live.Join(ctx, m, 1, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, id+"'s joined reply", func() bool { return len(m.Replies()) > 0 })
		return m
	}
	send := func(id string, m Message) {
		t.Helper()
		if err := live.Submit(ctx, current[id], m); err != nil {
			t.Fatal(err)
		}
	}
	waitTicks := func(n int64) {
		t.Helper()
		target := tap.ticks.Load() + n
		eventually(t, fmt.Sprintf("tick %d", target), func() bool { return tap.ticks.Load() >= target })
	}

	join("alice")
	bob := join("bob")
	join("carol")
	send("alice", move(1, 0))
	send("bob", move(-1, 1))
	send("carol", move(0, -1))
	waitTicks(10)

	if err := live.Disconnect(ctx, current["bob"]); err != nil {
		t.Fatal(err)
	}
	send("alice", move(0, 1))
	send("alice", Message{Topic: "move", Data: []byte("garbage")})
	send("bob", move(1, 1)) // sent before the cut, arriving after it
	waitTicks(5)
	lastSeen := last(bob.Frames())
	if err := live.Rejoin(ctx, current["bob"], &protocol.StreamPos{Room: "arena-1", Epoch: 1, Seq: lastSeen.Seq}); err != nil {
		t.Fatal(err)
	}
	waitTicks(5)

	if err := live.Leave(ctx, current["carol"], protocol.LeaveReason_LEAVE_REASON_REQUESTED); err != nil {
		t.Fatal(err)
	}
	join("dave")
	send("dave", move(5, -7))
	waitTicks(10)

	if err := live.Disconnect(ctx, current["alice"]); err != nil {
		t.Fatal(err)
	}
	if err := live.Rejoin(ctx, current["bob"], &protocol.StreamPos{Room: "arena-1", Epoch: 1, Seq: 0}); err != nil { // stale: a gap
		t.Fatal(err)
	}
	waitTicks(10)
	join("carol") // back again
	send("carol", move(-1, -1))
	waitTicks(5)

	if err := live.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-live.Done()

	mu.Lock()
	recorded := slices.Clone(journal)
	mu.Unlock()
	kinds := map[InputKind]bool{}
	for _, in := range recorded {
		kinds[in.Kind] = true
	}
	for _, k := range []InputKind{InputJoin, InputLeave, InputDisconnect, InputRejoin, InputMessage, InputTick, InputClose} {
		if !kinds[k] {
			t.Errorf("the match's journal has no input of kind %d", k)
		}
	}
	if !slices.ContainsFunc(bob.Frames(), func(f *protocol.Envelope) bool { return f.GetGap() != nil }) {
		t.Error("bob never got a gap; the match does not exercise one")
	}

	// The same match, replayed from its journal and seed.
	var replayMembers []*captureMember
	cfg.Journal = nil
	cfg.Type = tappedArena()
	replayed, err := Replay(cfg, recorded, func(p tandem.Player) Member {
		m := newMember(t, p.ID, codecOf[p.ID])
		replayMembers = append(replayMembers, m)
		return m
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{"alice", "bob", "carol", "dave"} {
		want, got := received(liveMembers, id), received(replayMembers, id)
		if len(want) < 10 {
			t.Errorf("%s received only %d frames live", id, len(want))
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d frames live, %d replayed", id, len(want), len(got))
			continue
		}
		for i := range want {
			if !bytes.Equal(want[i], got[i]) {
				t.Errorf("%s frame %d differs:\n live   %q\n replay %q", id, i, want[i], got[i])
				break
			}
		}
	}
	liveSnaps, replaySnaps := tap.snaps, replayed.handler.(*snapshotTap).snaps
	if len(liveSnaps) < 40 {
		t.Errorf("only %d snapshots recorded", len(liveSnaps))
	}
	if diff := cmp.Diff(liveSnaps, replaySnaps); diff != "" {
		t.Errorf("snapshots (-live +replay):\n%s", diff)
	}
}

func TestArenaSeedDecidesSpawnPositions(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	journal := []Input{
		{Kind: InputJoin, At: at, Player: tandem.Player{ID: "alice"}},
		{Kind: InputJoin, At: at, Player: tandem.Player{ID: "bob"}},
		{Kind: InputTick, At: at},
	}
	spawn := func(seed uint64) string {
		r, err := Replay(Config{ID: "arena-1", Type: ArenaType(), Seed: seed, Encoder: encode}, journal, func(p tandem.Player) Member {
			return newMember(t, p.ID, protocol.CodecJSON)
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(r.handler.Snapshot(r, nil))
	}
	if a, b := spawn(1), spawn(1); a != b {
		t.Errorf("seed 1 spawned differently twice:\n%s\n%s", a, b)
	}
	if a, b := spawn(1), spawn(2); a == b {
		t.Errorf("seeds 1 and 2 spawned the same: %s", a)
	}
}
