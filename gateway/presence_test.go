package gateway_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/protocol"
)

// heldClaim holds the first presence claim until release is closed.
type heldClaim struct {
	tandem.Cluster
	release  chan struct{}
	calls    atomic.Int32
	returned atomic.Bool // the first claim has returned
}

func (h *heldClaim) ClaimPresence(ctx context.Context, p tandem.Presence) (tandem.Presence, error) {
	if h.calls.Add(1) != 1 {
		return h.Cluster.ClaimPresence(ctx, p)
	}
	defer h.returned.Store(true)
	select {
	case <-h.release:
	case <-ctx.Done():
		return tandem.Presence{}, ctx.Err()
	}
	return h.Cluster.ClaimPresence(ctx, p)
}

func TestReloginOnOneNodeWhileTheFirstClaimIsInFlightLeavesTheNewSession(t *testing.T) {
	tc := newTestCluster(t)
	held := &heldClaim{release: make(chan struct{})}
	a := tc.startNode("a", func(c *gateway.Config) {
		held.Cluster = c.Cluster
		c.Cluster = held
	})
	c1 := a.dial(t)
	c1.connect(tc.token("p"))
	waitFor(t, 10*time.Second, "the first claim on its way", func() bool { return held.calls.Load() == 1 })
	c2 := a.dial(t)
	second := c2.connect(tc.token("p"))
	if got := c1.closeCode(); got != protocol.CloseDuplicateSession {
		t.Errorf("first connection: %v, want duplicate_session", got)
	}
	// The first session's claim lands only now, after its session ended.
	close(held.release)

	web := tc.bus("web")
	waitFor(t, 10*time.Second, "the presence naming the second session", func() bool {
		p, err := web.Presence(context.Background(), "p")
		return held.returned.Load() && err == nil && p.SessionID == second.GetSessionId()
	})
	c2.alive()
	if s, ok := a.gw.Sessions().ByPlayer("p"); !ok || s.Ended() || s.ID() != second.GetSessionId() {
		t.Fatalf("the second session does not live on (%v)", ok)
	}
	if p, err := web.Presence(context.Background(), "p"); err != nil || p.SessionID != second.GetSessionId() {
		t.Errorf("presence: %+v %v, want the second session", p, err)
	}
}

func TestBanArrivingDuringConnectEndsTheNewSession(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	var (
		mu  sync.Mutex
		url string
	)
	// The SessionStart hook runs after the connect's ban check: the ban is
	// written then, and the hook returns once the node refuses another
	// player banned in the same breath (bans reach the node in order).
	a := tc.startNode("a", func(c *gateway.Config) {
		c.Hooks.SessionStart = func(ctx context.Context, p *tandem.Player) error {
			if p.ID != "p" {
				return nil
			}
			for _, id := range []string{"p", "probe"} {
				if err := web.PutBan(ctx, tandem.BanEntry{PlayerID: id, Start: time.Now().Add(-time.Second)}); err != nil {
					t.Error(err)
					return nil
				}
			}
			mu.Lock()
			u := url
			mu.Unlock()
			if !poll(10*time.Second, func() bool {
				probe := dialRaw(t, u, protocol.CodecJSON)
				probe.send(&protocol.Envelope{Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{Token: tc.token("probe")}}})
				env, err := probe.next()
				return err == nil && errorCode(env) == tandem.EBanned
			}) {
				t.Error("the ban did not reach the node")
			}
			return nil
		}
	})
	mu.Lock()
	url = a.url
	mu.Unlock()
	c := a.dial(t)
	c.connect(tc.token("p"))
	if got := c.closeCode(); got != protocol.CloseBanned {
		t.Errorf("close: %v, want banned", got)
	}
	waitFor(t, 10*time.Second, "the banned session's end", func() bool {
		_, ok := a.gw.Sessions().ByPlayer("p")
		return !ok
	})
}

func TestSeatReservationsKeepARoomFromOverfilling(t *testing.T) {
	tc := newTestCluster(t)
	rec := newRecorder()
	two := recordingType("two", rec, 20)
	two.MaxPlayers = 2
	with := func(c *gateway.Config) { c.RoomTypes = append(c.RoomTypes, two) }
	a := tc.startNode("a", with)
	b := tc.startNode("b", with)
	bob := b.dial(t)
	bob.connect(tc.token("bob"))
	roomB := bob.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "two"}).GetRoomId()
	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	res := waitSeat(t, alice, roomB)
	// Bob and alice's seat fill the room: a local join is refused.
	carol := b.dial(t)
	carol.connect(tc.token("carol"))
	if env := carol.request(77, joinEnv(&protocol.Join{RoomId: roomB})); errorCode(env) != tandem.ERoomFull {
		t.Errorf("local join while the last place is reserved: %v, want room_full", env)
	}
	// So is another reservation.
	dave := a.dial(t)
	dave.connect(tc.token("dave"))
	if env := dave.request(78, joinEnv(&protocol.Join{RoomId: roomB})); errorCode(env) != tandem.ERoomFull {
		t.Errorf("second reservation of the last place: %v, want room_full", env)
	}
	moved := dialRaw(t, res.GetNodeUrl(), protocol.CodecJSON)
	if env := moved.connectSeat(tc.token("alice"), res.GetSeatToken()); env.GetConnected() == nil {
		t.Fatalf("connect with the seat: %v", env)
	}
	j := moved.request(79, joinEnv(&protocol.Join{RoomId: roomB}))
	if got := j.GetJoined().GetPlayers(); !slices.Equal(got, []string{"bob", "alice"}) {
		t.Errorf("seated join: %v, want joined with bob and alice", j)
	}
}

func TestAPresenceEntryLostWhileTheSessionLivesIsClaimedAgain(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	a := tc.startNode("a", nil)
	c := a.dial(t)
	sid := c.connect(tc.token("p")).GetSessionId()
	names := func() bool {
		p, err := web.Presence(context.Background(), "p")
		return err == nil && p.SessionID == sid
	}
	waitFor(t, 10*time.Second, "the session's presence", names)
	if err := web.ReleasePresence(context.Background(), "p", sid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the presence claimed again", names)
	c.alive()
}

func TestARoomEntryRemovedBehindTheNodesBackIsWrittenAgain(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	a := tc.startNode("a", nil)
	c := a.dial(t)
	c.connect(tc.token("p"))
	id := c.join(&protocol.Join{RoomType: "relay"}).GetRoomId()
	listed := func() bool {
		e, err := web.Room(context.Background(), id)
		return err == nil && e.Node == "a"
	}
	waitFor(t, 10*time.Second, "the room in the directory", listed)
	// As the web server does for a node it declared down.
	if err := web.RemoveRoom(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the room written again", listed)
}
