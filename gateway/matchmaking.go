package gateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tandemhq/tandem"
	mmservice "github.com/tandemhq/tandem/matchmaker/service"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/session"
)

// Matchmaking on the node: the ticket frames of its sessions, pushes of
// their tickets' changes, the rooms matchers ask it to create, and the
// seats of matches its players take. matchmaker/service does the rest.

// startMatchmaking starts the node's matchmaking service, if it has one:
// it needs the cluster (tickets live on the bus).
func (cl *cluster) startMatchmaking() error {
	mm := cl.g.cfg.Matchmaking
	if mm == nil {
		return nil
	}
	mm.OnTicket(cl.onTicket)
	if err := mm.Start(cl.ctx); err != nil {
		return err
	}
	cl.goLoop(func() {
		cl.serve("match rooms", func(ctx context.Context) error {
			return mm.ServeMatchRooms(ctx, cl.createMatchRoom)
		})
	})
	return nil
}

func (c *conn) ticket(ctx context.Context, s *session.Session, cid uint64, body any) {
	g := c.g
	mm := g.cfg.Matchmaking
	fail := func(err error) { s.Reply(errorEnvelope(cid, err)) }
	if mm == nil || g.cl == nil {
		fail(tandem.Errorf(tandem.EUnavailable, "this node has no matchmaking"))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	player := s.Player()
	var t tandem.MatchTicket
	var err error
	switch b := body.(type) {
	case *protocol.Envelope_TicketCreate:
		if berr, banned := g.cl.banned(player.ID, time.Now()); banned {
			fail(berr)
			return
		}
		r := b.TicketCreate
		t, err = mm.Create(ctx, player, mmservice.TicketRequest{
			Session:   s.ID(),
			Queue:     r.GetQueue(),
			Strings:   r.GetStringProperties(),
			Numbers:   r.GetNumericProperties(),
			Must:      terms(r.GetMust()),
			Should:    terms(r.GetShould()),
			Party:     r.GetParty(),
			PartySize: int(r.GetPartySize()),
		})
	case *protocol.Envelope_TicketCancel:
		t, err = mm.Cancel(ctx, player.ID, b.TicketCancel.GetQueue())
	case *protocol.Envelope_TicketStatus:
		t, err = mm.Status(ctx, player.ID, b.TicketStatus.GetQueue())
	}
	if err != nil {
		fail(err)
		return
	}
	s.Reply(&protocol.Envelope{Cid: cid, Body: &protocol.Envelope_TicketStatus{TicketStatus: ticketStatus(t)}})
}

func terms(in []*protocol.MatchTerm) []tandem.MatchTerm {
	if len(in) == 0 {
		return nil
	}
	out := make([]tandem.MatchTerm, len(in))
	for i, t := range in {
		out[i] = tandem.MatchTerm{Property: t.GetProperty(), OneOf: t.GetOneOf(), Min: t.Min, Max: t.Max, Weight: t.GetWeight()}
	}
	return out
}

func ticketStatus(t tandem.MatchTicket) *protocol.TicketStatus {
	st := &protocol.TicketStatus{
		TicketId:    t.ID,
		State:       string(t.State),
		Queue:       t.Queue,
		CreatedAtMs: t.CreatedAt.UnixMilli(),
		Reason:      t.Reason,
		MatchId:     t.MatchID,
		Team:        uint32(t.Team),
	}
	if t.State == tandem.TicketMatched && t.Seat != nil {
		st.Seat = &protocol.SeatReservation{
			RoomId: t.Seat.RoomID, NodeUrl: t.Seat.NodeURL, SeatToken: t.Seat.Token,
			ExpiresAtMs: t.Seat.ExpiresAt.UnixMilli(), Node: t.Seat.Node,
		}
	}
	return st
}

// onTicket pushes a ticket's change to its player's session on this node,
// if it has one (a held session gets it on its resume).
func (cl *cluster) onTicket(t tandem.MatchTicket, deleted bool) {
	if deleted {
		return
	}
	if s, ok := cl.g.sessions.ByPlayer(t.PlayerID); ok {
		s.Reply(&protocol.Envelope{Body: &protocol.Envelope_TicketStatus{TicketStatus: ticketStatus(t)}})
	}
}

// createMatchRoom answers a matcher: it creates the match's room (or
// takes the room to backfill) and reserves a seat in it for every player.
// Nothing is left behind on an error: the seats made are given back, and
// a room made for the match is closed.
func (cl *cluster) createMatchRoom(ctx context.Context, req tandem.MatchRoomRequest) (tandem.MatchRoom, error) {
	g := cl.g
	if !g.Ready() {
		return tandem.MatchRoom{}, tandem.Errorf(tandem.EUnavailable, "node %s is draining", cl.node)
	}
	if req.TimeoutMS > 0 {
		// The matcher gives up then: whatever is not done by then is undone.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond)
		defer cancel()
	}
	var r *room.Room
	created := false
	if req.RoomID != "" {
		var ok bool
		if r, ok = g.rooms.Get(req.RoomID); !ok {
			return tandem.MatchRoom{}, tandem.Errorf(tandem.ENotFound, "no room %q", req.RoomID)
		}
	} else {
		opts, err := json.Marshal(tandem.MatchInfo{MatchID: req.MatchID, Queue: req.Queue, Teams: req.Teams})
		if err != nil {
			return tandem.MatchRoom{}, err
		}
		labels := map[string]string{mmservice.LabelQueue: req.Queue, mmservice.LabelMatch: req.MatchID}
		if r, err = g.rooms.CreateLabeled(req.RoomType, opts, labels); err != nil {
			return tandem.MatchRoom{}, err
		}
		created = true
	}
	out := tandem.MatchRoom{RoomID: r.ID()}
	for _, team := range req.Teams {
		for _, player := range team {
			seat, err := cl.reserveSeat(ctx, r, player, req.Queue)
			if err != nil {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				for _, s := range out.Seats {
					_ = r.Unreserve(uctx, seatKey(s.Token))
				}
				if created {
					_ = r.Close(uctx)
				}
				cancel()
				return tandem.MatchRoom{}, err
			}
			out.Seats = append(out.Seats, seat)
		}
	}
	return out, nil
}

// seated notes that the player is joining with the seat of a match: once
// the room lets the player in (joined), the ticket is seated.
func (cl *cluster) seated(s *session.Session, seat *tandem.Seat) {
	if seat.Queue == "" || cl.g.cfg.Matchmaking == nil {
		return
	}
	now := time.Now()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for k, p := range cl.matchSeats {
		if now.After(p.until) {
			delete(cl.matchSeats, k)
		}
	}
	cl.matchSeats[matchSeatKey(seat.RoomID, s.Player().ID)] = matchSeat{queue: seat.Queue, until: seat.ExpiresAt.Add(time.Minute)}
}

// matchSeat is a match's seat being taken: the join is on its way.
type matchSeat struct {
	queue string
	until time.Time // forgotten after: the join never came
}

func matchSeatKey(roomID, player string) string { return roomID + "\x00" + player }

// joined runs on the room's goroutine when a player joined a room: a
// player who came with a match's seat has taken it, and the ticket is told
// so from the worker (the room does not wait for the bus).
func (cl *cluster) joined(roomID, player string) {
	k := matchSeatKey(roomID, player)
	cl.mu.Lock()
	p, ok := cl.matchSeats[k]
	delete(cl.matchSeats, k)
	cl.mu.Unlock()
	if ok {
		cl.enqueue(job{kind: jobSeated, player: player, roomID: roomID, queue: p.queue})
	}
}
