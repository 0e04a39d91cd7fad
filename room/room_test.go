package room

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
	"google.golang.org/protobuf/testing/protocmp"
)

// encode is the simplest Encoder: the codec's payload, no WebSocket header.
func encode(c protocol.CodecID, env *protocol.Envelope) ([]byte, error) {
	return c.Codec().Marshal(nil, env)
}

// countingEncoder is encode that counts its calls per codec.
type countingEncoder struct {
	calls [protocol.NumCodecs]atomic.Int64
}

func (e *countingEncoder) Encode(c protocol.CodecID, env *protocol.Envelope) ([]byte, error) {
	e.calls[c].Add(1)
	return encode(c, env)
}

func (e *countingEncoder) counts() [protocol.NumCodecs]int64 {
	var n [protocol.NumCodecs]int64
	for c := range n {
		n[c] = e.calls[c].Load()
	}
	return n
}

// captureMember is a fake session: it decodes every room-stream frame the
// room delivers and records its session-stream replies. The room calls it
// on the room goroutine; tests read it from theirs.
type captureMember struct {
	t      testing.TB
	player tandem.Player
	codec  protocol.CodecID
	down   bool // JoinedRoom reports the connection down

	mu      sync.Mutex
	raw     [][]byte
	frames  []*protocol.Envelope
	replies []*protocol.Envelope
	links   []Link
	left    []string
}

func newMember(t testing.TB, id string, codec protocol.CodecID) *captureMember {
	return &captureMember{t: t, player: tandem.Player{ID: id, Name: "name of " + id}, codec: codec}
}

func (c *captureMember) Player() *tandem.Player  { return &c.player }
func (c *captureMember) Codec() protocol.CodecID { return c.codec }
func (c *captureMember) RTT() time.Duration      { return 0 }

func (c *captureMember) Deliver(frame []byte) {
	env := new(protocol.Envelope)
	if err := c.codec.Codec().Unmarshal(frame, env); err != nil {
		c.t.Errorf("%s got an undecodable frame: %v", c.player.ID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raw = append(c.raw, frame)
	c.frames = append(c.frames, env)
}

func (c *captureMember) Reply(env *protocol.Envelope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replies = append(c.replies, env)
}

func (c *captureMember) JoinedRoom(l Link) (bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.links = append(c.links, l)
	return !c.down, true
}

func (c *captureMember) LeftRoom(roomID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.left = append(c.left, roomID)
}

func (c *captureMember) Frames() []*protocol.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.frames)
}

func (c *captureMember) Raw() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.raw)
}

func (c *captureMember) Replies() []*protocol.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.replies)
}

func (c *captureMember) Left() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.left)
}

// lastReply returns the newest reply, failing the test if there is none.
func (c *captureMember) lastReply(t testing.TB) *protocol.Envelope {
	t.Helper()
	rs := c.Replies()
	if len(rs) == 0 {
		t.Fatalf("%s got no reply", c.player.ID)
	}
	return rs[len(rs)-1]
}

// summaries describes frames one line each, so tests can compare what a
// member saw without spelling out whole envelopes.
func summaries(envs []*protocol.Envelope) []string {
	s := make([]string, len(envs))
	for i, env := range envs {
		s[i] = summary(env)
	}
	return s
}

func summary(env *protocol.Envelope) string {
	switch b := env.Body.(type) {
	case *protocol.Envelope_RoomMessage:
		return fmt.Sprintf("message from=%s topic=%s data=%s", b.RoomMessage.From, b.RoomMessage.Topic, b.RoomMessage.Data)
	case *protocol.Envelope_RoomEvent:
		kind := strings.TrimPrefix(b.RoomEvent.Kind.String(), "ROOM_EVENT_")
		if b.RoomEvent.Reason != 0 {
			return fmt.Sprintf("event %s %s %s", kind, b.RoomEvent.PlayerId, strings.TrimPrefix(b.RoomEvent.Reason.String(), "LEAVE_REASON_"))
		}
		return fmt.Sprintf("event %s %s", kind, b.RoomEvent.PlayerId)
	case *protocol.Envelope_Delta:
		return fmt.Sprintf("delta %s", b.Delta.Patch)
	case *protocol.Envelope_Snapshot:
		return fmt.Sprintf("snapshot %s", b.Snapshot.State)
	case *protocol.Envelope_Gap:
		return fmt.Sprintf("gap epoch=%d state=%s", b.Gap.Epoch, b.Gap.State)
	case *protocol.Envelope_Leave:
		return "leave " + strings.TrimPrefix(b.Leave.Reason.String(), "LEAVE_REASON_")
	case *protocol.Envelope_Joined:
		return fmt.Sprintf("joined players=%v state=%s", b.Joined.Players, b.Joined.State)
	case *protocol.Envelope_Error:
		return fmt.Sprintf("error %s", tandem.ErrorCode(b.Error.Code))
	}
	return fmt.Sprintf("%T", env.Body)
}

// recorder is a room type for runtime tests: it records every hook call,
// forwards messages as asked, and gives each player a snapshot naming it.
type recorder struct {
	calls       []string
	ticks       atomic.Int64
	joinAttempt func(p *tandem.Player, metadata []byte) error
}

func recorderType(name string, maxPlayers, tickRate int) Type {
	return Type{Name: name, New: func() Handler { return &recorder{} }, MaxPlayers: maxPlayers, TickRate: tickRate}
}

func (h *recorder) record(format string, args ...any) {
	h.calls = append(h.calls, fmt.Sprintf(format, args...))
}

func (h *recorder) Init(r *Room, options []byte) error {
	if string(options) == "refuse" {
		return tandem.Errorf(tandem.EInvalid, "refused")
	}
	h.record("Init %s", options)
	return nil
}

func (h *recorder) JoinAttempt(r *Room, p *tandem.Player, metadata []byte) error {
	h.record("JoinAttempt %s", p.ID)
	if h.joinAttempt != nil {
		return h.joinAttempt(p, metadata)
	}
	return nil
}

func (h *recorder) Join(r *Room, p *tandem.Player)       { h.record("Join %s", p.ID) }
func (h *recorder) Disconnect(r *Room, p *tandem.Player) { h.record("Disconnect %s", p.ID) }
func (h *recorder) Rejoin(r *Room, p *tandem.Player)     { h.record("Rejoin %s", p.ID) }
func (h *recorder) Leave(r *Room, p *tandem.Player, reason protocol.LeaveReason) {
	h.record("Leave %s %s", p.ID, reason)
}
func (h *recorder) Message(r *Room, p *tandem.Player, m Message) { r.Forward(p, m) }
func (h *recorder) Tick(r *Room)                                 { h.ticks.Add(1) }
func (h *recorder) Snapshot(r *Room, p *tandem.Player) []byte {
	return []byte("state for " + p.ID)
}
func (h *recorder) Shutdown(r *Room) { h.record("Shutdown") }

// script drives a room's state machine on the test goroutine, one input at
// a time, the way Replay does; the test goroutine is the room goroutine.
type script struct {
	t       testing.TB
	r       *Room
	now     time.Time
	members map[string]*captureMember
}

func newScript(t testing.TB, cfg Config) *script {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "room-1"
	}
	if cfg.Encoder == nil {
		cfg.Encoder = encode
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg.Clock = func() time.Time { return now }
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &script{t: t, r: r, now: now, members: make(map[string]*captureMember)}
}

func (s *script) apply(in Input, m Member) {
	s.now = s.now.Add(time.Millisecond)
	in.At = s.now
	s.r.apply(input{Input: in, member: m})
}

// join makes a member for the player and asks the room to add it.
func (s *script) join(id string, codec protocol.CodecID) *captureMember {
	m := newMember(s.t, id, codec)
	s.members[id] = m
	s.apply(Input{Kind: InputJoin, Player: m.player, Cid: uint64(len(s.members))}, m)
	return m
}

func (s *script) leave(id string, reason protocol.LeaveReason) {
	s.apply(Input{Kind: InputLeave, Player: tandem.Player{ID: id}, Reason: reason}, nil)
}

func (s *script) disconnect(id string) {
	s.apply(Input{Kind: InputDisconnect, Player: tandem.Player{ID: id}}, nil)
}

func (s *script) rejoin(id string, pos *protocol.StreamPos) {
	s.apply(Input{Kind: InputRejoin, Player: tandem.Player{ID: id}, Pos: pos}, nil)
}

func (s *script) send(id string, m Message) {
	s.apply(Input{Kind: InputMessage, Player: tandem.Player{ID: id}, Message: m}, nil)
}

func (s *script) tick() { s.apply(Input{Kind: InputTick}, nil) }

func (s *script) recorder() *recorder { return s.r.handler.(*recorder) }

// seqOf returns the room seq of the first frame a member got that matches.
func seqOf(t testing.TB, m *captureMember, want string) uint64 {
	t.Helper()
	for _, f := range m.Frames() {
		if summary(f) == want {
			return f.Seq
		}
	}
	t.Fatalf("%s got no frame %q", m.player.ID, want)
	return 0
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestJoinRepliesJoinedWithSnapshotAndPlayers(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecBinary)

	want := &protocol.Envelope{Cid: 2, Body: &protocol.Envelope_Joined{Joined: &protocol.Joined{
		RoomId:   "room-1",
		RoomType: "test",
		Epoch:    1,
		Seq:      2, // after both join events: the stream starts after bob's Join hook
		State:    []byte("state for bob"),
		Players:  []string{"alice", "bob"},
	}}}
	if diff := cmp.Diff(want, bob.lastReply(t), protocmp.Transform()); diff != "" {
		t.Errorf("bob's joined reply (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Init ", "JoinAttempt alice", "Join alice", "JoinAttempt bob", "Join bob"}, s.recorder().calls); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
}

func TestJoinIsAnnouncedToOthersButNotTheJoiner(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	alice := s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecJSON)

	if diff := cmp.Diff([]string{"event JOINED bob"}, summaries(alice.Frames())); diff != "" {
		t.Errorf("alice's frames (-want +got):\n%s", diff)
	}
	if got := summaries(bob.Frames()); len(got) != 0 {
		t.Errorf("bob got frames about his own join: %v", got)
	}
	if f := alice.Frames()[0]; f.Room != "room-1" || f.Seq != 2 {
		t.Errorf("join event at room %q seq %d, want room-1 seq 2", f.Room, f.Seq)
	}
}

func TestLeaveReasonReachesLeaverOnSessionStreamAndOthersAsEvent(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	alice := s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecBinary)
	s.leave("bob", protocol.LeaveReason_LEAVE_REASON_REQUESTED)

	want := &protocol.Envelope{Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{
		RoomId: "room-1", Reason: protocol.LeaveReason_LEAVE_REASON_REQUESTED,
	}}}
	if diff := cmp.Diff(want, bob.lastReply(t), protocmp.Transform()); diff != "" {
		t.Errorf("bob's leave (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"room-1"}, bob.Left()); diff != "" {
		t.Errorf("rooms bob's session left (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"event JOINED bob", "event LEFT bob REQUESTED"}, summaries(alice.Frames())); diff != "" {
		t.Errorf("alice's frames (-want +got):\n%s", diff)
	}
	if got := s.recorder().calls; got[len(got)-1] != "Leave bob LEAVE_REASON_REQUESTED" {
		t.Errorf("last hook = %q, want the Leave hook with the reason", got[len(got)-1])
	}
	if diff := cmp.Diff([]string{"alice"}, s.r.playerIDs()); diff != "" {
		t.Errorf("players (-want +got):\n%s", diff)
	}
}

func TestDisconnectedMemberGetsNothingUntilRejoin(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	alice := s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecJSON)
	s.disconnect("bob")
	s.send("alice", Message{Topic: "chat", Data: []byte("hi")})

	if got := summaries(bob.Frames()); len(got) != 0 {
		t.Errorf("disconnected bob got %v", got)
	}
	if diff := cmp.Diff([]string{"event JOINED bob", "event DISCONNECTED bob", "message from=alice topic=chat data=hi"}, summaries(alice.Frames())); diff != "" {
		t.Errorf("alice's frames (-want +got):\n%s", diff)
	}
	if s.r.Connected("bob") {
		t.Error("bob is still connected")
	}
}

func TestRejoinReplaysFramesAfterPositionInOrder(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	alice := s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecBinary)
	carol := s.join("carol", protocol.CodecJSON)
	s.send("alice", Message{Topic: "m1", Data: []byte("1")}) // bob receives this one live
	s.disconnect("bob")
	s.send("alice", Message{Topic: "m2", Data: []byte("2")})
	s.send("alice", Message{Topic: "m3", Data: []byte("3"), Delivery: protocol.Delivery_DELIVERY_LIST, To: []string{"carol"}})
	s.send("carol", Message{Topic: "m4", Data: []byte("4"), Delivery: protocol.Delivery_DELIVERY_OTHERS})
	s.send("alice", Message{Topic: "m5", Data: []byte("5"), Delivery: protocol.Delivery_DELIVERY_LIST, To: []string{"bob", "carol"}})
	s.send("bob", Message{Topic: "m6", Data: []byte("6"), Delivery: protocol.Delivery_DELIVERY_OTHERS})
	before := len(bob.Frames())

	// Bob's client had m1 and says so.
	s.rejoin("bob", &protocol.StreamPos{Room: "room-1", Epoch: 1, Seq: seqOf(t, bob, "message from=alice topic=m1 data=1")})

	replayed := bob.Frames()[before:]
	want := []string{
		"message from=alice topic=m2 data=2",
		"message from=carol topic=m4 data=4",
		"message from=alice topic=m5 data=5",
	}
	if diff := cmp.Diff(want, summaries(replayed)); diff != "" {
		t.Errorf("replayed to bob (-want +got):\n%s", diff)
	}
	// The replayed frames are the ones the others got live, at the same seqs.
	live := append(alice.Frames(), carol.Frames()...)
	for _, f := range replayed {
		i := slices.IndexFunc(live, func(g *protocol.Envelope) bool { return summary(g) == summary(f) })
		if i < 0 || live[i].Seq != f.Seq {
			t.Errorf("%s replayed at seq %d, not as sent live", summary(f), f.Seq)
		}
	}
	if got := summaries(alice.Frames()); got[len(got)-1] != "event REJOINED bob" {
		t.Errorf("alice's last frame = %q, want bob's rejoin event", got[len(got)-1])
	}
	if got := s.recorder().calls; got[len(got)-1] != "Rejoin bob" {
		t.Errorf("last hook = %q, want Rejoin bob", got[len(got)-1])
	}

	s.send("alice", Message{Topic: "m7", Data: []byte("7")})
	if got := summary(bob.Frames()[len(bob.Frames())-1]); got != "message from=alice topic=m7 data=7" {
		t.Errorf("after the rejoin bob got %q, want m7 live", got)
	}
}

func TestRejoinBeyondBufferSendsGapWithNewEpochAndState(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0), ReplayCount: 4})
	s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecBinary)
	joinSeq := bob.lastReply(t).GetJoined().Seq
	s.disconnect("bob")
	for i := range 10 {
		s.send("alice", Message{Topic: "chat", Data: fmt.Appendf(nil, "%d", i)})
	}
	gapSeq := s.r.seq // the room's position when bob comes back
	s.rejoin("bob", &protocol.StreamPos{Room: "room-1", Epoch: 1, Seq: joinSeq})

	want := []*protocol.Envelope{{Room: "room-1", Seq: gapSeq, Body: &protocol.Envelope_Gap{Gap: &protocol.Gap{
		RoomId: "room-1", FromSeq: joinSeq, Seq: gapSeq, Epoch: 2, State: []byte("state for bob"),
	}}}}
	if diff := cmp.Diff(want, bob.Frames(), protocmp.Transform()); diff != "" {
		t.Fatalf("bob's frames after the rejoin (-want +got):\n%s", diff)
	}

	// The new position (epoch 2) replays normally; the old epoch gets a gap.
	s.disconnect("bob")
	s.send("alice", Message{Topic: "chat", Data: []byte("after")})
	s.rejoin("bob", &protocol.StreamPos{Room: "room-1", Epoch: 2, Seq: gapSeq})
	if got := summary(bob.Frames()[1]); got != "message from=alice topic=chat data=after" {
		t.Errorf("rejoin at epoch 2 replayed %q", got)
	}
	s.rejoin("bob", &protocol.StreamPos{Room: "room-1", Epoch: 1, Seq: gapSeq})
	if got := summary(bob.Frames()[2]); got != "gap epoch=3 state=state for bob" {
		t.Errorf("rejoin at a stale epoch got %q, want a gap to epoch 3", got)
	}
}

func TestJoinFullRoomIsRefusedWithRoomFull(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 2, 0)})
	s.join("alice", protocol.CodecJSON)
	s.join("bob", protocol.CodecJSON)
	carol := s.join("carol", protocol.CodecJSON)

	want := &protocol.Envelope{Cid: 3, Body: &protocol.Envelope_Error{Error: &protocol.Error{
		Code: uint32(tandem.ERoomFull), Message: "room room-1 is full", Temporary: true,
	}}}
	if diff := cmp.Diff(want, carol.lastReply(t), protocmp.Transform()); diff != "" {
		t.Errorf("carol's reply (-want +got):\n%s", diff)
	}
	if slices.Contains(s.recorder().calls, "JoinAttempt carol") {
		t.Error("the handler was asked about a join to a full room")
	}
	if info := s.r.Info(); info.Open || info.Players != 2 {
		t.Errorf("info = %+v, want 2 players and closed to joins", info)
	}
}

func TestJoinLockedRoomIsRejectedUntilUnlocked(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	s.apply(Input{Kind: InputLock}, nil)
	alice := s.join("alice", protocol.CodecJSON)
	if got := summary(alice.lastReply(t)); got != "error join_rejected" {
		t.Errorf("join to a locked room: %s", got)
	}
	if s.r.Info().Open {
		t.Error("a locked room is listed as open")
	}
	s.apply(Input{Kind: InputUnlock}, nil)
	bob := s.join("bob", protocol.CodecJSON)
	if got := summary(bob.lastReply(t)); !strings.HasPrefix(got, "joined") {
		t.Errorf("join after unlock: %s", got)
	}
}

func TestJoinAttemptRefusalReachesThePlayer(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	s.recorder().joinAttempt = func(p *tandem.Player, metadata []byte) error {
		switch string(metadata) {
		case "banned":
			return tandem.Errorf(tandem.EPermission, "not you")
		case "late":
			return errors.New("the match has started")
		}
		return nil
	}
	for _, tc := range []struct {
		metadata string
		want     *protocol.Error
	}{
		{"banned", &protocol.Error{Code: uint32(tandem.EPermission), Message: "not you"}},
		{"late", &protocol.Error{Code: uint32(tandem.EJoinRejected), Message: "the match has started"}},
	} {
		m := newMember(t, "p-"+tc.metadata, protocol.CodecJSON)
		s.apply(Input{Kind: InputJoin, Player: m.player, Metadata: []byte(tc.metadata)}, m)
		if diff := cmp.Diff(tc.want, m.lastReply(t).GetError(), protocmp.Transform()); diff != "" {
			t.Errorf("metadata %q (-want +got):\n%s", tc.metadata, diff)
		}
	}
	if n := s.r.Info().Players; n != 0 {
		t.Errorf("%d players joined", n)
	}
}

func TestJoinTwiceIsAConflict(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	s.join("alice", protocol.CodecJSON)
	again := s.join("alice", protocol.CodecJSON)
	if got := summary(again.lastReply(t)); got != "error conflict" {
		t.Errorf("second join: %s", got)
	}
}

func TestMemberJoiningWithConnectionDownStartsDisconnected(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	s.join("alice", protocol.CodecJSON)
	bob := newMember(t, "bob", protocol.CodecJSON)
	bob.down = true
	s.apply(Input{Kind: InputJoin, Player: bob.player}, bob)
	s.send("alice", Message{Topic: "chat", Data: []byte("hi")})

	if s.r.Connected("bob") {
		t.Error("bob is connected")
	}
	if got := summaries(bob.Frames()); len(got) != 0 {
		t.Errorf("bob got %v while down", got)
	}
	s.rejoin("bob", &protocol.StreamPos{Room: "room-1", Epoch: 1, Seq: bob.lastReply(t).GetJoined().Seq})
	if diff := cmp.Diff([]string{"message from=alice topic=chat data=hi"}, summaries(bob.Frames())); diff != "" {
		t.Errorf("bob after rejoin (-want +got):\n%s", diff)
	}
}

func TestBroadcastIsEncodedOncePerCodecAndSharedByItsMembers(t *testing.T) {
	enc := new(countingEncoder)
	s := newScript(t, Config{Type: recorderType("test", 0, 0), Encoder: enc.Encode})
	var jsonMembers, binaryMembers []*captureMember
	for i := range 3 {
		jsonMembers = append(jsonMembers, s.join(fmt.Sprintf("json-%d", i), protocol.CodecJSON))
	}
	for i := range 2 {
		binaryMembers = append(binaryMembers, s.join(fmt.Sprintf("binary-%d", i), protocol.CodecBinary))
	}
	before := enc.counts()
	s.send("json-0", Message{Topic: "chat", Data: []byte("to everyone")})

	after := enc.counts()
	for c, want := range []int64{1, 1} {
		if got := after[c] - before[c]; got != want {
			t.Errorf("codec %d: %d encodings of one broadcast, want %d", c, got, want)
		}
	}
	for _, group := range [][]*captureMember{jsonMembers, binaryMembers} {
		first := last(group[0].Raw())
		for _, m := range group[1:] {
			if got := last(m.Raw()); unsafe.SliceData(got) != unsafe.SliceData(first) || len(got) != len(first) {
				t.Errorf("%s got its own copy of the frame, not the shared bytes", m.player.ID)
			}
		}
	}
	if diff := cmp.Diff(last(jsonMembers[0].Frames()), last(binaryMembers[0].Frames()), protocmp.Transform()); diff != "" {
		t.Errorf("the codecs carry different frames (-json +binary):\n%s", diff)
	}
}

func TestRoomWithOneCodecNeverEncodesTheOther(t *testing.T) {
	enc := new(countingEncoder)
	s := newScript(t, Config{Type: recorderType("test", 0, 0), Encoder: enc.Encode})
	s.join("alice", protocol.CodecBinary)
	s.join("bob", protocol.CodecBinary)
	s.send("alice", Message{Topic: "chat", Data: []byte("hi")})
	if n := enc.counts()[protocol.CodecJSON]; n != 0 {
		t.Errorf("%d JSON encodings in a binary-only room", n)
	}
}

func last[T any](s []T) T {
	var zero T
	if len(s) == 0 {
		return zero
	}
	return s[len(s)-1]
}

// liveRoom runs a room on its own goroutine until the test ends.
func liveRoom(t *testing.T, cfg Config) *Room {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "live-1"
	}
	if cfg.Encoder == nil {
		cfg.Encoder = encode
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	t.Cleanup(func() {
		cancel()
		<-r.Done()
	})
	return r
}

func TestLiveRoomTicksAndClosesWithRoomClosed(t *testing.T) {
	var closed atomic.Bool
	r := liveRoom(t, Config{Type: recorderType("test", 0, 200), OnClose: func(*Room) { closed.Store(true) }})
	h := r.handler.(*recorder)
	alice := newMember(t, "alice", protocol.CodecJSON)
	if err := r.Join(context.Background(), alice, 1, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's joined reply", func() bool { return len(alice.Replies()) == 1 })
	eventually(t, "three ticks", func() bool { return h.ticks.Load() >= 3 })

	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-r.Done()
	if got := summary(alice.lastReply(t)); got != "leave ROOM_CLOSED" {
		t.Errorf("alice's last reply = %s, want leave ROOM_CLOSED", got)
	}
	if !closed.Load() {
		t.Error("OnClose did not run")
	}
	if info := r.Info(); info.Open || info.Players != 0 {
		t.Errorf("info of a closed room = %+v", info)
	}
	calls := h.calls
	if diff := cmp.Diff([]string{"Leave alice LEAVE_REASON_ROOM_CLOSED", "Shutdown"}, calls[len(calls)-2:]); diff != "" {
		t.Errorf("last hooks (-want +got):\n%s", diff)
	}
}

func TestInputsToAnEndedRoomAreRefused(t *testing.T) {
	r := liveRoom(t, Config{Type: recorderType("test", 0, 0)})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-r.Done()
	// Many times: a send to the mailbox of an ended room must never win.
	for i := range 100 {
		m := newMember(t, fmt.Sprintf("p%d", i), protocol.CodecJSON)
		err := r.Join(context.Background(), m, 1, nil)
		if tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Fatalf("join %d to an ended room: err = %v, want not_found", i, err)
		}
	}
	if err := r.Disconnect(context.Background(), newMember(t, "p0", protocol.CodecJSON)); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("disconnect from an ended room: err = %v, want not_found", err)
	}
}

func TestNewRefusesWhatInitRefuses(t *testing.T) {
	_, err := New(Config{ID: "x", Type: recorderType("test", 0, 0), Options: []byte("refuse"), Encoder: encode})
	if tandem.ErrorCodeOf(err) != tandem.EInvalid {
		t.Errorf("err = %v, want the Init error", err)
	}
}

func TestManagerCreatesFindsListsAndClosesRooms(t *testing.T) {
	var mu sync.Mutex
	var changes []string
	m, err := NewManager(ManagerConfig{
		Types:   []Type{RelayType(), recorderType("duel", 1, 0)},
		Encoder: encode,
		OnChange: func(info Info, open bool) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, fmt.Sprintf("%s open=%v info.Open=%v", info.Type, open, info.Open))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if diff := cmp.Diff([]string{"duel", "relay"}, m.TypeNames()); diff != "" {
		t.Errorf("type names (-want +got):\n%s", diff)
	}
	if _, err := m.Create("nope", nil); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("create of an unknown type: err = %v", err)
	}

	relay1 := mustCreate(t, m, "relay")
	relay2 := mustCreate(t, m, "relay")
	duel := mustCreate(t, m, "duel")
	if got, ok := m.FindOpen("relay"); !ok || got != relay1 {
		t.Errorf("FindOpen(relay) = %v, %v; want the oldest relay room", got, ok)
	}
	if got, ok := m.Get(duel.ID()); !ok || got != duel {
		t.Errorf("Get(%s) = %v, %v", duel.ID(), got, ok)
	}

	alice := newMember(t, "alice", protocol.CodecJSON)
	if err := duel.Join(context.Background(), alice, 1, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the duel to fill up", func() bool { _, ok := m.FindOpen("duel"); return !ok })
	if err := relay1.SetLocked(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the locked relay to be passed over", func() bool { r, ok := m.FindOpen("relay"); return ok && r == relay2 })

	want := []Info{{ID: relay2.ID(), Type: "relay", Players: 0, MaxPlayers: RelayMaxPlayers, Open: true}}
	if diff := cmp.Diff(want, m.List("")); diff != "" {
		t.Errorf("open rooms (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"relay": 2, "duel": 1}, m.Count()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}

	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 {
		t.Errorf("%d rooms left after Close", m.Len())
	}
	if got := summary(alice.lastReply(t)); got != "leave ROOM_CLOSED" {
		t.Errorf("alice's last reply = %s", got)
	}
	if _, err := m.Create("relay", nil); tandem.ErrorCodeOf(err) != tandem.EUnavailable {
		t.Errorf("create after Close: err = %v, want unavailable", err)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(changes)
	wantChanges := []string{
		"duel open=false info.Open=false",
		"duel open=true info.Open=true",
		"relay open=false info.Open=false",
		"relay open=false info.Open=false",
		"relay open=true info.Open=true",
		"relay open=true info.Open=true",
	}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Errorf("OnChange calls (-want +got):\n%s", diff)
	}
}

func mustCreate(t *testing.T, m *Manager, typeName string) *Room {
	t.Helper()
	r, err := m.Create(typeName, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEmptyRoomIsDisposedAfterEmptyTimeout(t *testing.T) {
	m, err := NewManager(ManagerConfig{Types: []Type{RelayType()}, Encoder: encode, EmptyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())

	occupied := mustCreate(t, m, "relay")
	alice := newMember(t, "alice", protocol.CodecJSON)
	if err := occupied.Join(context.Background(), alice, 1, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's joined reply", func() bool { return len(alice.Replies()) == 1 })
	empty := mustCreate(t, m, "relay")

	eventually(t, "the empty room to be disposed of", func() bool {
		select {
		case <-empty.Done():
			return true
		default:
			return false
		}
	})
	if _, ok := m.Get(empty.ID()); ok {
		t.Error("the disposed room is still registered")
	}
	// The occupied room is older than the empty one and saw the same sweeps.
	if _, ok := m.Get(occupied.ID()); !ok {
		t.Fatal("the occupied room was disposed of")
	}

	// Once its last member leaves, it goes too.
	if err := occupied.Leave(context.Background(), alice, protocol.LeaveReason_LEAVE_REASON_REQUESTED); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the emptied room to be disposed of", func() bool { return m.Len() == 0 })
}

// sinkMember is a member that keeps the last frame it was given and nothing
// else: the cheapest possible session, so a benchmark measures the room.
type sinkMember struct {
	player tandem.Player
	codec  protocol.CodecID
	last   []byte
}

func (s *sinkMember) Player() *tandem.Player       { return &s.player }
func (s *sinkMember) Codec() protocol.CodecID      { return s.codec }
func (s *sinkMember) RTT() time.Duration           { return 0 }
func (s *sinkMember) Deliver(frame []byte)         { s.last = frame }
func (s *sinkMember) Reply(*protocol.Envelope)     {}
func (s *sinkMember) JoinedRoom(Link) (bool, bool) { return true, true }
func (s *sinkMember) LeftRoom(string)              {}

// broadcastRoom returns a room with n connected members, half of them on
// each codec, whose replay buffer has reached its steady size.
func broadcastRoom(tb testing.TB, n int) *Room {
	s := newScript(tb, Config{Type: recorderType("bench", 0, 0)})
	for i := range n {
		m := &sinkMember{player: tandem.Player{ID: fmt.Sprintf("p%d", i)}, codec: protocol.CodecID(i % 2)}
		s.apply(Input{Kind: InputJoin, Player: m.player}, m)
	}
	data := make([]byte, 100)
	for range 2 * 1024 {
		s.r.Broadcast("warm-up", data)
	}
	return s.r
}

func TestBroadcastAllocatesNothingPerRecipient(t *testing.T) {
	data := make([]byte, 100)
	allocs := func(n int) float64 {
		r := broadcastRoom(t, n)
		return testing.AllocsPerRun(200, func() { r.Broadcast("tick", data) })
	}
	// One allocation per recipient would show as 498 more for the large
	// room; a pool emptied by a GC during a run (a loaded machine) moves
	// the averages by one either way.
	small, large := allocs(2), allocs(500)
	if large-small > 2 {
		t.Errorf("a broadcast allocates %.1f times to 2 members and %.1f times to 500", small, large)
	}
}

func BenchmarkBroadcast(b *testing.B) {
	data := make([]byte, 100)
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			r := broadcastRoom(b, n)
			perBroadcast := testing.AllocsPerRun(100, func() { r.Broadcast("tick", data) })
			b.ReportAllocs()
			for b.Loop() {
				r.Broadcast("tick", data)
			}
			b.ReportMetric(perBroadcast/float64(n), "allocs/recipient")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/recipient")
		})
	}
}
