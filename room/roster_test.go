package room

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

func TestRosterReportsJoinsLeavesAndLocksAfterTheInput(t *testing.T) {
	var seen []string
	var s *script
	s = newScript(t, Config{
		Type: recorderType("duel", 2, 0),
		OnRoster: func(r *Room, c RosterChange) {
			// Info is already the state after the input.
			seen = append(seen, fmt.Sprintf("%d %s %v players=%v open=%v locked=%v",
				c.Kind, c.PlayerID, c.Reason, r.Roster().Players, r.Info().Open, r.Roster().Locked))
		},
	})
	s.join("alice", protocol.CodecJSON)
	s.join("bob", protocol.CodecJSON)
	s.leave("alice", protocol.LeaveReason_LEAVE_REASON_REQUESTED)
	s.apply(Input{Kind: InputLock}, nil)
	s.apply(Input{Kind: InputLock}, nil) // no change, no report
	s.apply(Input{Kind: InputUnlock}, nil)
	s.tick()
	want := []string{
		"1 alice LEAVE_REASON_UNSPECIFIED players=[alice] open=true locked=false",
		"1 bob LEAVE_REASON_UNSPECIFIED players=[alice bob] open=false locked=false",
		"2 alice LEAVE_REASON_REQUESTED players=[bob] open=true locked=false",
		"3  LEAVE_REASON_UNSPECIFIED players=[bob] open=false locked=true",
		"4  LEAVE_REASON_UNSPECIFIED players=[bob] open=true locked=false",
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("roster changes (-want +got):\n%s", diff)
	}
}

func TestSeatedJoinPassesTheLockAndThePlayerLimit(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("duel", 1, 0)})
	s.join("alice", protocol.CodecJSON)
	s.apply(Input{Kind: InputLock}, nil)

	bob := newMember(t, "bob", protocol.CodecJSON)
	s.apply(Input{Kind: InputJoin, Player: bob.player, Cid: 7}, bob)
	if got := tandem.ErrorCode(bob.lastReply(t).GetError().GetCode()); got != tandem.EJoinRejected {
		t.Errorf("join of a locked room: code %v, want join_rejected", got)
	}
	s.apply(Input{Kind: InputJoin, Player: bob.player, Cid: 8, Seated: true}, bob)
	if got := bob.lastReply(t); got.GetJoined() == nil || got.Cid != 8 {
		t.Errorf("seated join: %v, want joined", got)
	}
	if diff := cmp.Diff([]string{"alice", "bob"}, s.r.Roster().Players); diff != "" {
		t.Errorf("players (-want +got):\n%s", diff)
	}
}
