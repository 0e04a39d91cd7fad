package gateway_test

import (
	"context"
	"crypto/ed25519"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/token"
)

// testCluster is an embedded NATS server and a token signer shared by the
// nodes of one test; each node has its own bus connection and listener.
type testCluster struct {
	t      *testing.T
	emb    *natsbus.Embedded
	signer *token.Signer
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	emb, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testCluster{t: t, emb: emb, signer: token.NewSigner("test", priv)}
}

// bus connects to the cluster's server as name (the web side, say).
func (tc *testCluster) bus(name string) *natsbus.Bus {
	tc.t.Helper()
	b, err := natsbus.Connect(context.Background(), natsbus.Config{Server: tc.emb, Name: name, NodeTTL: 5 * time.Second})
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() { _ = b.Close() })
	return b
}

func (tc *testCluster) token(player string) string {
	tc.t.Helper()
	tok, err := tc.signer.Issue(tandem.Player{ID: player}, time.Now(), time.Minute)
	if err != nil {
		tc.t.Fatal(err)
	}
	return tok
}

// clusterNode is a realtime node of a test cluster.
type clusterNode struct {
	id   string
	gw   *gateway.Gateway
	srv  *httptest.Server
	url  string
	stop func() // a clean stop, as the test's cleanup does it
}

// startNode starts node id with its own bus connection and event buffer.
func (tc *testCluster) startNode(id string, edit func(*gateway.Config)) *clusterNode {
	t := tc.t
	t.Helper()
	b := tc.bus(id)
	ctx, cancel := context.WithCancel(context.Background())
	events := natsbus.NewEventBuffer(natsbus.EventBufferConfig{Stream: b, Node: id, Size: 1024})
	done := make(chan struct{})
	go func() {
		defer close(done)
		events.Run(ctx)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/ws"
	cfg := gateway.Config{
		Node:              id,
		Verifier:          token.NewKeySet(map[string]ed25519.PublicKey{tc.signer.KeyID(): tc.signer.PublicKey()}),
		RoomTypes:         room.BuiltinTypes(),
		Heartbeat:         time.Second,
		Cluster:           b,
		Events:            events,
		AdvertiseURL:      url,
		Version:           "test",
		HeartbeatInterval: 100 * time.Millisecond,
		SeatTTL:           5 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		ln.Close()
		cancel()
		<-done
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	var once sync.Once
	n := &clusterNode{id: id, gw: gw, srv: srv, url: url}
	n.stop = func() {
		once.Do(func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ccancel()
			if err := gw.Close(cctx); err != nil {
				t.Errorf("close gateway %s: %v", id, err)
			}
			srv.Close()
			cancel()
			<-done
		})
	}
	t.Cleanup(n.stop)
	// The node answers commands from goroutines it starts: a test sends
	// its own once a probe is delivered (a notice to nobody: not applied).
	waitFor(t, 10*time.Second, "node "+id+" serving commands", func() bool {
		_, err := b.SendCommand(context.Background(), tandem.Command{ID: "probe-" + id, Node: id, Kind: tandem.CommandNotice, PlayerID: "nobody", Text: "probe"})
		return err == nil
	})
	return n
}

// dial connects a raw client to the node.
func (n *clusterNode) dial(t *testing.T) *raw {
	return dialRaw(t, n.url, protocol.CodecJSON)
}

// connectSeat sends a connect carrying a seat token.
func (c *raw) connectSeat(tok, seat string) *protocol.Envelope {
	c.t.Helper()
	c.send(&protocol.Envelope{Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{Token: tok, SeatToken: seat}}})
	env := c.recv()
	if env.GetConnected() != nil {
		c.send(&protocol.Envelope{Body: &protocol.Envelope_AckFrame{AckFrame: &protocol.Ack{}}})
	}
	return env
}

// request sends a reliable frame and returns the answer to its cid.
func (c *raw) request(cid uint64, env *protocol.Envelope) *protocol.Envelope {
	c.t.Helper()
	env.Cid = cid
	c.reliable(env)
	return c.recvUntil(func(e *protocol.Envelope) bool { return e.Cid == cid })
}

func joinEnv(j *protocol.Join) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Join{Join: j}}
}

// alive proves the connection is up: a room list request gets its answer.
func (c *raw) alive() {
	c.t.Helper()
	c.send(&protocol.Envelope{Cid: 4242, Body: &protocol.Envelope_ListRooms{ListRooms: &protocol.ListRooms{}}})
	c.recvUntil(func(e *protocol.Envelope) bool { return e.Cid == 4242 && e.GetRoomList() != nil })
}

// seatFor asks to join a room of another node; nil until the directory
// knows the room.
func seatFor(c *raw, roomID string) *protocol.SeatReservation {
	c.t.Helper()
	res := c.request(c.seq+1000, joinEnv(&protocol.Join{RoomId: roomID})).GetSeatReservation()
	if res == nil {
		time.Sleep(20 * time.Millisecond) // pace the retries, not a condition
	}
	return res
}

// waitSeat asks for roomID on c's node until the answer is a seat
// reservation (the directory learns of a room a moment after it starts).
func waitSeat(t *testing.T, c *raw, roomID string) *protocol.SeatReservation {
	t.Helper()
	var res *protocol.SeatReservation
	waitFor(t, 10*time.Second, "a seat reservation for room "+roomID, func() bool {
		res = seatFor(c, roomID)
		return res != nil
	})
	return res
}

func errorCode(env *protocol.Envelope) tandem.ErrorCode {
	return tandem.ErrorCode(env.GetError().GetCode())
}

func TestCrossNodeJoinMovesThePlayerWithASeat(t *testing.T) {
	tc := newTestCluster(t)
	rec := newRecorder()
	withRec := func(c *gateway.Config) { c.RoomTypes = append(c.RoomTypes, recordingType("rec", rec, 20)) }
	a := tc.startNode("a", withRec)
	b := tc.startNode("b", withRec)

	bob := b.dial(t)
	bob.connect(tc.token("bob"))
	roomB := bob.join(&protocol.Join{RoomType: "relay"}).GetRoomId()

	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	alice.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "rec"})

	// The directory learns of bob's room asynchronously.
	res := waitSeat(t, alice, roomB)
	if res.GetNodeUrl() != b.url || res.GetRoomId() != roomB || res.GetSeatToken() == "" {
		t.Fatalf("seat reservation %v, want room %s on %s", res, roomB, b.url)
	}
	if time.UnixMilli(res.GetExpiresAtMs()).Before(time.Now()) {
		t.Errorf("seat reservation already expired: %v", res)
	}

	moved := dialRaw(t, res.GetNodeUrl(), protocol.CodecJSON)
	if env := moved.connectSeat(tc.token("alice"), res.GetSeatToken()); env.GetConnected() == nil {
		t.Fatalf("connect with the seat: %v", env)
	}
	joined := moved.join(&protocol.Join{RoomId: roomB})
	if !slices.Contains(joined.GetPlayers(), "alice") || !slices.Contains(joined.GetPlayers(), "bob") {
		t.Errorf("players after the move: %v", joined.GetPlayers())
	}
	if got := alice.closeCode(); got != protocol.CloseMoved {
		t.Errorf("the old connection closed with %d (%s), want moved", got, got)
	}
	waitFor(t, 5*time.Second, "alice to leave the room on a with MOVED", func() bool {
		return slices.Equal(rec.leavesOf("alice"), []protocol.LeaveReason{protocol.LeaveReason_LEAVE_REASON_MOVED})
	})

	again := dialRaw(t, res.GetNodeUrl(), protocol.CodecJSON)
	env := again.connectSeat(tc.token("alice"), res.GetSeatToken())
	if errorCode(env) != tandem.ENotFound {
		t.Errorf("second claim of the seat: %v, want not_found", env)
	}
	if got := again.closeCode(); got != protocol.CloseSessionExpired {
		t.Errorf("second claim closed with %d (%s), want session_expired", got, got)
	}
	moved.alive()
}

func TestSeatOfAnotherPlayerIsRefused(t *testing.T) {
	tc := newTestCluster(t)
	a := tc.startNode("a", nil)
	b := tc.startNode("b", nil)
	bob := b.dial(t)
	bob.connect(tc.token("bob"))
	roomB := bob.join(&protocol.Join{RoomType: "relay"}).GetRoomId()
	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	res := waitSeat(t, alice, roomB)
	mallory := dialRaw(t, res.GetNodeUrl(), protocol.CodecJSON)
	if env := mallory.connectSeat(tc.token("mallory"), res.GetSeatToken()); errorCode(env) != tandem.ENotFound {
		t.Errorf("a seat used by another player: %v, want not_found", env)
	}
	if got := mallory.closeCode(); got != protocol.CloseSessionExpired {
		t.Errorf("closed with %d, want session_expired", got)
	}
	alice.alive()
	// Mallory's try did not use the seat up: it is still alice's.
	follower := dialRaw(t, res.GetNodeUrl(), protocol.CodecJSON)
	if env := follower.connectSeat(tc.token("alice"), res.GetSeatToken()); env.GetConnected() == nil {
		t.Errorf("alice following her seat after mallory's try: %v", env)
	}
}

func TestTwoLoginsOnTwoNodesLeaveExactlyOne(t *testing.T) {
	tc := newTestCluster(t)
	nodes := []*clusterNode{tc.startNode("a", nil), tc.startNode("b", nil)}
	for i := range 5 {
		player := "p" + string(rune('0'+i))
		clients := make([]*raw, 2)
		first := make([]*protocol.Envelope, 2)
		toks := []string{tc.token(player), tc.token(player)}
		var wg sync.WaitGroup
		for j, n := range nodes {
			clients[j] = n.dial(t)
			wg.Add(1)
			go func() {
				defer wg.Done()
				clients[j].send(connectEnv(toks[j]))
				first[j], _ = clients[j].next()
			}()
		}
		wg.Wait()
		for j, env := range first {
			if env.GetConnected() == nil {
				t.Fatalf("round %d: login on %s: %v", i, nodes[j].id, env)
			}
		}
		// Exactly one node ends up holding the player.
		var survivor int
		waitFor(t, 10*time.Second, "exactly one session of "+player, func() bool {
			n := 0
			for j, node := range nodes {
				if s, ok := node.gw.Sessions().ByPlayer(player); ok && !s.Ended() {
					n++
					survivor = j
				}
			}
			return n == 1
		})
		loser := 1 - survivor
		if got := clients[loser].closeCode(); got != protocol.CloseDuplicateSession {
			t.Errorf("round %d: the other login closed with %d (%s), want duplicate_session", i, got, got)
		}
		clients[survivor].alive()
		if _, ok := nodes[survivor].gw.Sessions().ByPlayer(player); !ok {
			t.Errorf("round %d: the surviving session ended", i)
		}
	}
}

func TestBanEndsTheSessionAndRefusesConnects(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	a := tc.startNode("a", nil)
	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	carol := a.dial(t)
	carol.connect(tc.token("carol"))
	// Bans reach every node: dave is on another node than alice. (One
	// player cannot have sessions on two nodes at once: presence ends
	// the older one.)
	c := tc.startNode("c", nil)
	dave := c.dial(t)
	dave.connect(tc.token("dave"))

	ctx := context.Background()
	for _, p := range []string{"alice", "dave"} {
		if err := web.PutBan(ctx, tandem.BanEntry{PlayerID: p, Start: time.Now().Add(-time.Second), Reason: "cheating"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, cl := range []*raw{alice, dave} {
		env := cl.recvUntil(func(e *protocol.Envelope) bool { return e.GetError() != nil })
		if errorCode(env) != tandem.EBanned || !strings.Contains(env.GetError().GetMessage(), "cheating") {
			t.Errorf("error before the close: %v, want banned with the reason", env)
		}
		if got := cl.closeCode(); got != protocol.CloseBanned {
			t.Errorf("banned session closed with %d (%s), want banned", got, got)
		}
	}

	// A node started after the ban refuses the player at once.
	b := tc.startNode("b", nil)
	again := b.dial(t)
	again.send(connectEnv(tc.token("alice")))
	if env := again.recv(); errorCode(env) != tandem.EBanned {
		t.Errorf("connect of a banned player: %v, want banned", env)
	}
	if got := again.closeCode(); got != protocol.CloseBanned {
		t.Errorf("closed with %d (%s), want banned", got, got)
	}

	// A ban that starts later takes effect when it starts.
	if err := web.PutBan(ctx, tandem.BanEntry{PlayerID: "carol", Start: time.Now().Add(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if got := carol.closeCode(); got != protocol.CloseBanned {
		t.Errorf("carol closed with %d (%s), want banned", got, got)
	}

	// A lifted ban is forgotten.
	if err := web.DeleteBan(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the lifted ban to let alice in", func() bool {
		c := b.dial(t)
		c.send(connectEnv(tc.token("alice")))
		env, err := c.next()
		c.conn.Close()
		return err == nil && env.GetConnected() != nil
	})
}

func TestOperatorCommands(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	rec := newRecorder()
	var drains atomic.Int32
	a := tc.startNode("a", func(c *gateway.Config) {
		c.RoomTypes = append(c.RoomTypes, recordingType("rec", rec, 20))
		c.OnDrainCommand = func() { drains.Add(1) }
	})
	ctx := context.Background()
	ids := 0
	send := func(c tandem.Command) tandem.CommandResult {
		t.Helper()
		if c.ID == "" {
			ids++
			c.ID = "cmd-" + string(rune('a'+ids))
		}
		c.Node = "a"
		res, err := web.SendCommand(ctx, c)
		if err != nil {
			t.Fatalf("send %s: %v", c.Kind, err)
		}
		return res
	}

	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	alice.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "rec"})
	bob := a.dial(t)
	bob.connect(tc.token("bob"))
	roomID := bob.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"}).GetRoomId()
	carol := a.dial(t)
	carol.connect(tc.token("carol"))
	carol.join(&protocol.Join{RoomId: roomID})
	dave := a.dial(t)
	dave.connect(tc.token("dave"))

	t.Run("kick", func(t *testing.T) {
		if res := send(tandem.Command{Kind: tandem.CommandKick, PlayerID: "alice"}); !res.OK {
			t.Fatalf("kick: %+v", res)
		}
		if got := alice.closeCode(); got != protocol.CloseKicked {
			t.Errorf("kicked session closed with %d (%s)", got, got)
		}
		waitFor(t, 5*time.Second, "the room to see alice kicked", func() bool {
			return slices.Equal(rec.leavesOf("alice"), []protocol.LeaveReason{protocol.LeaveReason_LEAVE_REASON_KICKED})
		})
		if res := send(tandem.Command{Kind: tandem.CommandKick, PlayerID: "nobody"}); res.OK || res.Error == "" {
			t.Errorf("kick of an unknown player: %+v, want not OK with an error", res)
		}
	})

	notice := func(c *raw, text string) {
		t.Helper()
		env := c.recvUntil(func(e *protocol.Envelope) bool { return e.GetNotice() != nil })
		if n := env.GetNotice(); n.GetKind() != "system" || n.GetText() != text {
			t.Errorf("notice %v, want system %q", n, text)
		}
	}
	t.Run("notice", func(t *testing.T) {
		send(tandem.Command{Kind: tandem.CommandNotice, PlayerID: "dave", Text: "to dave"})
		notice(dave, "to dave")
		send(tandem.Command{Kind: tandem.CommandNotice, RoomID: roomID, Text: "to the room"})
		notice(bob, "to the room")
		notice(carol, "to the room")
		send(tandem.Command{Kind: tandem.CommandNotice, Text: "to all"})
		for _, c := range []*raw{bob, carol, dave} {
			notice(c, "to all")
		}
		if res := send(tandem.Command{Kind: tandem.CommandNotice, RoomID: "nope", Text: "x"}); res.OK {
			t.Errorf("notice to an unknown room: %+v", res)
		}
	})

	t.Run("lock and unlock", func(t *testing.T) {
		if res := send(tandem.Command{Kind: tandem.CommandLockRoom, RoomID: roomID}); !res.OK {
			t.Fatalf("lock: %+v", res)
		}
		if env := dave.request(10, joinEnv(&protocol.Join{RoomId: roomID})); errorCode(env) != tandem.EJoinRejected {
			t.Errorf("join of a locked room: %v, want join_rejected", env)
		}
		// Join-or-create passes the locked room over: a new room.
		if got := dave.join(&protocol.Join{RoomType: "relay"}).GetRoomId(); got == roomID {
			t.Errorf("join-or-create picked the locked room")
		}
		if res := send(tandem.Command{Kind: tandem.CommandUnlockRoom, RoomID: roomID}); !res.OK {
			t.Fatalf("unlock: %+v", res)
		}
		if env := dave.request(11, joinEnv(&protocol.Join{RoomId: roomID})); env.GetJoined() == nil {
			t.Errorf("join after unlock: %v", env)
		}
	})

	t.Run("close room", func(t *testing.T) {
		if res := send(tandem.Command{Kind: tandem.CommandCloseRoom, RoomID: roomID}); !res.OK {
			t.Fatalf("close room: %+v", res)
		}
		for _, c := range []*raw{bob, carol, dave} {
			env := c.recvUntil(func(e *protocol.Envelope) bool { return e.GetLeave().GetRoomId() == roomID })
			if r := env.GetLeave().GetReason(); r != protocol.LeaveReason_LEAVE_REASON_ROOM_CLOSED {
				t.Errorf("leave reason %v, want ROOM_CLOSED", r)
			}
			c.alive()
		}
		if res := send(tandem.Command{Kind: tandem.CommandCloseRoom, RoomID: roomID}); res.OK {
			t.Errorf("close of a closed room: %+v, want not OK", res)
		}
	})

	t.Run("drain once per command id", func(t *testing.T) {
		c := tandem.Command{ID: "drain-1", Kind: tandem.CommandDrain}
		send(c)
		send(c)
		if got := drains.Load(); got != 1 {
			t.Errorf("OnDrainCommand called %d times, want 1", got)
		}
	})
}

func TestDirectoryListsTheRoomsOfEveryNode(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	a := tc.startNode("a", nil)
	b := tc.startNode("b", nil)
	// A room whose node is gone from the registry (killed, not yet declared
	// down) is not offered. It is written before the nodes' rooms: the
	// watch delivers in order, so a list showing those has seen it.
	ctx := context.Background()
	if err := web.PutRoom(ctx, tandem.RoomEntry{ID: "ghost-room", Type: "relay", Node: "ghost", Open: true}); err != nil {
		t.Fatal(err)
	}
	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	roomA := alice.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"}).GetRoomId()
	bob := b.dial(t)
	bob.connect(tc.token("bob"))
	roomB := bob.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"}).GetRoomId()

	entry := func(id string) (tandem.RoomEntry, bool) {
		e, err := web.Room(ctx, id)
		return e, err == nil
	}
	waitFor(t, 10*time.Second, "both rooms in the directory with their players", func() bool {
		ea, okA := entry(roomA)
		eb, okB := entry(roomB)
		return okA && okB && ea.Node == "a" && eb.Node == "b" &&
			slices.Equal(ea.Players, []string{"alice"}) && slices.Equal(eb.Players, []string{"bob"}) && ea.Open
	})

	// The protocol's room list is the cluster's, from the node's watched
	// copy of the directory: it follows the directory within moments.
	cid := uint64(5)
	waitFor(t, 10*time.Second, "both rooms in the room list", func() bool {
		cid++
		alice.send(&protocol.Envelope{Cid: cid, Body: &protocol.Envelope_ListRooms{ListRooms: &protocol.ListRooms{RoomType: "relay"}}})
		list := alice.recvUntil(func(e *protocol.Envelope) bool { return e.Cid == cid }).GetRoomList().GetRooms()
		nodes := map[string]string{}
		for _, r := range list {
			nodes[r.GetRoomId()] = r.GetNode()
		}
		if _, ghost := nodes["ghost-room"]; ghost {
			t.Fatalf("the room list offers a room of a node gone from the registry: %v", list)
		}
		return nodes[roomA] == "a" && nodes[roomB] == "b"
	})

	// A lock shows; a closed room leaves the directory.
	if res, err := web.SendCommand(ctx, tandem.Command{ID: "lock", Node: "a", Kind: tandem.CommandLockRoom, RoomID: roomA}); err != nil || !res.OK {
		t.Fatalf("lock: %+v %v", res, err)
	}
	waitFor(t, 10*time.Second, "the lock in the directory", func() bool { e, ok := entry(roomA); return ok && e.Locked && !e.Open })
	if res, err := web.SendCommand(ctx, tandem.Command{ID: "close", Node: "a", Kind: tandem.CommandCloseRoom, RoomID: roomA}); err != nil || !res.OK {
		t.Fatalf("close: %+v %v", res, err)
	}
	waitFor(t, 10*time.Second, "the closed room to leave the directory", func() bool { _, ok := entry(roomA); return !ok })

	// A node's clean stop takes its entry and its rooms away.
	if _, err := web.Node(ctx, "b"); err != nil {
		t.Fatalf("node b not registered: %v", err)
	}
	b.stop()
	if _, ok := entry(roomB); ok {
		t.Errorf("room %s of the stopped node is still in the directory", roomB)
	}
	if _, err := web.Node(ctx, "b"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("node b after its stop: err = %v, want not_found", err)
	}
}

func TestDrainMarksTheNodeDraining(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	a := tc.startNode("a", func(c *gateway.Config) { c.HeartbeatInterval = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	alice.join(&protocol.Join{RoomType: "relay"})
	go func() {
		defer close(done)
		a.gw.Drain(ctx)
	}()
	// The heartbeat is an hour: only the drain's own write can show it.
	waitFor(t, 10*time.Second, "the registry to say draining", func() bool {
		n, err := web.Node(context.Background(), "a")
		return err == nil && n.Draining
	})
	cancel()
	<-done
	if got := alice.closeCode(); got != protocol.CloseNodeDraining {
		t.Errorf("closed with %d, want node_draining", got)
	}
	if _, err := web.Node(context.Background(), "a"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("node a after its drain: err = %v, want not_found", err)
	}
}

func TestEventsReachTheStream(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	a := tc.startNode("a", nil)

	var mu sync.Mutex
	var got []tandem.Event
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = web.ConsumeEvents(ctx, "test", func(_ context.Context, evs []tandem.Event) error {
			mu.Lock()
			got = append(got, evs...)
			mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })

	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	roomID := alice.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"}).GetRoomId()
	alice.reliable(&protocol.Envelope{Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{RoomId: roomID}}})
	alice.recvUntil(func(e *protocol.Envelope) bool { return e.GetLeave() != nil })
	if res, err := web.SendCommand(context.Background(), tandem.Command{ID: "c", Node: "a", Kind: tandem.CommandCloseRoom, RoomID: roomID}); err != nil || !res.OK {
		t.Fatalf("close room: %+v %v", res, err)
	}
	alice.sendBytes(8, []byte{0x03, 0xe8}) // a normal close: the player leaves
	find := func(kind tandem.EventKind) (tandem.Event, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range got {
			if e.Kind == kind && e.Node == "a" {
				return e, true
			}
		}
		return tandem.Event{}, false
	}
	waitFor(t, 10*time.Second, "every event on the stream", func() bool {
		for _, k := range []tandem.EventKind{tandem.EventNodeUp, tandem.EventSessionOpened, tandem.EventRoomCreated,
			tandem.EventRoomJoined, tandem.EventRoomLeft, tandem.EventRoomClosed, tandem.EventSessionClosed} {
			if _, ok := find(k); !ok {
				return false
			}
		}
		return true
	})
	if e, _ := find(tandem.EventRoomLeft); e.PlayerID != "alice" || e.RoomID != roomID || e.Reason != "requested" {
		t.Errorf("room.left %+v", e)
	}
	if e, _ := find(tandem.EventSessionClosed); e.CloseCode != 1000 || e.PlayerID != "alice" || e.SessionID == "" || e.Duration <= 0 {
		t.Errorf("session.closed %+v, want close code 1000", e)
	}
	a.stop()
	waitFor(t, 10*time.Second, "node.down", func() bool { _, ok := find(tandem.EventNodeDown); return ok })
}

func TestSeatPassesALockMadeAfterTheReservation(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	a := tc.startNode("a", nil)
	b := tc.startNode("b", nil)
	bob := b.dial(t)
	bob.connect(tc.token("bob"))
	roomB := bob.join(&protocol.Join{RoomType: "relay"}).GetRoomId()
	alice := a.dial(t)
	alice.connect(tc.token("alice"))
	res := waitSeat(t, alice, roomB)
	if r, err := web.SendCommand(context.Background(), tandem.Command{ID: "lock", Node: "b", Kind: tandem.CommandLockRoom, RoomID: roomB}); err != nil || !r.OK {
		t.Fatalf("lock: %+v %v", r, err)
	}
	// A new reservation is refused now; the one held still gets in.
	if env := alice.request(900, joinEnv(&protocol.Join{RoomId: roomB})); errorCode(env) != tandem.EJoinRejected {
		t.Errorf("reservation for a locked room: %v, want join_rejected", env)
	}
	moved := dialRaw(t, res.GetNodeUrl(), protocol.CodecJSON)
	if env := moved.connectSeat(tc.token("alice"), res.GetSeatToken()); env.GetConnected() == nil {
		t.Fatalf("connect with the seat: %v", env)
	}
	moved.join(&protocol.Join{RoomId: roomB})
	// The seat is used: another join of the locked room is refused.
	moved.reliable(&protocol.Envelope{Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{RoomId: roomB}}})
	moved.recvUntil(func(e *protocol.Envelope) bool { return e.GetLeave() != nil })
	if env := moved.request(901, joinEnv(&protocol.Join{RoomId: roomB})); errorCode(env) != tandem.EJoinRejected {
		t.Errorf("join after the seat was used: %v, want join_rejected", env)
	}
}
