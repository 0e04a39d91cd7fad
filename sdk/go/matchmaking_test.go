package client

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/tandemhq/tandem/protocol"
)

const createdAtMs = 1_800_000_000_000

func timeMs(ms int64) time.Time { return time.UnixMilli(ms) }

func ticketStatus(state string, seat *protocol.SeatReservation) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_TicketStatus{TicketStatus: &protocol.TicketStatus{
		TicketId: "t1", Queue: "duel", State: state, CreatedAtMs: createdAtMs, Seat: seat,
	}}}
}

func seat(room, node, nodeURL, token string) *protocol.SeatReservation {
	return &protocol.SeatReservation{RoomId: room, Node: node, NodeUrl: nodeURL, SeatToken: token, ExpiresAtMs: 1_900_000_000_000}
}

// progressLog records what TicketRequest.Progress saw.
type progressLog struct {
	mu     sync.Mutex
	states []string
}

func (l *progressLog) record(s TicketStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, s.State)
}

func (l *progressLog) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.states...)
}

// matchmake starts Matchmake in queue duel on c and answers its
// ticket_create on p with searching (session seq 1); it returns a function
// waiting for Matchmake's result.
func matchmake(t *testing.T, ctx context.Context, c *Client, p *peer, progress *progressLog) func() (*Room, error) {
	t.Helper()
	var r *Room
	wait := async(func() (err error) {
		r, err = c.Matchmake(ctx, TicketRequest{Queue: "duel", Metadata: []byte("m"), Progress: progress.record})
		return err
	})
	create := p.expect(nil)
	if create.GetTicketCreate().GetQueue() != "duel" || create.GetCid() == 0 {
		t.Fatalf("got %v, want ticket_create", create)
	}
	p.send(sessionFrame(1, create.GetCid(), ticketStatus(TicketSearching, nil)))
	return func() (*Room, error) { err := wait(); return r, err }
}

// expectSeatJoin reads the join that takes a seat on the session's node.
func expectSeatJoin(t *testing.T, p *peer, room, token string) *protocol.Envelope {
	t.Helper()
	j := p.expect(nil)
	want := &protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomId: room, SeatToken: token, Metadata: []byte("m")}
	if diff := cmp.Diff(want, j.GetJoin(), protocmp.Transform()); diff != "" {
		t.Fatalf("join taking the seat (-want +got):\n%s", diff)
	}
	return j
}

// rpcRoundTrip answers an RPC of c on p at session seq: every frame sent
// before it has been handled.
func rpcRoundTrip(t *testing.T, c *Client, p *peer, seq uint64) {
	t.Helper()
	wait := async(func() error { _, err := c.RPC(bg(), "ping", nil); return err })
	rpc := p.expect(nil)
	p.send(sessionFrame(seq, rpc.GetCid(), &protocol.Envelope{Body: &protocol.Envelope_RpcReply{RpcReply: &protocol.RpcReply{}}}))
	if err := wait(); err != nil {
		t.Fatalf("RPC: %v", err)
	}
}

func TestCreateTicketSendsTheRequestAndPushesBecomeEvents(t *testing.T) {
	for _, id := range bothCodecs {
		t.Run(codecName(id), func(t *testing.T) {
			s := newFakeServer(t, id)
			c, p := connect(t, s, fast)
			lo, hi := 1200.0, 1400.0
			var got TicketStatus
			wait := async(func() (err error) {
				got, err = c.CreateTicket(bg(), TicketRequest{
					Queue: "duel", Strings: map[string]string{"mode": "ranked"}, Numbers: map[string]float64{"level": 7},
					Must:   []Term{{Property: "region", OneOf: []string{"eu", "us"}}},
					Should: []Term{{Property: "skill", Min: &lo, Max: &hi, Weight: 2}},
					Party:  "pa", PartySize: 2,
				})
				return err
			})
			env := p.expect(nil)
			want := &protocol.TicketCreate{
				Queue: "duel", StringProperties: map[string]string{"mode": "ranked"}, NumericProperties: map[string]float64{"level": 7},
				Must:   []*protocol.MatchTerm{{Property: "region", OneOf: []string{"eu", "us"}}},
				Should: []*protocol.MatchTerm{{Property: "skill", Min: &lo, Max: &hi, Weight: 2}},
				Party:  "pa", PartySize: 2,
			}
			if diff := cmp.Diff(want, env.GetTicketCreate(), protocmp.Transform()); diff != "" || env.GetSeq() != 1 {
				t.Fatalf("ticket_create (seq %d, -want +got):\n%s", env.GetSeq(), diff)
			}
			p.send(sessionFrame(1, env.GetCid(), ticketStatus(TicketSearching, nil)))
			if err := wait(); err != nil {
				t.Fatalf("CreateTicket: %v", err)
			}
			searching := TicketStatus{Queue: "duel", State: TicketSearching, CreatedAt: timeMs(createdAtMs)}
			if diff := cmp.Diff(searching, got); diff != "" {
				t.Errorf("CreateTicket (-want +got):\n%s", diff)
			}

			st := seat("r7", "n1", "ws://n1/ws", "seat.1")
			matched := ticketStatus(TicketMatched, st)
			matched.GetTicketStatus().MatchId, matched.GetTicketStatus().Team = "m1", 1
			p.send(sessionFrame(2, 0, ticketStatus(TicketClaimed, nil)), sessionFrame(3, 0, matched))
			for _, want := range []TicketStatus{
				{Queue: "duel", State: TicketClaimed, CreatedAt: timeMs(createdAtMs)},
				{Queue: "duel", State: TicketMatched, MatchID: "m1", Team: 1, CreatedAt: timeMs(createdAtMs), Seat: st},
			} {
				u := eventAs[*TicketUpdate](t, c)
				if diff := cmp.Diff(want, u.Status, protocmp.Transform()); diff != "" {
					t.Errorf("TicketUpdate (-want +got):\n%s", diff)
				}
			}

			cancelled := async(func() error {
				s, err := c.CancelTicket(bg(), "duel")
				if err == nil && s.State != TicketCancelled {
					err = errors.New("state " + s.State)
				}
				return err
			})
			cancel := p.expect(nil)
			if cancel.GetTicketCancel().GetQueue() != "duel" {
				t.Fatalf("got %v, want ticket_cancel", cancel)
			}
			p.send(sessionFrame(4, cancel.GetCid(), ticketStatus(TicketCancelled, nil)))
			if err := cancelled(); err != nil {
				t.Errorf("CancelTicket: %v", err)
			}

			asked := async(func() error { _, err := c.Ticket(bg(), "duel"); return err })
			q := p.expect(nil)
			if q.GetTicketStatus().GetQueue() != "duel" {
				t.Fatalf("got %v, want ticket_status", q)
			}
			p.send(sessionFrame(5, q.GetCid(), errorFrame(CodeNotFound, "no ticket")))
			if err := asked(); !errors.Is(err, &ServerError{Code: CodeNotFound}) {
				t.Errorf("Ticket: %v, want not_found", err)
			}
			if evs := remaining(c, s); len(evs) != 0 {
				t.Errorf("events for the replies: %#v, want none", evs)
			}
		})
	}
}

func TestMatchmakeTakesASeatOnItsOwnNodeWithTheSeatToken(t *testing.T) {
	for _, id := range bothCodecs {
		t.Run(codecName(id), func(t *testing.T) {
			s := newFakeServer(t, id)
			c, p := connect(t, s, fast)
			var progress progressLog
			wait := matchmake(t, bg(), c, p, &progress)
			p.send(
				sessionFrame(2, 0, ticketStatus(TicketClaimed, nil)),
				sessionFrame(3, 0, ticketStatus(TicketMatched, seat("r7", "n1", "ws://elsewhere/ws", "seat.1"))),
			)
			j := expectSeatJoin(t, p, "r7", "seat.1")
			p.send(sessionFrame(4, j.GetCid(), joined("r7", 1, 0, "st")))
			// The application reads no event before Matchmake returns.
			r, err := wait()
			if err != nil {
				t.Fatalf("Matchmake: %v", err)
			}
			if r.ID() != "r7" || string(r.State()) != "st" {
				t.Errorf("room %q state %q", r.ID(), r.State())
			}
			if diff := cmp.Diff([]string{TicketSearching, TicketClaimed, TicketMatched}, progress.seen()); diff != "" {
				t.Errorf("Progress (-want +got):\n%s", diff)
			}
			var states []string
			for range 2 {
				states = append(states, eventAs[*TicketUpdate](t, c).Status.State)
			}
			if diff := cmp.Diff([]string{TicketClaimed, TicketMatched}, states); diff != "" {
				t.Errorf("TicketUpdate events (-want +got):\n%s", diff)
			}
			if j := eventAs[*Joined](t, c); j.Room != r {
				t.Errorf("Joined %+v", j)
			}
		})
	}
}

func TestMatchmakeMovesToTheSeatsNodeAndJoinsThere(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	var progress progressLog
	wait := matchmake(t, bg(), c, p1, &progress)
	p1.send(sessionFrame(2, 0, ticketStatus(TicketMatched, seat("r9", "n2", s2.url(), "seat.mm"))))

	p2 := s2.next()
	hello := p2.expect(nil).GetConnect()
	if hello.GetSeatToken() != "seat.mm" || hello.GetResumeToken() != "" {
		t.Fatalf("connect on the seat's node: %v, want the seat token and no resume token", hello)
	}
	joinedThere(t, p2, "r9")
	r, err := wait()
	if err != nil {
		t.Fatalf("Matchmake: %v", err)
	}
	if r.ID() != "r9" || c.SessionID() != "s2" {
		t.Errorf("room %q session %q, want r9 on s2", r.ID(), c.SessionID())
	}
	p1.closeCleanly(protocol.CloseMoved, "moved")
	if u := eventAs[*TicketUpdate](t, c); u.Status.State != TicketMatched {
		t.Errorf("TicketUpdate %+v", u)
	}
	if j := eventAs[*Joined](t, c); j.Room != r {
		t.Errorf("Joined %+v", j)
	}
	settle(t, c, p2)
	if evs := remaining(c, s1, s2); len(evs) != 0 {
		t.Errorf("events after the move: %#v, want none", evs)
	}
	if diff := cmp.Diff([]string{TicketSearching, TicketMatched}, progress.seen()); diff != "" {
		t.Errorf("Progress (-want +got):\n%s", diff)
	}
}

func TestMatchmakeCancelsTheTicketWhenItsContextEnds(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	ctx, cancel := context.WithCancel(bg())
	defer cancel()
	wait := matchmake(t, ctx, c, p, new(progressLog))
	p.send(sessionFrame(2, 0, ticketStatus(TicketClaimed, nil)))
	eventAs[*TicketUpdate](t, c)
	cancel()
	if _, err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Matchmake: %v, want context.Canceled", err)
	}
	env := p.expect(nil)
	if env.GetTicketCancel().GetQueue() != "duel" || env.GetCid() == 0 {
		t.Fatalf("got %v, want ticket_cancel", env)
	}
	// The answer concerns nobody.
	p.send(sessionFrame(3, env.GetCid(), ticketStatus(TicketCancelled, nil)))
	rpcRoundTrip(t, c, p, 4)
	if evs := remaining(c, s); len(evs) != 0 {
		t.Errorf("events after the cancel: %#v, want none", evs)
	}
}

func TestMatchmakeReturnsTheEndedTicket(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	wait := matchmake(t, bg(), c, p, new(progressLog))
	expired := ticketStatus(TicketExpired, nil)
	expired.GetTicketStatus().Reason = "timeout"
	p.send(sessionFrame(2, 0, expired))
	_, err := wait()
	var ended *TicketEndedError
	if !errors.As(err, &ended) {
		t.Fatalf("Matchmake: %v, want a *TicketEndedError", err)
	}
	want := TicketStatus{Queue: "duel", State: TicketExpired, Reason: "timeout", CreatedAt: timeMs(createdAtMs)}
	if diff := cmp.Diff(want, ended.Status); diff != "" {
		t.Errorf("ended status (-want +got):\n%s", diff)
	}
}

func TestMatchmakeJoinsTheNextMatchWhenASeatCannotBeTaken(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	var progress progressLog
	wait := matchmake(t, bg(), c, p, &progress)
	p.send(sessionFrame(2, 0, ticketStatus(TicketMatched, seat("r1", "n1", "ws://n1/ws", "seat.1"))))
	j := expectSeatJoin(t, p, "r1", "seat.1")
	p.send(sessionFrame(3, j.GetCid(), errorFrame(CodeNotFound, "no such seat")))
	// The match fell through: the ticket is back in the queue, then
	// matched again.
	p.send(
		sessionFrame(4, 0, ticketStatus(TicketSearching, nil)),
		sessionFrame(5, 0, ticketStatus(TicketMatched, seat("r2", "n1", "ws://n1/ws", "seat.2"))),
	)
	j = expectSeatJoin(t, p, "r2", "seat.2")
	p.send(sessionFrame(6, j.GetCid(), joined("r2", 1, 0, "")))
	r, err := wait()
	if err != nil {
		t.Fatalf("Matchmake: %v", err)
	}
	if r.ID() != "r2" {
		t.Errorf("room %q, want r2", r.ID())
	}
	want := []string{TicketSearching, TicketMatched, TicketSearching, TicketMatched}
	if diff := cmp.Diff(want, progress.seen()); diff != "" {
		t.Errorf("Progress (-want +got):\n%s", diff)
	}
}

func TestMatchmakeGoesOnWaitingWhenTheSeatsNodeRefusesIt(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	wait := matchmake(t, bg(), c, p1, new(progressLog))
	p1.send(sessionFrame(2, 0, ticketStatus(TicketMatched, seat("r9", "n2", s2.url(), "seat.gone"))))
	p2 := s2.next()
	p2.expect(nil) // connect
	p2.send(errorFrame(CodeNotFound, "no such seat"))
	p2.closeWith(protocol.CloseSessionExpired, "")

	p1.send(
		sessionFrame(3, 0, ticketStatus(TicketSearching, nil)),
		sessionFrame(4, 0, ticketStatus(TicketMatched, seat("r1", "n1", "ws://n1/ws", "seat.here"))),
	)
	j := expectSeatJoin(t, p1, "r1", "seat.here")
	p1.send(sessionFrame(5, j.GetCid(), joined("r1", 1, 0, "")))
	r, err := wait()
	if err != nil {
		t.Fatalf("Matchmake: %v", err)
	}
	if r.ID() != "r1" || c.SessionID() != "s1" {
		t.Errorf("room %q session %q, want r1 on s1", r.ID(), c.SessionID())
	}
}

// expectTicketQuery reads the ticket_status Matchmake asks for its ticket
// with.
func expectTicketQuery(t *testing.T, p *peer) *protocol.Envelope {
	t.Helper()
	env := p.expect(nil)
	if env.GetTicketStatus().GetQueue() != "duel" || env.GetCid() == 0 {
		t.Fatalf("got %v, want ticket_status{duel}", env)
	}
	return env
}

func TestMatchmakeFollowsItsTicketToTheSessionThatReplacesALostOne(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	var progress progressLog
	wait := matchmake(t, bg(), c, p, &progress)
	// The node died: the client starts a new session elsewhere, and the
	// server keeps the ticket.
	p.closeWith(protocol.CloseSessionExpired, "")
	p2 := s.next()
	p2.handshake("s2", "rt2", false, 0)
	q := expectTicketQuery(t, p2)
	p2.send(
		sessionFrame(1, q.GetCid(), ticketStatus(TicketSearching, nil)),
		sessionFrame(2, 0, ticketStatus(TicketMatched, seat("r7", "n1", "ws://n1/ws", "seat.1"))),
	)
	j := expectSeatJoin(t, p2, "r7", "seat.1")
	p2.send(sessionFrame(3, j.GetCid(), joined("r7", 1, 0, "")))
	r, err := wait()
	if err != nil {
		t.Fatalf("Matchmake: %v", err)
	}
	if r.ID() != "r7" || c.SessionID() != "s2" {
		t.Errorf("room %q session %q, want r7 on s2", r.ID(), c.SessionID())
	}
	if diff := cmp.Diff([]string{TicketSearching, TicketSearching, TicketMatched}, progress.seen()); diff != "" {
		t.Errorf("Progress (-want +got):\n%s", diff)
	}
}

func TestMatchmakeFollowsItsTicketWhenAJoinMovesTheSession(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	wait := matchmake(t, bg(), c, p1, new(progressLog))
	p2, _, joinWait := joinElsewhere(t, c, p1, 2, "r9", s2)
	joinedThere(t, p2, "r9")
	if _, err := joinWait(); err != nil {
		t.Fatalf("Join: %v", err)
	}
	p1.closeCleanly(protocol.CloseMoved, "moved")
	// The ticket was matched while the session moved: the answer has the
	// seat, on the session's new node.
	q := expectTicketQuery(t, p2)
	p2.send(sessionFrame(2, q.GetCid(), ticketStatus(TicketMatched, seat("r7", "n1", s2.url(), "seat.7"))))
	j := expectSeatJoin(t, p2, "r7", "seat.7")
	p2.send(sessionFrame(3, j.GetCid(), joined("r7", 1, 0, "")))
	r, err := wait()
	if err != nil {
		t.Fatalf("Matchmake: %v", err)
	}
	if r.ID() != "r7" || c.SessionID() != "s2" {
		t.Errorf("room %q session %q, want r7 on s2", r.ID(), c.SessionID())
	}
}

func TestMatchmakeEndsWhenTheNewSessionFindsItsTicketGone(t *testing.T) {
	ended := ticketStatus(TicketCancelled, nil)
	ended.GetTicketStatus().Reason = "session_ended"
	other := ticketStatus(TicketSearching, nil)
	other.GetTicketStatus().TicketId = "t2"
	tests := []struct {
		name   string
		answer *protocol.Envelope
		check  func(error) bool
	}{
		{"not found", errorFrame(CodeNotFound, "no ticket"), func(err error) bool {
			var se *ServerError
			return errors.As(err, &se) && se.Code == CodeNotFound
		}},
		{"ended", ended, func(err error) bool {
			var te *TicketEndedError
			return errors.As(err, &te) && te.Status.State == TicketCancelled && te.Status.Reason == "session_ended"
		}},
		{"another ticket", other, func(err error) bool {
			var te *TicketEndedError
			return err != nil && !errors.As(err, &te) && !errors.Is(err, ErrSessionLost)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, protocol.CodecJSON)
			c, p := connect(t, s, fast)
			wait := matchmake(t, bg(), c, p, new(progressLog))
			p.closeWith(protocol.CloseSessionExpired, "")
			p2 := s.next()
			p2.handshake("s2", "rt2", false, 0)
			q := expectTicketQuery(t, p2)
			p2.send(sessionFrame(1, q.GetCid(), tt.answer))
			if _, err := wait(); !tt.check(err) {
				t.Fatalf("Matchmake: %v", err)
			}
			// The queue is free again: another Matchmake may wait there.
			wait = matchmake(t, bg(), c, p2, new(progressLog))
			s.drain()
			c.Close()
			if _, err := wait(); !errors.Is(err, ErrClosed) {
				t.Fatalf("second Matchmake: %v, want ErrClosed", err)
			}
		})
	}
}

func TestMatchmakeAsksWhetherACreateLostWithItsSessionWasMade(t *testing.T) {
	for _, made := range []bool{true, false} {
		t.Run(map[bool]string{true: "made", false: "not made"}[made], func(t *testing.T) {
			s := newFakeServer(t, protocol.CodecJSON)
			c, p := connect(t, s, fast)
			var r *Room
			wait := async(func() (err error) {
				r, err = c.Matchmake(bg(), TicketRequest{Queue: "duel", Metadata: []byte("m")})
				return err
			})
			if env := p.expect(nil); env.GetTicketCreate() == nil {
				t.Fatalf("got %v, want ticket_create", env)
			}
			p.closeWith(protocol.CloseSessionExpired, "")
			p2 := s.next()
			p2.handshake("s2", "rt2", false, 0)
			q := expectTicketQuery(t, p2)
			if !made {
				p2.send(sessionFrame(1, q.GetCid(), errorFrame(CodeNotFound, "no ticket")))
				if err := wait(); !errors.Is(err, ErrSessionLost) {
					t.Fatalf("Matchmake: %v, want ErrSessionLost", err)
				}
				return
			}
			p2.send(sessionFrame(1, q.GetCid(), ticketStatus(TicketMatched, seat("r7", "n1", "ws://n1/ws", "seat.1"))))
			j := expectSeatJoin(t, p2, "r7", "seat.1")
			p2.send(sessionFrame(2, j.GetCid(), joined("r7", 1, 0, "")))
			if err := wait(); err != nil || r.ID() != "r7" {
				t.Fatalf("Matchmake: %v, %v; want r7", r, err)
			}
		})
	}
}

func TestMatchmakeAsksForItsTicketWhenTheJoinAfterItsMoveFails(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	wait := matchmake(t, bg(), c, p1, new(progressLog))
	p1.send(sessionFrame(2, 0, ticketStatus(TicketMatched, seat("r9", "n2", s2.url(), "seat.mm"))))
	p2 := s2.next()
	p2.expect(nil) // connect with the seat token
	p2.connected("s2", "rt2", false, 0)
	j := p2.expect(nil)
	if j.GetJoin().GetRoomId() != "r9" {
		t.Fatalf("got %v, want join r9", j)
	}
	p2.send(sessionFrame(1, j.GetCid(), errorFrame(CodeNotFound, "the room closed")))
	// The match fell through and the ticket was matched again while the
	// session moved: neither session was there to get the statuses.
	q := expectTicketQuery(t, p2)
	p1.closeCleanly(protocol.CloseMoved, "moved")
	p2.send(sessionFrame(2, q.GetCid(), ticketStatus(TicketMatched, seat("r3", "n1", s2.url(), "seat.3"))))
	j = expectSeatJoin(t, p2, "r3", "seat.3")
	p2.send(sessionFrame(3, j.GetCid(), joined("r3", 1, 0, "")))
	r, err := wait()
	if err != nil {
		t.Fatalf("Matchmake: %v", err)
	}
	if r.ID() != "r3" {
		t.Errorf("room %q, want r3", r.ID())
	}
}

func TestMatchmakeRetriesASeatItCouldNotTakeForNow(t *testing.T) {
	for _, code := range []uint32{CodeRateLimited, CodeUnavailable} {
		t.Run(codeName(code), func(t *testing.T) {
			s := newFakeServer(t, protocol.CodecJSON)
			c, p := connect(t, s, fast)
			wait := matchmake(t, bg(), c, p, new(progressLog))
			p.send(sessionFrame(2, 0, ticketStatus(TicketMatched, seat("r7", "n1", "ws://n1/ws", "seat.1"))))
			j := expectSeatJoin(t, p, "r7", "seat.1")
			p.send(sessionFrame(3, j.GetCid(), errorFrame(code, "not now")))
			j = expectSeatJoin(t, p, "r7", "seat.1")
			p.send(sessionFrame(4, j.GetCid(), joined("r7", 1, 0, "")))
			if r, err := wait(); err != nil || r.ID() != "r7" {
				t.Fatalf("Matchmake: %v, %v; want r7", r, err)
			}
		})
	}
}

func TestMatchmakeRetriesTheSeatsNodeItCouldNotReach(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	var dials atomic.Int32
	cfg := fast
	cfg.NetDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == s2.ln.Addr().String() && dials.Add(1) == 1 {
			return nil, errors.New("no route to host")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	c, p1 := connect(t, s1, cfg)
	wait := matchmake(t, bg(), c, p1, new(progressLog))
	p1.send(sessionFrame(2, 0, ticketStatus(TicketMatched, seat("r9", "n2", s2.url(), "seat.mm"))))
	p2 := s2.next()
	if hello := p2.expect(nil).GetConnect(); hello.GetSeatToken() != "seat.mm" {
		t.Fatalf("connect on the seat's node: %v, want the seat token", hello)
	}
	joinedThere(t, p2, "r9")
	if r, err := wait(); err != nil || r.ID() != "r9" {
		t.Fatalf("Matchmake: %v, %v; want r9", r, err)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d dials to the seat's node, want 2", n)
	}
}

func TestMatchmakeAsksAgainWhileItsTicketIsBeingClaimed(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	ctx, cancel := context.WithCancel(bg())
	wait := matchmake(t, ctx, c, p, new(progressLog))
	cancel()
	if _, err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Matchmake: %v, want context.Canceled", err)
	}
	env := p.expect(nil)
	if env.GetTicketCancel().GetQueue() != "duel" {
		t.Fatalf("got %v, want ticket_cancel", env)
	}
	p.send(sessionFrame(2, env.GetCid(), errorFrame(CodeConflict, "being claimed")))
	env = p.expect(nil)
	if env.GetTicketCancel().GetQueue() != "duel" {
		t.Fatalf("got %v, want ticket_cancel again", env)
	}
	p.send(sessionFrame(3, env.GetCid(), ticketStatus(TicketCancelled, nil)))
	rpcRoundTrip(t, c, p, 4) // and no more
}

func TestCloseWaitsForTheCancelOfAMatchmake(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	running := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(bg())
	wait := matchmake(t, ctx, c, p, new(progressLog))
	cancel()
	if _, err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Matchmake: %v, want context.Canceled", err)
	}
	env := p.expect(nil)
	p.send(sessionFrame(2, env.GetCid(), errorFrame(CodeConflict, "being claimed")))
	p.expect(nil) // asked again; no answer
	remaining(c, s)
	goleak.VerifyNone(t, running)
}

func TestMatchmakeSendsNoCancelWhenItsContextEndedFirst(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	ctx, cancel := context.WithCancel(bg())
	cancel()
	if _, err := c.Matchmake(ctx, TicketRequest{Queue: "duel"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Matchmake: %v, want context.Canceled", err)
	}
	wait := async(func() error { _, err := c.RPC(bg(), "ping", nil); return err })
	env := p.expect(nil)
	if env.GetRpc() == nil {
		t.Fatalf("got %v, want the rpc: no ticket frame was due", env)
	}
	p.send(sessionFrame(1, env.GetCid(), &protocol.Envelope{Body: &protocol.Envelope_RpcReply{RpcReply: &protocol.RpcReply{}}}))
	if err := wait(); err != nil {
		t.Fatalf("RPC: %v", err)
	}
}

func TestProgressSeesOnlyTheStatusesOfMatchmakesTicket(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	var progress progressLog
	wait := matchmake(t, bg(), c, p, &progress)
	old := ticketStatus(TicketCancelled, nil) // an earlier ticket of the queue
	old.GetTicketStatus().TicketId = "t0"
	p.send(
		sessionFrame(2, 0, old),
		sessionFrame(3, 0, ticketStatus(TicketMatched, seat("r7", "n1", "ws://n1/ws", "seat.1"))),
	)
	j := expectSeatJoin(t, p, "r7", "seat.1")
	p.send(sessionFrame(4, j.GetCid(), joined("r7", 1, 0, "")))
	if _, err := wait(); err != nil {
		t.Fatalf("Matchmake: %v", err)
	}
	if diff := cmp.Diff([]string{TicketSearching, TicketMatched}, progress.seen()); diff != "" {
		t.Errorf("Progress (-want +got):\n%s", diff)
	}
}

func TestMatchmakeReturnsOnlyOnceProgressReturned(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	var (
		mu    sync.Mutex
		order []string
	)
	record := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, what)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	progress := func(s TicketStatus) {
		if s.State == TicketClaimed {
			close(entered)
			<-release
			record("Progress returned")
		}
	}
	ctx, cancel := context.WithCancel(bg())
	wait := async(func() error {
		_, err := c.Matchmake(ctx, TicketRequest{Queue: "duel", Progress: progress})
		record("Matchmake returned")
		return err
	})
	create := p.expect(nil)
	p.send(sessionFrame(1, create.GetCid(), ticketStatus(TicketSearching, nil)), sessionFrame(2, 0, ticketStatus(TicketClaimed, nil)))
	<-entered
	cancel()
	if env := p.expect(nil); env.GetTicketCancel() == nil {
		t.Fatalf("got %v, want ticket_cancel", env)
	}
	close(release)
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Matchmake: %v, want context.Canceled", err)
	}
	if diff := cmp.Diff([]string{"Progress returned", "Matchmake returned"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestMatchmakeAsksForItsTicketNowAndThen(t *testing.T) {
	t.Run("matched", func(t *testing.T) {
		s := newFakeServer(t, protocol.CodecJSON)
		c, p := connect(t, s, fast)
		c.ticketResync = time.Millisecond
		wait := matchmake(t, bg(), c, p, new(progressLog))
		// The push of the match was lost: the answer has the seat.
		q := expectTicketQuery(t, p)
		p.send(sessionFrame(2, q.GetCid(), ticketStatus(TicketMatched, seat("r7", "n1", "ws://n1/ws", "seat.1"))))
		j := expectSeatJoin(t, p, "r7", "seat.1")
		p.send(sessionFrame(3, j.GetCid(), joined("r7", 1, 0, "")))
		if r, err := wait(); err != nil || r.ID() != "r7" {
			t.Fatalf("Matchmake: %v, %v; want r7", r, err)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		s := newFakeServer(t, protocol.CodecJSON)
		c, p := connect(t, s, fast)
		c.ticketResync = time.Millisecond
		wait := matchmake(t, bg(), c, p, new(progressLog))
		q := expectTicketQuery(t, p)
		p.send(sessionFrame(2, q.GetCid(), errorFrame(CodeNotFound, "no ticket")))
		_, err := wait()
		var se *ServerError
		if !errors.As(err, &se) || se.Code != CodeNotFound {
			t.Fatalf("Matchmake: %v, want an error wrapping the *ServerError not_found", err)
		}
	})
}

func TestMatchmakeEndsWhenTheClientCloses(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	wait := matchmake(t, bg(), c, p, new(progressLog))
	s.drain()
	c.Close()
	if _, err := wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Matchmake: %v, want ErrClosed", err)
	}
}

func TestOneMatchmakePerQueue(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	ctx, cancel := context.WithCancel(bg())
	defer cancel()
	wait := matchmake(t, ctx, c, p, new(progressLog))
	if _, err := c.Matchmake(bg(), TicketRequest{Queue: "duel"}); err == nil {
		t.Error("a second Matchmake in the same queue started")
	}
	cancel()
	if _, err := wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("Matchmake: %v", err)
	}
}
