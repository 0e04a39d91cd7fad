package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	mmservice "github.com/tandemhq/tandem/matchmaker/service"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
)

// picky is a room type whose JoinAttempt refuses the player "mallory".
type picky struct{ room.Base }

func (picky) JoinAttempt(_ *room.Room, p *tandem.Player, _ []byte) error {
	if p.ID == "mallory" {
		return tandem.Errorf(tandem.EJoinRejected, "not you")
	}
	return nil
}

// matchmakingNode starts a node that runs matchmaking (matchers every
// 50 ms, seats of seatTTL).
func (tc *testCluster) matchmakingNode(id string, seatTTL time.Duration, edit func(*gateway.Config)) *clusterNode {
	return tc.startNode(id, func(c *gateway.Config) {
		b := c.Cluster.(*natsbus.Bus)
		c.SeatTTL = seatTTL
		c.RoomTypes = append(room.BuiltinTypes(), room.Type{Name: "picky", New: func() room.Handler { return picky{} }})
		c.Matchmaking = mmservice.New(mmservice.Config{
			Node: id, Bus: b, Cluster: b, Tick: 50 * time.Millisecond, SeatGrace: 100 * time.Millisecond, Ended: time.Hour,
		})
		if edit != nil {
			edit(c)
		}
	})
}

func ticketCreate(queue string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_TicketCreate{TicketCreate: &protocol.TicketCreate{Queue: queue}}}
}

// waitTicket reads until a pushed ticket_status in state.
func waitTicket(c *raw, state string) *protocol.TicketStatus {
	c.t.Helper()
	return c.recvUntil(func(e *protocol.Envelope) bool {
		return e.Cid == 0 && e.GetTicketStatus().GetState() == state
	}).GetTicketStatus()
}

func putQueue(t *testing.T, b *natsbus.Bus, q tandem.MatchQueue) {
	t.Helper()
	if err := b.PutQueue(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

func ticketOf(t *testing.T, b *natsbus.Bus, queue, player string) tandem.MatchTicket {
	t.Helper()
	tk, err := b.Ticket(context.Background(), queue, player)
	if err != nil {
		t.Fatalf("ticket of %s: %v", player, err)
	}
	return tk
}

// The matched players take their seats with a seated join on their own
// node; once both are in, the tickets are done.
func TestMatchedPlayersJoinWithTheirSeatsAndTheMatchIsDone(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	putQueue(t, web, tandem.MatchQueue{Name: "duel", RoomType: "relay", Teams: 2, TeamSize: 1})
	n := tc.matchmakingNode("a", 5*time.Second, nil)
	var clients []*raw
	for i, p := range []string{"alice", "bob"} {
		c := n.dial(t)
		c.connect(tc.token(p))
		var reply *protocol.Envelope
		waitFor(t, 10*time.Second, "the node knows the queue", func() bool {
			reply = c.request(uint64(10+i), ticketCreate("duel"))
			return errorCode(reply) != tandem.ENotFound
		})
		if st := reply.GetTicketStatus(); st.GetState() != "searching" || st.GetQueue() != "duel" {
			t.Fatalf("ticket_create answered %v", reply)
		}
		clients = append(clients, c)
	}
	var room string
	for _, c := range clients {
		st := waitTicket(c, "matched")
		if st.GetSeat().GetNode() != "a" || st.GetSeat().GetSeatToken() == "" {
			t.Fatalf("matched with seat %v", st.GetSeat())
		}
		room = st.GetSeat().GetRoomId()
		c.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomId: room, SeatToken: st.GetSeat().GetSeatToken()})
	}
	for _, c := range clients {
		waitTicket(c, "done")
	}
	// A seat is used once.
	reused := clients[0].request(99, joinEnv(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomId: room, SeatToken: "forged"}))
	if errorCode(reused) != tandem.ENotFound {
		t.Errorf("a join with an unknown seat token: %v, want not_found", reused)
	}
}

// A player whose seated join the room refuses has not taken the seat: the
// match falls through at the seat's expiry, the other player goes back to
// searching and leaves the room it joined, which is closed.
func TestARefusedSeatedJoinLetsTheMatchFallThrough(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	putQueue(t, web, tandem.MatchQueue{Name: "picky", RoomType: "picky", Teams: 2, TeamSize: 1})
	n := tc.matchmakingNode("a", time.Second, nil)
	alice, mallory := n.dial(t), n.dial(t)
	alice.connect(tc.token("alice"))
	mallory.connect(tc.token("mallory"))
	for i, c := range []*raw{alice, mallory} {
		waitFor(t, 10*time.Second, "a ticket", func() bool {
			return c.request(uint64(10+i), ticketCreate("picky")).GetTicketStatus() != nil
		})
	}
	a, m := waitTicket(alice, "matched"), waitTicket(mallory, "matched")
	alice.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomId: a.GetSeat().GetRoomId(), SeatToken: a.GetSeat().GetSeatToken()})
	refused := mallory.request(50, joinEnv(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomId: m.GetSeat().GetRoomId(), SeatToken: m.GetSeat().GetSeatToken()}))
	if errorCode(refused) != tandem.EJoinRejected {
		t.Fatalf("mallory's join: %v, want join_rejected", refused)
	}
	waitTicket(alice, "seated")
	// The seat expires: mallory's ticket with it, alice back to searching.
	st := waitTicket(mallory, "expired")
	if st.GetReason() != "seat_expired" {
		t.Errorf("mallory's ticket expired for %q, want seat_expired", st.GetReason())
	}
	back := alice.recvUntil(func(e *protocol.Envelope) bool {
		return e.GetTicketStatus().GetState() == "searching" || e.GetLeave() != nil
	})
	if back.GetLeave() != nil {
		back = alice.recvUntil(func(e *protocol.Envelope) bool { return e.GetTicketStatus().GetState() == "searching" })
	}
	if back.GetTicketStatus().GetCreatedAtMs() != a.GetCreatedAtMs() {
		t.Errorf("alice back in the queue created at %d, want her old place %d", back.GetTicketStatus().GetCreatedAtMs(), a.GetCreatedAtMs())
	}
	waitFor(t, 10*time.Second, "the match's room closed", func() bool {
		_, ok := n.gw.Rooms().Get(a.GetSeat().GetRoomId())
		return !ok
	})
}

// A ticket survives a session replaced by a newer login; a session that
// ends for good (its seat hold over) takes its searching tickets with it.
func TestASessionsEndCancelsItsTicketsButANewerLoginKeepsThem(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	putQueue(t, web, tandem.MatchQueue{Name: "trio", RoomType: "relay", MinPlayers: 3, MaxPlayers: 3})
	n := tc.matchmakingNode("a", 5*time.Second, func(c *gateway.Config) { c.SeatHold = 300 * time.Millisecond })
	first := n.dial(t)
	first.connect(tc.token("ada"))
	waitFor(t, 10*time.Second, "a ticket", func() bool {
		return first.request(10, ticketCreate("trio")).GetTicketStatus() != nil
	})
	second := n.dial(t)
	second.connect(tc.token("ada"))
	if code := first.closeCode(); code != protocol.CloseDuplicateSession {
		t.Fatalf("first session closed with %s, want duplicate_session", code)
	}
	if got := ticketOf(t, web, "trio", "ada"); got.State != tandem.TicketSearching {
		t.Fatalf("after a newer login the ticket is %s, want searching", got.State)
	}
	// The newer session asks: the ticket is there.
	if st := second.request(11, &protocol.Envelope{Body: &protocol.Envelope_TicketStatus{TicketStatus: &protocol.TicketStatus{Queue: "trio"}}}).GetTicketStatus(); st.GetState() != "searching" {
		t.Fatalf("ticket_status: %v", st)
	}
	// A session ending for good takes its player's searching tickets with
	// it: the one it found, and one it created.
	second.conn.Close()
	waitFor(t, 10*time.Second, "ada's ticket cancelled once her last session ended", func() bool {
		got := ticketOf(t, web, "trio", "ada")
		return got.State == tandem.TicketCancelled && got.Reason == "session_ended"
	})
	third := n.dial(t)
	third.connect(tc.token("bo"))
	waitFor(t, 10*time.Second, "bo's ticket", func() bool {
		return third.request(12, ticketCreate("trio")).GetTicketStatus() != nil
	})
	third.conn.Close()
	waitFor(t, 10*time.Second, "bo's ticket cancelled with his session", func() bool {
		got := ticketOf(t, web, "trio", "bo")
		return got.State == tandem.TicketCancelled && got.Reason == "session_ended"
	})
}

// A banned player keeps no ticket: the ban ends the session, and its
// searching tickets with it.
func TestABanCancelsThePlayersTickets(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	putQueue(t, web, tandem.MatchQueue{Name: "trio", RoomType: "relay", MinPlayers: 3, MaxPlayers: 3})
	n := tc.matchmakingNode("a", 5*time.Second, nil)
	eve := n.dial(t)
	eve.connect(tc.token("eve"))
	waitFor(t, 10*time.Second, "a ticket", func() bool {
		return eve.request(10, ticketCreate("trio")).GetTicketStatus() != nil
	})
	if err := web.PutBan(context.Background(), tandem.BanEntry{PlayerID: "eve", Start: time.Now().Add(-time.Second), Reason: "cheating"}); err != nil {
		t.Fatal(err)
	}
	if got := eve.closeCode(); got != protocol.CloseBanned {
		t.Fatalf("closed with %s, want banned", got)
	}
	waitFor(t, 10*time.Second, "eve's ticket cancelled", func() bool {
		got := ticketOf(t, web, "trio", "eve")
		return got.State == tandem.TicketCancelled && got.Reason == "session_ended"
	})
}

// A refused ticket says which field is wrong and why.
func TestARefusedTicketNamesItsFields(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	putQueue(t, web, tandem.MatchQueue{Name: "duel", RoomType: "relay", Teams: 2, TeamSize: 1})
	n := tc.matchmakingNode("a", 5*time.Second, nil)
	c := n.dial(t)
	c.connect(tc.token("ada"))
	create := &protocol.Envelope{Body: &protocol.Envelope_TicketCreate{TicketCreate: &protocol.TicketCreate{
		Queue: "duel", StringProperties: map[string]string{"region": "eu"},
	}}}
	var reply *protocol.Envelope
	waitFor(t, 10*time.Second, "the node knows the queue", func() bool {
		reply = c.request(c.seq+100, create)
		return errorCode(reply) != tandem.ENotFound
	})
	e := reply.GetError()
	if tandem.ErrorCode(e.GetCode()) != tandem.EValidation || len(e.GetFields()) != 1 || e.GetFields()[0].GetField() != "string_properties.region" {
		t.Fatalf("ticket_create with a property the queue does not allow: %v, want validation_failed naming string_properties.region", reply)
	}
}
