package room

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// relayRoom is a relay room with alice, bob and carol, their join events
// already received.
func relayRoom(t *testing.T) (s *script, alice, bob, carol *captureMember) {
	s = newScript(t, Config{Type: RelayType()})
	alice = s.join("alice", protocol.CodecJSON)
	bob = s.join("bob", protocol.CodecBinary)
	carol = s.join("carol", protocol.CodecJSON)
	return s, alice, bob, carol
}

// messagesOf returns the room messages a member got, summarised.
func messagesOf(m *captureMember) []string {
	var got []string
	for _, f := range m.Frames() {
		if f.GetRoomMessage() != nil {
			got = append(got, summary(f))
		}
	}
	return got
}

func TestRelayAllIncludesSender(t *testing.T) {
	s, alice, bob, carol := relayRoom(t)
	s.send("bob", Message{Topic: "chat", Data: []byte("hello"), Delivery: protocol.Delivery_DELIVERY_ALL})

	want := []string{"message from=bob topic=chat data=hello"}
	for _, m := range []*captureMember{alice, bob, carol} {
		if diff := cmp.Diff(want, messagesOf(m)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", m.player.ID, diff)
		}
	}
}

func TestRelayOthersSkipsSender(t *testing.T) {
	s, alice, bob, carol := relayRoom(t)
	s.send("bob", Message{Topic: "pos", Data: []byte("1,2"), Delivery: protocol.Delivery_DELIVERY_OTHERS})

	want := []string{"message from=bob topic=pos data=1,2"}
	for _, m := range []*captureMember{alice, carol} {
		if diff := cmp.Diff(want, messagesOf(m)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", m.player.ID, diff)
		}
	}
	if got := messagesOf(bob); len(got) != 0 {
		t.Errorf("the sender got its own message: %v", got)
	}
}

func TestRelayListReachesOnlyListedMembers(t *testing.T) {
	s, alice, bob, carol := relayRoom(t)
	s.send("alice", Message{Topic: "whisper", Data: []byte("psst"), Delivery: protocol.Delivery_DELIVERY_LIST, To: []string{"carol", "nobody"}})

	if diff := cmp.Diff([]string{"message from=alice topic=whisper data=psst"}, messagesOf(carol)); diff != "" {
		t.Errorf("carol (-want +got):\n%s", diff)
	}
	for _, m := range []*captureMember{alice, bob} {
		if got := messagesOf(m); len(got) != 0 {
			t.Errorf("%s, not listed, got %v", m.player.ID, got)
		}
	}
}

func TestRelayListWithoutRecipientsReachesNobody(t *testing.T) {
	s, alice, bob, carol := relayRoom(t)
	seq := s.r.seq
	s.send("alice", Message{Topic: "whisper", Data: []byte("psst"), Delivery: protocol.Delivery_DELIVERY_LIST})

	for _, m := range []*captureMember{alice, bob, carol} {
		if got := messagesOf(m); len(got) != 0 {
			t.Errorf("%s got %v from an empty list", m.player.ID, got)
		}
	}
	if s.r.seq != seq {
		t.Errorf("the room stream moved from %d to %d for a message to nobody", seq, s.r.seq)
	}
}

func TestRelayDropsMessagesForTheRoom(t *testing.T) {
	s, alice, bob, carol := relayRoom(t)
	s.send("alice", Message{Topic: "hello", Delivery: protocol.Delivery_DELIVERY_ROOM})
	for _, m := range []*captureMember{alice, bob, carol} {
		if got := messagesOf(m); len(got) != 0 {
			t.Errorf("%s got %v", m.player.ID, got)
		}
	}
}

func TestRelayIgnoresMessagesFromNonMembers(t *testing.T) {
	s, alice, _, _ := relayRoom(t)
	s.send("mallory", Message{Topic: "spam", Data: []byte("x")})
	if got := messagesOf(alice); len(got) != 0 {
		t.Errorf("alice got %v from a non-member", got)
	}
}

func TestRelayHasNoTicksAndSeatsRelayMaxPlayers(t *testing.T) {
	typ := RelayType()
	if typ.TickInterval() != 0 {
		t.Errorf("relay ticks every %v", typ.TickInterval())
	}
	s := newScript(t, Config{Type: typ})
	for i := range RelayMaxPlayers {
		s.join(fmt.Sprintf("p%d", i), protocol.CodecJSON)
	}
	late := s.join("late", protocol.CodecJSON)
	if code := tandem.ErrorCode(late.lastReply(t).GetError().GetCode()); code != tandem.ERoomFull {
		t.Errorf("join %d: %v, want room_full", RelayMaxPlayers+1, code)
	}
}

func TestBuiltinTypesAreRelayAndArena(t *testing.T) {
	var names []string
	for _, typ := range BuiltinTypes() {
		names = append(names, typ.Name)
	}
	if diff := cmp.Diff([]string{"relay", "arena"}, names); diff != "" {
		t.Errorf("built-in types (-want +got):\n%s", diff)
	}
	m, err := NewManager(ManagerConfig{Types: BuiltinTypes(), Encoder: encode})
	if err != nil {
		t.Fatalf("a manager refuses the built-in types: %v", err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Error(err)
	}
}
