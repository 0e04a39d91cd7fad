package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/faultproxy"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/internal/sdktest"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
	client "github.com/tandemhq/tandem/sdk/go"
)

// TestSilentConnectionIsDetectedByHeartbeatAndResumed silences a client's
// connection both ways while it stays open: the server closes it for missed
// heartbeats and holds the seat, the SDK gives up on it after its own
// silence timeout, reconnects through the proxy and resumes, and what both
// sides sent meanwhile arrives exactly once, in order.
func TestSilentConnectionIsDetectedByHeartbeatAndResumed(t *testing.T) {
	var m *observe.Realtime
	n := startNode(t, func(c *gateway.Config) {
		withMetrics(&m)(c)
		c.Heartbeat = 100 * time.Millisecond // the server gives up after 250 ms of silence
		c.SeatHold = time.Minute
	})
	pa, pb := newProxy(t, n), newProxy(t, n)
	cfgA := sdkConfig(n, pa, "alice", protocol.CodecJSON)
	cfgA.HeartbeatTimeout = 2 * time.Second // alice's SDK gives up after the server has
	alice := dialSDK(t, cfgA)
	la := sdktest.LogEvents(t, alice)
	bob := dialSDK(t, sdkConfig(n, pb, "bob", protocol.CodecBinary))
	lb := sdktest.LogEvents(t, bob)
	ctx := context.Background()
	ra, err := alice.Join(ctx, client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := bob.Join(ctx, client.JoinOptions{RoomID: ra.ID()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "alice to see bob join", func() bool { return len(la.RoomEvents("bob")) > 0 })

	// Alice's connection goes silent both ways, and stays open.
	conns := pa.Conns()
	if len(conns) != 1 {
		t.Fatalf("alice has %d connections, want 1", len(conns))
	}
	conns[0].Silence(faultproxy.Upstream)
	conns[0].Silence(faultproxy.Downstream)

	send := func(r *client.Room, prefix string, from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			if err := r.Send(ctx, prefix, []byte(prefix+strconv.Itoa(i)), client.Others()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Messages both ways while the connection is silent: some before the
	// server gives up on it, some after.
	send(rb, "b", 1, 10)
	send(ra, "a", 1, 5)
	waitFor(t, 10*time.Second, "the server to close alice's connection for missed heartbeats", func() bool {
		return closesWith(m, protocol.CloseHeartbeatTimeout) >= 1
	})
	waitFor(t, 10*time.Second, "the room to see alice disconnected", func() bool {
		return slices.ContainsFunc(lb.RoomEvents("alice"), isKind(protocol.RoomEventKind_ROOM_EVENT_DISCONNECTED))
	})
	send(rb, "b", 11, 20)
	send(ra, "a", 6, 10)

	waitFor(t, 10*time.Second, "alice's SDK to resume", func() bool { return len(sdktest.EventsOf[*client.Resumed](la)) == 1 })
	if d := sdktest.EventsOf[*client.Disconnected](la); len(d) != 1 || !errors.Is(d[0].Err, client.ErrHeartbeatTimeout) {
		t.Errorf("alice's SDK reported %v, want one Disconnected with ErrHeartbeatTimeout", describe(d))
	}
	if pa.Accepted() < 2 {
		t.Errorf("alice reconnected through the proxy %d times, want at least once", pa.Accepted()-1)
	}

	// An end marker each way: everything before it has arrived, duplicates
	// included.
	send(rb, "b", 21, 21)
	send(ra, "a", 11, 11)
	waitFor(t, 10*time.Second, "the end markers", func() bool {
		return slices.Contains(la.Messages("b"), "b21") && slices.Contains(lb.Messages("a"), "a11")
	})
	if got, want := la.Messages("b"), numbered("b", 21); !slices.Equal(got, want) {
		t.Errorf("alice received %v, want %v", got, want)
	}
	if got, want := lb.Messages("a"), numbered("a", 11); !slices.Equal(got, want) {
		t.Errorf("bob received %v, want %v", got, want)
	}
	if got := kinds(lb.RoomEvents("alice")); !slices.Equal(got, []protocol.RoomEventKind{
		protocol.RoomEventKind_ROOM_EVENT_DISCONNECTED, protocol.RoomEventKind_ROOM_EVENT_REJOINED,
	}) {
		t.Errorf("bob saw alice %v, want disconnected then rejoined", got)
	}
	if lost := sdktest.EventsOf[*client.SessionLost](la); len(lost) > 0 {
		t.Errorf("alice lost her session: %v", lost[0].Err)
	}
}

// TestSeatHoldExpiryLeavesTheRoomAndLateResumeIsRejoinClass keeps two
// clients away past the seat hold: the room sees each leave with
// SEAT_EXPIRED (and tells the other members), a late resume with the old
// token gets not_found and the rejoin-class session_expired close, and the
// SDK reports the session lost and carries on with a new one.
func TestSeatHoldExpiryLeavesTheRoomAndLateResumeIsRejoinClass(t *testing.T) {
	const seatHold = 300 * time.Millisecond
	rec := newRecorder()
	n := startNode(t, func(c *gateway.Config) {
		c.RoomTypes = []room.Type{recordingType("rec", rec, 0)}
		c.Heartbeat = 100 * time.Millisecond
		c.SeatHold = seatHold
	})
	ctx := context.Background()

	// An observer in the room, which stays connected throughout.
	obs := dialSDK(t, sdkConfig(n, newProxy(t, n), "observer", protocol.CodecJSON))
	lo := sdktest.LogEvents(t, obs)
	ro, err := obs.Join(ctx, client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "rec"})
	if err != nil {
		t.Fatal(err)
	}

	// A raw client, cut and kept away until its seat hold is over.
	pr := newProxy(t, n)
	raw := dialRaw(t, "ws://"+pr.Addr()+"/ws", protocol.CodecBinary)
	conn := raw.connect(n.token(t, "raw"))
	joined := raw.join(&protocol.Join{RoomId: ro.ID()})

	// An SDK client whose connection goes silent: the server notices at
	// once, the SDK only after the seat hold, so its resume comes too late.
	ps := newProxy(t, n)
	cfgS := sdkConfig(n, ps, "sdk", protocol.CodecJSON)
	cfgS.HeartbeatTimeout = 2 * time.Second
	sdk := dialSDK(t, cfgS)
	ls := sdktest.LogEvents(t, sdk)
	if _, err := sdk.Join(ctx, client.JoinOptions{RoomID: ro.ID()}); err != nil {
		t.Fatal(err)
	}

	pr.Conns()[0].Reset()
	sc := ps.Conns()[0]
	sc.Silence(faultproxy.Upstream)
	sc.Silence(faultproxy.Downstream)

	for _, p := range []string{"raw", "sdk"} {
		waitFor(t, 10*time.Second, p+" to leave the room", func() bool { return len(rec.leavesOf(p)) > 0 })
		if got := rec.leavesOf(p); !slices.Equal(got, []protocol.LeaveReason{protocol.LeaveReason_LEAVE_REASON_SEAT_EXPIRED}) {
			t.Errorf("the room saw %s leave with %v, want SEAT_EXPIRED", p, got)
		}
		waitFor(t, 10*time.Second, "the observer to see "+p+" leave", func() bool {
			return slices.ContainsFunc(lo.RoomEvents(p), isKind(protocol.RoomEventKind_ROOM_EVENT_LEFT))
		})
		ev := lo.RoomEvents(p)
		if last := ev[len(ev)-1]; last.Kind != protocol.RoomEventKind_ROOM_EVENT_LEFT || last.Reason != protocol.LeaveReason_LEAVE_REASON_SEAT_EXPIRED {
			t.Errorf("the observer saw %s %v (reason %v) last, want LEFT with SEAT_EXPIRED", p, last.Kind, last.Reason)
		}
	}

	// The raw client comes back with its old resume token, too late.
	late := dialRaw(t, "ws://"+pr.Addr()+"/ws", protocol.CodecBinary)
	late.send(&protocol.Envelope{Cid: 1, Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{
		Token: n.token(t, "raw"), ResumeToken: conn.ResumeToken,
		Positions: []*protocol.StreamPos{{Seq: 1}, {Room: ro.ID(), Epoch: joined.Epoch, Seq: joined.Seq}},
	}}})
	env, err := late.next()
	if err != nil || tandem.ErrorCode(env.GetError().GetCode()) != tandem.ENotFound {
		t.Errorf("late resume answered %v, %v; want error not_found", env, err)
	}
	if got := late.closeCode(); got != protocol.CloseSessionExpired || got.Class() != protocol.ClassRejoin {
		t.Errorf("late resume closed with %d (%s), want %d session_expired (rejoin class)", got, got, protocol.CloseSessionExpired)
	}

	// The SDK's own late resume is refused the same way: it reports the
	// session lost, with its room, and carries on with a new session.
	waitFor(t, 10*time.Second, "the SDK to report the session lost", func() bool {
		return len(sdktest.EventsOf[*client.SessionLost](ls)) > 0
	})
	lost := sdktest.EventsOf[*client.SessionLost](ls)[0]
	var ce *client.CloseError
	if !errors.As(lost.Err, &ce) || ce.Code != protocol.CloseSessionExpired {
		t.Errorf("SessionLost.Err = %v, want the session_expired close", lost.Err)
	}
	if !slices.Equal(lost.Rooms, []string{ro.ID()}) {
		t.Errorf("SessionLost.Rooms = %v, want [%s]", lost.Rooms, ro.ID())
	}
	if _, err := sdk.RPC(ctx, "echo", []byte("x")); err != nil {
		t.Errorf("the new session does not work: %v", err)
	}
}

// TestGapBeyondBufferSendsSnapshotAndNewEpoch keeps a client of an arena
// away while more frames go by than the room's replay buffer holds: its
// resume gets a gap with a new epoch and the room's snapshot, and the state
// it then builds from the gap and the deltas after it equals the room's
// own snapshot for it.
func TestGapBeyondBufferSendsSnapshotAndNewEpoch(t *testing.T) {
	const replay = 8
	n := startNode(t, func(c *gateway.Config) {
		c.RoomTypes = []room.Type{snapshotArenaType()}
		c.ReplayCount = replay
		c.SeatHold = time.Minute
	})
	ctx := context.Background()
	pa := newProxy(t, n)
	alice := dialSDK(t, sdkConfig(n, pa, "alice", protocol.CodecJSON))
	la := sdktest.LogEvents(t, alice)
	bob := dialSDK(t, sdkConfig(n, newProxy(t, n), "bob", protocol.CodecBinary))
	lb := sdktest.LogEvents(t, bob)
	ra, err := alice.Join(ctx, client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "arena"})
	if err != nil {
		t.Fatal(err)
	}
	joinedState := ra.State()
	rb, err := bob.Join(ctx, client.JoinOptions{RoomID: ra.ID()})
	if err != nil {
		t.Fatal(err)
	}
	bobJoinedState := rb.State()
	// Bob walks towards the middle, so that every tick changes the state
	// for the rest of the test.
	var bobAt arenaPlayer
	waitFor(t, 10*time.Second, "bob's spawn point", func() bool {
		for _, d := range sdktest.EventsOf[*client.Delta](lb) {
			var patch struct{ Set map[string]json.RawMessage }
			if json.Unmarshal(d.Patch, &patch) == nil && patch.Set["p:bob"] != nil {
				return json.Unmarshal(patch.Set["p:bob"], &bobAt) == nil
			}
		}
		return false
	})
	move, _ := json.Marshal(map[string]int{"dx": towardsMiddle(bobAt.X), "dy": towardsMiddle(bobAt.Y)})
	if err := rb.Send(ctx, "move", move, client.HandlerOnly()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "alice to see bob move", func() bool { return len(sdktest.EventsOf[*client.Delta](la)) >= 3 })

	// Alice is cut and kept away while far more frames than the buffer
	// holds go by.
	pa.SetDefaults(faultproxy.Faults{Upstream: faultproxy.DirectionFaults{ResetAfter: 1}})
	pa.Conns()[0].Reset()
	waitFor(t, 10*time.Second, "alice's SDK to notice the cut", func() bool { return len(sdktest.EventsOf[*client.Disconnected](la)) == 1 })
	seen := len(sdktest.EventsOf[*client.Delta](lb))
	waitFor(t, 10*time.Second, "bob to see the room move on", func() bool { return len(sdktest.EventsOf[*client.Delta](lb)) >= seen+3*replay })
	pa.SetDefaults(faultproxy.Faults{})

	waitFor(t, 10*time.Second, "alice to resume", func() bool { return len(sdktest.EventsOf[*client.Resumed](la)) == 1 })
	waitFor(t, 10*time.Second, "alice's gap", func() bool { return len(sdktest.EventsOf[*client.Gap](la)) == 1 })
	gap := sdktest.EventsOf[*client.Gap](la)[0]
	if gap.Epoch != 2 {
		t.Errorf("gap epoch %d, want 2", gap.Epoch)
	}
	if _, ok := entities(t, gap.State)["p:alice"]; !ok {
		t.Errorf("gap state %s has no entity for alice", gap.State)
	}

	// Both ask the room for its snapshot for them; it arrives in their
	// stream, so each compares it with the state it built at that point.
	for _, r := range []*client.Room{ra, rb} {
		if err := r.Send(ctx, "snapshot?", nil, client.HandlerOnly()); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []*sdktest.EventLog{la, lb} {
		waitFor(t, 10*time.Second, "the snapshot", func() bool { return len(l.Messages("snapshot")) == 1 })
	}
	checkArenaStream(t, "alice", joinedState, la.All(), 1)
	checkArenaStream(t, "bob", bobJoinedState, lb.All(), 0)
	if len(sdktest.EventsOf[*client.Gap](lb)) != 0 {
		t.Error("bob, never cut, got a gap")
	}
}

// checkArenaStream applies a client's arena stream to its joined state with
// the merge rules of room.State — a delta's "set" replaces each value, its
// "del" removes keys, a gap replaces the whole state — and compares the
// result with the room's own snapshot where it arrives in the stream.
func checkArenaStream(t *testing.T, who string, joined []byte, events []client.Event, wantGaps int) {
	t.Helper()
	state := entities(t, joined)
	gaps, compared := 0, false
	for _, ev := range events {
		switch e := ev.(type) {
		case *client.Gap:
			gaps++
			state = entities(t, e.State)
		case *client.Delta:
			var d struct {
				Set map[string]json.RawMessage `json:"set"`
				Del []string                   `json:"del"`
			}
			if err := json.Unmarshal(e.Patch, &d); err != nil {
				t.Fatalf("%s: delta %s: %v", who, e.Patch, err)
			}
			maps.Copy(state, d.Set)
			for _, k := range d.Del {
				delete(state, k)
			}
		case *client.RoomMessage:
			if e.Topic != "snapshot" {
				continue
			}
			compared = true
			if want := entities(t, e.Data); !equalJSON(state, want) {
				t.Errorf("%s's state after its stream:\n%s\nthe room's snapshot for %s:\n%s", who, show(state), who, show(want))
			}
		}
	}
	if !compared {
		t.Errorf("%s got no snapshot to compare with", who)
	}
	if gaps != wantGaps {
		t.Errorf("%s got %d gaps, want %d", who, gaps, wantGaps)
	}
}

// snapshotArenaType is the built-in arena at 100 ticks a second, which also
// answers room_message{topic:"snapshot?"} at its next tick, after the
// tick's delta, with room_message{topic:"snapshot"} carrying the room's
// Snapshot for the asker: the state the asker must hold at that point of
// its stream.
func snapshotArenaType() room.Type {
	t := room.ArenaType()
	t.TickRate = 100
	arena := t.New
	t.New = func() room.Handler { return &snapshotArena{Handler: arena()} }
	return t
}

type snapshotArena struct {
	room.Handler
	asked []*tandem.Player
}

func (a *snapshotArena) Message(r *room.Room, p *tandem.Player, m room.Message) {
	if m.Topic == "snapshot?" {
		a.asked = append(a.asked, p)
		return
	}
	a.Handler.Message(r, p, m)
}

func (a *snapshotArena) Tick(r *room.Room) {
	a.Handler.Tick(r)
	for _, p := range a.asked {
		r.Send([]string{p.ID}, "snapshot", a.Handler.Snapshot(r, p))
	}
	a.asked = nil
}

type arenaPlayer struct {
	X, Y int
}

func towardsMiddle(v int) int {
	if v < room.ArenaWidth/2 {
		return 1
	}
	return -1
}

// entities returns the entities of a state snapshot.
func entities(t *testing.T, snapshot []byte) map[string]json.RawMessage {
	t.Helper()
	var s struct {
		Entities map[string]json.RawMessage `json:"entities"`
	}
	if err := json.Unmarshal(snapshot, &s); err != nil {
		t.Fatalf("snapshot %q: %v", snapshot, err)
	}
	if s.Entities == nil {
		s.Entities = map[string]json.RawMessage{}
	}
	return s.Entities
}

func equalJSON(a, b map[string]json.RawMessage) bool {
	decode := func(m map[string]json.RawMessage) map[string]any {
		out := make(map[string]any, len(m))
		for k, v := range m {
			var x any
			_ = json.Unmarshal(v, &x)
			out[k] = x
		}
		return out
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

func show(m map[string]json.RawMessage) string {
	b, _ := json.MarshalIndent(m, "", "  ")
	return string(b)
}

// TestSlowConsumerIsDisconnectedWhileOthersKeepReceiving throttles one of
// three members of a room with a fast broadcast to 2 KiB/s: the server
// closes it with slow_consumer (and it resumes, with a gap, as that code is
// resume class), while the other two receive every message, in order, and
// are never disconnected.
func TestSlowConsumerIsDisconnectedWhileOthersKeepReceiving(t *testing.T) {
	var m *observe.Realtime
	rec := newRecorder()
	n := startNode(t, func(c *gateway.Config) {
		withMetrics(&m)(c)
		c.RoomTypes = []room.Type{recordingType("rec", rec, 100)}
		c.SendQueue = 512 // 128 ticks of the broadcast
		c.SeatHold = time.Minute
	})
	ctx := context.Background()
	ps := newProxy(t, n)
	cfgSlow := sdkConfig(n, ps, "slow", protocol.CodecBinary)
	// The slow reader's SDK must not give up on the trickle by itself: the
	// server is to find out that it cannot keep up.
	cfgSlow.HeartbeatTimeout = time.Minute
	slow := dialSDK(t, cfgSlow)
	ls := sdktest.LogEvents(t, slow)
	fast := []*client.Client{
		dialSDK(t, sdkConfig(n, newProxy(t, n), "fast-1", protocol.CodecBinary)),
		dialSDK(t, sdkConfig(n, newProxy(t, n), "fast-2", protocol.CodecBinary)),
	}
	lf := []*sdktest.EventLog{sdktest.LogEvents(t, fast[0]), sdktest.LogEvents(t, fast[1])}

	// The broadcast starts once all three joined (a fast member joining
	// late would miss the first messages): 400 messages of 8 KiB a second
	// until the test stops it. (The proxy itself queues up to 4 MiB
	// of a throttled connection, and the kernel several more, before the
	// server's send queue starts to fill.)
	ro, err := slow.Join(ctx, client.JoinOptions{
		Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "rec",
		Options: recOptions{PerTick: 4, Size: 8 << 10, Members: 3}.bytes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Reconnects are throttled too, so the slow reader stays slow until
	// the server has found it out.
	throttle := faultproxy.Faults{Downstream: faultproxy.DirectionFaults{BytesPerSecond: 2 << 10}}
	ps.SetDefaults(throttle)
	ps.Conns()[0].SetThrottle(faultproxy.Downstream, 2<<10)
	started := time.Now()
	for _, c := range fast {
		if _, err := c.Join(ctx, client.JoinOptions{RoomID: ro.ID()}); err != nil {
			t.Fatal(err)
		}
	}

	waitFor(t, 60*time.Second, "the server to close the slow reader as a slow consumer", func() bool {
		return closesWith(m, protocol.CloseSlowConsumer) >= 1
	})
	slowHad := len(ls.Messages("n"))
	t.Logf("slow consumer detected after %v", time.Since(started))
	rec.stop.Store(true)
	// The trickle ends, so the slow reader's SDK reads the rest and resumes.
	ps.SetDefaults(faultproxy.Faults{})
	for _, c := range ps.Conns() {
		c.SetThrottle(faultproxy.Downstream, 0)
	}

	for i, l := range lf {
		waitFor(t, 30*time.Second, fmt.Sprintf("fast-%d to receive the end of the broadcast", i+1), func() bool {
			return len(l.Messages("end")) == 1
		})
	}
	last, _ := strconv.Atoi(lf[0].Messages("end")[0])
	t.Logf("%d messages broadcast; the slow reader had %d", last, slowHad)
	if slowHad+500 > last {
		t.Errorf("the slow reader had %d of %d messages when it was cut off: it was not behind", slowHad, last)
	}
	for i, l := range lf {
		got := l.Messages("n")
		ok := len(got) == last
		for k := 0; ok && k < len(got); k++ {
			v, _ := strconv.Atoi(trimPad(got[k]))
			ok = v == k+1
		}
		if !ok {
			t.Errorf("fast-%d received %d messages, not 1…%d exactly once in order", i+1, len(got), last)
		}
	}
	for i, l := range lf {
		if d := sdktest.EventsOf[*client.Disconnected](l); len(d) > 0 {
			t.Errorf("fast-%d was disconnected: %v", i+1, d[0].Err)
		}
	}

	// Slow consumer is resume class: the slow reader's SDK comes back into
	// the same session.
	waitFor(t, 30*time.Second, "the slow reader to resume", func() bool { return len(sdktest.EventsOf[*client.Resumed](ls)) >= 1 })
	d := sdktest.EventsOf[*client.Disconnected](ls)
	var ce *client.CloseError
	switch {
	case len(d) == 0:
		t.Error("the slow reader's SDK resumed without a Disconnected")
	case errors.As(d[0].Err, &ce) && ce.Code.Class() != protocol.ClassResume:
		t.Errorf("the slow reader's connection ended with %v, want a resume-class ending", d[0].Err)
	default:
		t.Logf("the slow reader's SDK saw: %v", d[0].Err)
	}
	if lost := sdktest.EventsOf[*client.SessionLost](ls); len(lost) > 0 {
		t.Errorf("the slow reader lost its session: %v", lost[0].Err)
	}
	// Nothing is lost silently on the slow reader's side either: its
	// stream runs on in order, and jumps only at a gap.
	waitFor(t, 30*time.Second, "the slow reader to catch up (the end of the broadcast, or a gap past it)", func() bool {
		return len(ls.Messages("end")) == 1 || len(sdktest.EventsOf[*client.Gap](ls)) > 0
	})
	next := 1
	for _, ev := range ls.All() {
		switch e := ev.(type) {
		case *client.Gap:
			t.Logf("the slow reader got a gap from room seq %d to %d, epoch %d", e.FromSeq, e.Seq, e.Epoch)
			next = 0
		case *client.RoomMessage:
			if e.Topic != "n" {
				continue
			}
			v, _ := strconv.Atoi(trimPad(string(e.Data)))
			if next != 0 && v != next {
				t.Fatalf("the slow reader got message %d when %d was next, without a gap", v, next)
			}
			next = v + 1
		}
	}
}

func trimPad(s string) string {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

func isKind(k protocol.RoomEventKind) func(*client.RoomEvent) bool {
	return func(e *client.RoomEvent) bool { return e.Kind == k }
}

func kinds(evs []*client.RoomEvent) []protocol.RoomEventKind {
	out := make([]protocol.RoomEventKind, len(evs))
	for i, e := range evs {
		out[i] = e.Kind
	}
	return out
}

func describe(d []*client.Disconnected) []string {
	out := make([]string, len(d))
	for i, e := range d {
		out[i] = fmt.Sprint(e.Err)
	}
	return out
}

// TestResumeTakesOverAHalfOpenConnection is the other order: the SDK gives
// up on a silent connection and resumes while the server still thinks the
// old one is up. The resume takes the session over; what was sent on the
// dead connection arrives once, on the new one.
func TestResumeTakesOverAHalfOpenConnection(t *testing.T) {
	var m *observe.Realtime
	n := startNode(t, func(c *gateway.Config) {
		withMetrics(&m)(c)
		c.Heartbeat = 5 * time.Second // the server would wait 12.5 s
		c.SeatHold = time.Minute
	})
	pa := newProxy(t, n)
	cfgA := sdkConfig(n, pa, "alice", protocol.CodecBinary)
	cfgA.HeartbeatTimeout = 300 * time.Millisecond
	alice := dialSDK(t, cfgA)
	la := sdktest.LogEvents(t, alice)
	bob := dialSDK(t, sdkConfig(n, newProxy(t, n), "bob", protocol.CodecJSON))
	lb := sdktest.LogEvents(t, bob)
	ctx := context.Background()
	ra, err := alice.Join(ctx, client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := bob.Join(ctx, client.JoinOptions{RoomID: ra.ID()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "alice to see bob join", func() bool { return len(la.RoomEvents("bob")) > 0 })

	old := pa.Conns()[0]
	old.Silence(faultproxy.Upstream)
	old.Silence(faultproxy.Downstream)
	for i := 1; i <= 10; i++ {
		if err := rb.Send(ctx, "b", []byte("b"+strconv.Itoa(i)), client.Others()); err != nil {
			t.Fatal(err)
		}
		if err := ra.Send(ctx, "a", []byte("a"+strconv.Itoa(i)), client.Others()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "alice's SDK to resume", func() bool { return len(sdktest.EventsOf[*client.Resumed](la)) == 1 })
	if got := closesWith(m, protocol.CloseReplaced); got != 1 {
		t.Errorf("%v connections closed as replaced, want the old one", got)
	}
	if got := closesWith(m, protocol.CloseHeartbeatTimeout); got != 0 {
		t.Errorf("the server closed %v connections for missed heartbeats; it should not have noticed", got)
	}
	for _, r := range []*client.Room{ra, rb} {
		if err := r.Send(ctx, "end", nil, client.Others()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the end markers", func() bool {
		return len(la.Messages("end")) == 1 && len(lb.Messages("end")) == 1
	})
	if got, want := la.Messages("b"), numbered("b", 10); !slices.Equal(got, want) {
		t.Errorf("alice received %v, want %v", got, want)
	}
	if got, want := lb.Messages("a"), numbered("a", 10); !slices.Equal(got, want) {
		t.Errorf("bob received %v, want %v", got, want)
	}
	if got := kinds(lb.RoomEvents("alice")); !slices.Equal(got, []protocol.RoomEventKind{
		protocol.RoomEventKind_ROOM_EVENT_DISCONNECTED, protocol.RoomEventKind_ROOM_EVENT_REJOINED,
	}) {
		t.Errorf("bob saw alice %v, want disconnected then rejoined", got)
	}
}
