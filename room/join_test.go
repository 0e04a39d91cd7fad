package room

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// greeter broadcasts a welcome from its Join hook.
type greeter struct{ Base }

func (greeter) Join(r *Room, p *tandem.Player) { r.Broadcast("welcome", []byte(p.ID)) }
func (greeter) Snapshot(r *Room, p *tandem.Player) []byte {
	return []byte("players:" + string(rune('0'+len(r.Players()))))
}

func TestFramesTheJoinHookSendsReachTheJoinerAfterItsJoinedReply(t *testing.T) {
	s := newScript(t, Config{Type: Type{Name: "greet", New: func() Handler { return greeter{} }}})
	alice := s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecBinary)

	joined := bob.lastReply(t).GetJoined()
	if got := string(joined.State); got != "players:2" {
		t.Errorf("bob's joined state %q: the snapshot must include what the Join hook did", got)
	}
	var welcomes []string
	for _, f := range bob.Frames() {
		if m := f.GetRoomMessage(); m != nil {
			if f.Seq <= joined.Seq {
				t.Errorf("frame seq %d at or before joined seq %d: the client would drop it", f.Seq, joined.Seq)
			}
			welcomes = append(welcomes, string(m.Data))
		}
	}
	if diff := cmp.Diff([]string{"bob"}, welcomes); diff != "" {
		t.Errorf("bob's welcomes (-want +got):\n%s", diff)
	}
	welcomes = nil
	for _, f := range alice.Frames() {
		if m := f.GetRoomMessage(); m != nil {
			welcomes = append(welcomes, string(m.Data))
		}
	}
	if diff := cmp.Diff([]string{"alice", "bob"}, welcomes); diff != "" {
		t.Errorf("alice's welcomes (-want +got):\n%s", diff)
	}
}

func TestLeaveWhileAwayCarriesTheFinalStateInsteadOfASilentGap(t *testing.T) {
	s := newScript(t, Config{Type: Type{Name: "greet", New: func() Handler { return greeter{} }}})
	alice := s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecJSON)
	s.disconnect("alice")
	s.leave("alice", protocol.LeaveReason_LEAVE_REASON_KICKED)
	s.leave("bob", protocol.LeaveReason_LEAVE_REASON_REQUESTED)

	away := alice.lastReply(t).GetLeave()
	if !away.GetMissed() || string(away.GetState()) != "players:2" {
		t.Errorf("leave while away = %v, want missed with the room's state for alice", away)
	}
	present := bob.lastReply(t).GetLeave()
	if present.GetMissed() || present.GetState() != nil {
		t.Errorf("leave while connected = %v, want no state", present)
	}
}

// bomb panics when a member sends it anything.
type bomb struct{ Base }

func (bomb) Message(*Room, *tandem.Player, Message) { panic("boom") }

func TestAPanickingHandlerClosesItsRoomAndNotTheNode(t *testing.T) {
	m, err := NewManager(ManagerConfig{Types: []Type{{Name: "bomb", New: func() Handler { return bomb{} }}}, Encoder: encode})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	r, err := m.Create("bomb", nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := newMember(t, "alice", protocol.CodecJSON)
	if err := r.Join(context.Background(), alice, 1, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice joined", func() bool { return len(alice.Replies()) == 1 })
	if err := r.Submit(context.Background(), alice, Message{Topic: "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the room did not end after its handler panicked")
	}
	if got := alice.lastReply(t).GetLeave().GetReason(); got != protocol.LeaveReason_LEAVE_REASON_ROOM_CLOSED {
		t.Errorf("alice's last reply: %v, want leave ROOM_CLOSED", alice.lastReply(t))
	}
	eventually(t, "the manager forgot the room", func() bool { return m.Len() == 0 })
}

func TestInputsOfAnEndedSessionDoNotTouchThePlayersNewSession(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("test", 0, 0)})
	old := s.join("alice", protocol.CodecJSON)
	s.leave("alice", protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED)
	fresh := s.join("alice", protocol.CodecJSON)

	// The old session's disconnect and message were still queued.
	s.apply(Input{Kind: InputDisconnect, Player: tandem.Player{ID: "alice"}}, old)
	s.apply(Input{Kind: InputLeave, Player: tandem.Player{ID: "alice"}, Reason: protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED}, old)
	if !s.r.Connected("alice") {
		t.Error("the old session's disconnect reached the new session's member")
	}
	if len(fresh.Left()) != 0 {
		t.Errorf("the old session's leave removed the new session: %v", fresh.Left())
	}
}
