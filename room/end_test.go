package room

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// ender ends its room on any message, then says goodbye, and records the
// hooks that run.
type ender struct {
	Base
	calls []string
}

func (h *ender) Message(r *Room, p *tandem.Player, _ Message) {
	h.calls = append(h.calls, "Message "+p.ID)
	r.End()
	r.Broadcast("bye", nil)
	h.calls = append(h.calls, "Message returns")
}

func (h *ender) Leave(_ *Room, p *tandem.Player, reason protocol.LeaveReason) {
	h.calls = append(h.calls, "Leave "+p.ID+" "+reason.String())
}

func (h *ender) Shutdown(*Room) { h.calls = append(h.calls, "Shutdown") }

func TestEndClosesTheRoomAfterTheCurrentHook(t *testing.T) {
	s := newScript(t, Config{Type: Type{Name: "ender", New: func() Handler { return &ender{} }}})
	alice := s.join("alice", protocol.CodecJSON)
	s.send("alice", Message{Topic: "end"})

	h := s.r.handler.(*ender)
	want := []string{"Message alice", "Message returns", "Leave alice LEAVE_REASON_ROOM_CLOSED", "Shutdown"}
	if diff := cmp.Diff(want, h.calls); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"message from= topic=bye data="}, summaries(alice.Frames())); diff != "" {
		t.Errorf("alice's room frames (-want +got):\n%s", diff)
	}
	if got := summary(alice.lastReply(t)); got != "leave ROOM_CLOSED" {
		t.Errorf("alice's last reply = %q, want leave ROOM_CLOSED", got)
	}
	if !s.r.closing {
		t.Error("the room is not closing")
	}
}
