package room

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

func TestRosterReportsJoinsLeavesAndLocksAfterTheInput(t *testing.T) {
	var seen []string
	s := newScript(t, Config{
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

func TestSeatedJoinPassesTheLockButNotThePlayerLimit(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("duel", 2, 0)})
	s.join("alice", protocol.CodecJSON)
	s.apply(Input{Kind: InputReserve, Seat: "k1", Until: s.now.Add(time.Hour)}, nil)
	s.apply(Input{Kind: InputLock}, nil)

	bob := newMember(t, "bob", protocol.CodecJSON)
	s.apply(Input{Kind: InputJoin, Player: bob.player, Cid: 7}, bob)
	if got := tandem.ErrorCode(bob.lastReply(t).GetError().GetCode()); got != tandem.EJoinRejected {
		t.Errorf("join of a locked room: code %v, want join_rejected", got)
	}
	s.apply(Input{Kind: InputJoin, Player: bob.player, Cid: 8, Seated: true, Seat: "k1"}, bob)
	if got := bob.lastReply(t); got.GetJoined() == nil || got.Cid != 8 {
		t.Errorf("seated join: %v, want joined", got)
	}
	carol := newMember(t, "carol", protocol.CodecJSON)
	s.apply(Input{Kind: InputJoin, Player: carol.player, Cid: 9, Seated: true, Seat: "k2"}, carol)
	if got := tandem.ErrorCode(carol.lastReply(t).GetError().GetCode()); got != tandem.ERoomFull {
		t.Errorf("seated join of a full room: code %v, want room_full", got)
	}
	if diff := cmp.Diff([]string{"alice", "bob"}, s.r.Roster().Players); diff != "" {
		t.Errorf("players (-want +got):\n%s", diff)
	}
}

func TestReservationsCountAgainstTheLimitUntilUsedOrLapsed(t *testing.T) {
	s := newScript(t, Config{Type: recorderType("trio", 3, 0)})
	s.join("alice", protocol.CodecJSON)
	var errs []error
	reserve := func(key string, until time.Time) {
		var err error
		s.now = s.now.Add(time.Millisecond)
		s.r.apply(input{Input: Input{Kind: InputReserve, At: s.now, Seat: key, Until: until}, result: &err})
		errs = append(errs, err)
	}
	reserve("k1", s.now.Add(time.Minute))
	reserve("k2", s.now.Add(time.Second))
	reserve("k3", s.now.Add(time.Minute))
	if got := tandem.ErrorCodeOf(errs[2]); errs[0] != nil || errs[1] != nil || got != tandem.ERoomFull {
		t.Fatalf("reserve 1, 2, 3 of a room of 3 with a member: %v, want ok, ok, room_full", errs)
	}
	if s.r.Info().Open {
		t.Errorf("a room whose places are all member or reserved is open")
	}
	bob := newMember(t, "bob", protocol.CodecJSON)
	s.apply(Input{Kind: InputJoin, Player: bob.player, Cid: 7}, bob)
	if got := tandem.ErrorCode(bob.lastReply(t).GetError().GetCode()); got != tandem.ERoomFull {
		t.Errorf("unseated join while the other places are reserved: code %v, want room_full", got)
	}
	// k2 lapses: its place is free again.
	s.now = s.now.Add(2 * time.Second)
	s.apply(Input{Kind: InputJoin, Player: bob.player, Cid: 8}, bob)
	if got := bob.lastReply(t); got.GetJoined() == nil {
		t.Errorf("join once a reservation lapsed: %v, want joined", got)
	}
	// k1 is given up: the room has a place for one more.
	s.apply(Input{Kind: InputUnreserve, Seat: "k1"}, nil)
	reserve("k4", s.now.Add(time.Minute))
	if errs[3] != nil {
		t.Errorf("reserve after an unreserve: %v", errs[3])
	}
}

func TestLabelsAreInTheRosterAndReportedWhenTheyChange(t *testing.T) {
	var kinds []RosterKind
	s := newScript(t, Config{
		Type:     recorderType("duel", 2, 0),
		OnRoster: func(_ *Room, c RosterChange) { kinds = append(kinds, c.Kind) },
	})
	// The test goroutine is the room's here: hooks would call SetLabel.
	if err := s.r.SetLabel("map", "dust"); err != nil {
		t.Fatal(err)
	}
	if err := s.r.SetLabel("mode", "ranked"); err != nil {
		t.Fatal(err)
	}
	if err := s.r.SetLabel("mode", ""); err != nil { // removed
		t.Fatal(err)
	}
	if err := s.r.SetLabel("map", "dust"); err != nil { // unchanged: no report
		t.Fatal(err)
	}
	s.r.flushRoster()
	if diff := cmp.Diff(map[string]string{"map": "dust"}, s.r.Roster().Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]RosterKind{RosterLabeled, RosterLabeled, RosterLabeled}, kinds); diff != "" {
		t.Errorf("roster reports (-want +got):\n%s", diff)
	}

	for _, bad := range [][2]string{{"", "x"}, {strings.Repeat("k", MaxLabelKeyBytes+1), "x"},
		{"k", strings.Repeat("v", MaxLabelValueBytes+1)}, {"k", "\xff"}, {"a=b", "x"}, {"a b", "x"}} {
		if err := s.r.SetLabel(bad[0], bad[1]); tandem.ErrorCodeOf(err) != tandem.EInvalid {
			t.Errorf("SetLabel(%q, %q) = %v, want invalid", bad[0], bad[1], err)
		}
	}
	for i := len(s.r.Roster().Labels); i < MaxLabels; i++ {
		if err := s.r.SetLabel(fmt.Sprint("k", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.r.SetLabel("one-too-many", "v"); tandem.ErrorCodeOf(err) != tandem.EInvalid {
		t.Errorf("label %d: %v, want invalid", MaxLabels+1, err)
	}
}
