package room

import (
	"testing"

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
