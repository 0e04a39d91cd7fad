package client

import (
	"errors"
	"testing"

	"github.com/tandemhq/tandem/protocol"
)

// The server sends a room's final leave on the session stream (room/ does,
// so that a resume replays it after the room forgot the player).
func TestLeaveOnTheSessionStreamEndsTheRoom(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	r := join(t, c, p, 1, 0)
	waitLeave := async(func() error { return r.Leave(bg()) })
	if l := p.expect(nil); l.GetLeave().GetRoomId() != "r1" {
		t.Fatalf("got %v, want leave", l)
	}
	p.send(sessionFrame(2, 0, &protocol.Envelope{Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{
		RoomId: "r1", Reason: protocol.LeaveReason_LEAVE_REASON_REQUESTED,
	}}}))
	if err := waitLeave(); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if l := eventAs[*Left](t, c); l.Room != r || l.Reason != protocol.LeaveReason_LEAVE_REASON_REQUESTED {
		t.Errorf("Left %+v", l)
	}
	if err := r.Send(bg(), "x", nil); !errors.Is(err, ErrRoomLeft) {
		t.Errorf("Send after leave: %v", err)
	}
}
