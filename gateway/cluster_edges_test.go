package gateway_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
)

func TestALateClaimOfAnOlderSessionLeavesTheNewerOneOnAnotherNode(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	held := &heldClaim{release: make(chan struct{})}
	a := tc.startNode("a", func(c *gateway.Config) {
		held.Cluster = c.Cluster
		c.Cluster = held
	})
	b := tc.startNode("b", nil)
	older := a.dial(t)
	older.connect(tc.token("p"))
	waitFor(t, 10*time.Second, "the older session's claim on its way", func() bool { return held.calls.Load() == 1 })
	// The player moves on to node b while a's claim waits.
	newer := b.dial(t)
	sid := newer.connect(tc.token("p")).GetSessionId()
	names := func() bool {
		p, err := web.Presence(context.Background(), "p")
		return err == nil && p.SessionID == sid
	}
	waitFor(t, 10*time.Second, "the presence naming the newer session", names)
	close(held.release)

	// The late claim is refused: the older session ends, the newer lives.
	if got := older.closeCode(); got != protocol.CloseDuplicateSession {
		t.Errorf("older session: %v, want duplicate_session", got)
	}
	if !held.returned.Load() {
		t.Error("the older session ended before its claim returned")
	}
	if !names() {
		t.Error("the presence no longer names the newer session")
	}
	newer.alive()
	if s, ok := b.gw.Sessions().ByPlayer("p"); !ok || s.ID() != sid {
		t.Errorf("the newer session does not live on (%v)", ok)
	}
}

// stalledRelease fails the first presence release only when its context
// ends: a release in flight when the node stops.
type stalledRelease struct {
	tandem.Cluster
	calls   atomic.Int32
	entered chan struct{}
}

func (s *stalledRelease) ReleasePresence(ctx context.Context, playerID, sessionID string) error {
	if s.calls.Add(1) == 1 {
		close(s.entered)
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Cluster.ReleasePresence(ctx, playerID, sessionID)
}

func TestACleanCloseLeavesNoPresenceOfItsSessions(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	stalled := &stalledRelease{entered: make(chan struct{})}
	a := tc.startNode("a", func(c *gateway.Config) {
		stalled.Cluster = c.Cluster
		c.Cluster = stalled
	})
	players := numbered("p", 3)
	ids := map[string]string{}
	for _, p := range players {
		c := a.dial(t)
		ids[p] = c.connect(tc.token(p)).GetSessionId()
	}
	for _, p := range players {
		waitFor(t, 10*time.Second, "the presence of "+p, func() bool {
			e, err := web.Presence(context.Background(), p)
			return err == nil && e.SessionID == ids[p]
		})
	}
	// p1's session ends first: its release is in flight when Close stops
	// the cluster agent.
	s, ok := a.gw.Sessions().ByPlayer("p1")
	if !ok {
		t.Fatal("no session of p1")
	}
	a.gw.Sessions().End(context.Background(), s, protocol.LeaveReason_LEAVE_REASON_KICKED, protocol.CloseKicked, "test")
	<-stalled.entered
	a.stop()
	for _, p := range players {
		if e, err := web.Presence(context.Background(), p); tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Errorf("after a clean close, the presence of %s: %+v, %v; want none", p, e, err)
		}
	}
}

// stuckRoom's Message handler blocks on the message "block" until unblock
// is closed: its mailbox then fills.
type stuckRoom struct {
	room.Base
	once    *sync.Once
	entered chan struct{}
	unblock chan struct{}
}

func (h *stuckRoom) Message(_ *room.Room, _ *tandem.Player, m room.Message) {
	if string(m.Data) == "block" {
		h.once.Do(func() { close(h.entered) })
		<-h.unblock
	}
}

func TestARoomWithAFullMailboxDoesNotStallTheClusterWorker(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	entered, unblock := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stuck := room.Type{Name: "stuck", New: func() room.Handler {
		return &stuckRoom{once: &once, entered: entered, unblock: unblock}
	}}
	a := tc.startNode("a", func(c *gateway.Config) { c.RoomTypes = append(c.RoomTypes, stuck) })
	t.Cleanup(func() { close(unblock) }) // before the node's stop (cleanups run last first)
	p := a.dial(t)
	p.connect(tc.token("p"))
	roomID := p.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "stuck"}).GetRoomId()
	q := a.dial(t)
	q.connect(tc.token("q"))
	send := func(data string) {
		p.reliable(&protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{RoomId: roomID, Data: []byte(data)}}})
	}
	send("block")
	<-entered
	// The room's mailbox holds 64 inputs: these fill it. The reader
	// answering the room list after them has posted them all.
	for i := range 64 {
		send(strconv.Itoa(i))
	}
	p.alive()
	// p's leave cannot reach the room; q's ban, queued behind p's, must
	// still be enforced.
	for _, id := range []string{"p", "q"} {
		if err := web.PutBan(context.Background(), tandem.BanEntry{PlayerID: id, Start: time.Now().Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := q.closeCode(); got != protocol.CloseBanned {
		t.Errorf("q: %v, want banned", got)
	}
	if got := p.closeCode(); got != protocol.CloseBanned {
		t.Errorf("p: %v, want banned", got)
	}
}

// blindCluster never shows its node one other node in the registry
// watch, and fails directory reads while broken is set.
type blindCluster struct {
	tandem.Cluster
	hide   string
	broken atomic.Bool
}

func (b *blindCluster) WatchNodes(ctx context.Context, fn func(n tandem.NodeInfo, deleted bool)) (func(), error) {
	return b.Cluster.WatchNodes(ctx, func(n tandem.NodeInfo, deleted bool) {
		if n.ID != b.hide {
			fn(n, deleted)
		}
	})
}

func (b *blindCluster) Room(ctx context.Context, id string) (tandem.RoomEntry, error) {
	if b.broken.Load() {
		return tandem.RoomEntry{}, errors.New("the bus is down")
	}
	return b.Cluster.Room(ctx, id)
}

func TestJoinsElsewhereReadTheBucketsWhenTheWatchedCopiesFallShort(t *testing.T) {
	tc := newTestCluster(t)
	blind := &blindCluster{hide: "b"}
	a := tc.startNode("a", func(c *gateway.Config) {
		blind.Cluster = c.Cluster
		c.Cluster = blind
	})
	b := tc.startNode("b", nil)
	bob := b.dial(t)
	bob.connect(tc.token("bob"))
	roomB := bob.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"}).GetRoomId()
	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	// Node a's copy of the registry lacks b: the registry itself has it.
	if res := waitSeat(t, alice, roomB); res.GetNodeUrl() != b.url {
		t.Errorf("seat on %q, want %q", res.GetNodeUrl(), b.url)
	}
	// A directory that cannot be read is no answer about the room.
	blind.broken.Store(true)
	if env := alice.request(501, joinEnv(&protocol.Join{RoomId: "unknown-room"})); errorCode(env) != tandem.EUnavailable {
		t.Errorf("join while the directory cannot be read: %v, want unavailable", env)
	}
	blind.broken.Store(false)
	if env := alice.request(502, joinEnv(&protocol.Join{RoomId: "unknown-room"})); errorCode(env) != tandem.ENotFound {
		t.Errorf("join of an unknown room: %v, want not_found", env)
	}
}
