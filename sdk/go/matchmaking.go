package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/protocol"
)

// Matchmaking (docs/matchmaking.md): the player puts a ticket in a queue;
// the server pushes every change of it on the session stream (searching,
// claimed, matched with a seat reservation, seated, done, or ended:
// cancelled, expired). Matchmake follows a ticket to its room by itself.

// TicketRequest describes a matchmaking ticket.
type TicketRequest struct {
	Queue string
	// Strings and Numbers are the ticket's properties. The server takes
	// only those the queue lets a client set; the realtime token's mm claim
	// (skill, region…) always wins.
	Strings map[string]string
	Numbers map[string]float64
	// Must: terms every other player of the match satisfies. Should: terms
	// that raise a candidate's score.
	Must, Should []Term
	// Party: tickets with the same Party land in one match and team, once
	// all PartySize of them are in.
	Party     string
	PartySize int
	// Metadata is given to the room's JoinAttempt when Matchmake takes the
	// seat.
	Metadata []byte
	// Progress, if set, is called during Matchmake with every status of
	// the queue's ticket the client receives (the answer to the ticket's
	// creation, then every change the server pushes), in order, before
	// Matchmake acts on it. It is called from the client's goroutine that
	// reads the connection: it must not block.
	Progress func(TicketStatus)
}

// Term is one term of a ticket's query on another ticket's property.
type Term struct {
	Property string
	OneOf    []string // the string value is one of these (one value: equals)
	Min, Max *float64 // bounds of the numeric value (nil: none)
	Weight   float64  // Should terms: added to the score (0 counts as 1)
}

// The states of TicketStatus.State.
const (
	TicketSearching = "searching"
	TicketClaimed   = "claimed" // a matcher holds the ticket for one match
	TicketMatched   = "matched" // Seat is reserved for the player
	TicketSeated    = "seated"  // the player took the seat
	TicketDone      = "done"
	TicketCancelled = "cancelled" // Reason says why
	TicketExpired   = "expired"   // Reason says why
)

// TicketStatus is the state of the player's ticket in a queue.
type TicketStatus struct {
	Queue   string
	State   string // see the Ticket* constants
	Reason  string // cancelled, expired: why (cancelled, timeout, seat_expired, session_ended)
	MatchID string // claimed and later
	// CreatedAt is when the ticket started waiting. A match that fell
	// through (matched, then searching again) keeps it: the ticket keeps
	// its place in the queue.
	CreatedAt time.Time
	Team      int
	// Seat, when matched: the reservation of the player's seat in the
	// match's room (Matchmake takes it by itself).
	Seat *protocol.SeatReservation
}

// Ended reports whether the ticket is over (done, cancelled or expired):
// the player may queue again.
func (s TicketStatus) Ended() bool {
	return s.State == TicketDone || s.State == TicketCancelled || s.State == TicketExpired
}

// TicketEndedError is Matchmake's error when the ticket ended before the
// player was seated: expired (Status.Reason: timeout, seat_expired) or
// cancelled by the server.
type TicketEndedError struct {
	Status TicketStatus
}

func (e *TicketEndedError) Error() string {
	s := fmt.Sprintf("tandem: the ticket in queue %q ended: %s", e.Status.Queue, e.Status.State)
	if e.Status.Reason != "" {
		s += " (" + e.Status.Reason + ")"
	}
	return s
}

// CreateTicket puts the player in r.Queue (r.Metadata and r.Progress are
// Matchmake's; CreateTicket ignores them) and returns the ticket's status,
// searching. The server refuses with a *ServerError: invalid (a property or
// term it does not accept), conflict (the player has a live ticket in the
// queue), banned, or unavailable (no such queue, or it is disabled). The
// ticket's changes arrive as TicketUpdate events.
func (c *Client) CreateTicket(ctx context.Context, r TicketRequest) (TicketStatus, error) {
	ts, err := c.createTicket(ctx, r)
	return ticketStatusOf(ts), err
}

func (c *Client) createTicket(ctx context.Context, r TicketRequest) (*protocol.TicketStatus, error) {
	if r.PartySize < 0 {
		return nil, fmt.Errorf("tandem: negative PartySize %d", r.PartySize)
	}
	return c.ticketRequest(ctx, ticketCreateFrame(&protocol.TicketCreate{
		Queue: r.Queue, StringProperties: r.Strings, NumericProperties: r.Numbers,
		Must: matchTerms(r.Must), Should: matchTerms(r.Should),
		Party: r.Party, PartySize: uint32(r.PartySize),
	}))
}

// CancelTicket takes the player's ticket out of queue and returns its
// status, cancelled. A ticket being matched cannot be cancelled (a
// *ServerError conflict); no ticket is not_found.
func (c *Client) CancelTicket(ctx context.Context, queue string) (TicketStatus, error) {
	ts, err := c.ticketRequest(ctx, ticketCancelFrame(queue))
	return ticketStatusOf(ts), err
}

// Ticket returns the status of the player's ticket in queue (a
// *ServerError not_found when there is none).
func (c *Client) Ticket(ctx context.Context, queue string) (TicketStatus, error) {
	ts, err := c.ticketRequest(ctx, ticketStatusFrame(queue))
	return ticketStatusOf(ts), err
}

func (c *Client) ticketRequest(ctx context.Context, env *protocol.Envelope) (*protocol.TicketStatus, error) {
	rep, err := c.request(ctx, env)
	if err != nil {
		return nil, err
	}
	ts := rep.env.GetTicketStatus()
	if ts == nil {
		return nil, unexpectedReply(rep.env)
	}
	return ts, nil
}

// Matchmake creates the ticket, reports its progress to r.Progress, and on a
// match takes the seat by itself: on the session's own node it joins the
// room with the seat token; on another node it moves the session there, as
// Join does for a seat reservation, and joins the room. It returns the
// joined room (a Joined event precedes its stream on Events, as for Join).
//
// When ctx ends, Matchmake cancels the ticket (best effort: a ticket being
// matched stays) and returns ctx.Err(). A ticket that ends before the player
// is seated (expired, or cancelled by the server) returns a
// *TicketEndedError. A seat that cannot be taken (its node refuses it, or
// the join fails because the seat expired) does not end Matchmake: the
// server puts the ticket back in the queue (a match that fell through
// keeps its place) or ends it. When the session ends (SessionLost, or
// another Join moved it to another node) the server cancels the ticket with
// it, and Matchmake returns an error wrapping ErrSessionLost.
//
// One Matchmake per queue at a time; the pushed statuses reach it even
// while the application does not read Events (within the Events buffer:
// the application must read Events all the same).
func (c *Client) Matchmake(ctx context.Context, r TicketRequest) (*Room, error) {
	w, err := c.waitTicket(r.Queue, r.Progress)
	if err != nil {
		return nil, err
	}
	defer c.endWait(w)
	ts, err := c.createTicket(ctx, r)
	if err != nil {
		if ctx.Err() != nil {
			c.cancelTicket(r.Queue) // the ticket_create may have gone out
		}
		return nil, err
	}
	id := ts.GetTicketId()
	for {
		switch s := ticketStatusOf(ts); {
		case s.Ended():
			return nil, &TicketEndedError{Status: s}
		case s.State == TicketMatched && s.Seat != nil:
			room, err := c.takeSeat(ctx, s.Seat, r.Metadata)
			switch {
			case err == nil:
				return room, nil
			case ctx.Err() != nil:
				c.cancelTicket(r.Queue)
				return nil, ctx.Err()
			case errors.Is(err, ErrSessionLost), c.stopped():
				return nil, err
			}
			c.log.Debug("tandem: the seat could not be taken; waiting for the ticket", "queue", r.Queue, "room", s.Seat.GetRoomId(), "err", err)
			c.rewait(w)
		}
		ts, err = c.nextTicketStatus(ctx, w, id)
		if err != nil {
			if ctx.Err() != nil {
				c.cancelTicket(r.Queue)
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("tandem: matchmaking in %q: %w", r.Queue, err)
		}
	}
}

// takeSeat joins the room of a seat reservation: with its seat token when
// the room is on the session's node, otherwise by moving the session to the
// room's node (follow), then joining the room there. A reservation made
// stale by another Join's move is taken from the session current then.
func (c *Client) takeSeat(ctx context.Context, sr *protocol.SeatReservation, metadata []byte) (*Room, error) {
	for moves := 0; ; moves++ {
		if moves > maxMoves {
			return nil, errTooManyMoves
		}
		c.mu.Lock()
		s := c.sess
		here := sr.GetNode() != "" && sr.GetNode() == s.node
		c.mu.Unlock()
		if !here {
			followed, err := c.follow(ctx, sr, s)
			if err != nil {
				return nil, err
			}
			if !followed {
				continue
			}
			return c.Join(ctx, JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomID: sr.GetRoomId(), Metadata: metadata})
		}
		rep, err := c.request(ctx, seatJoinFrame(sr, metadata))
		switch {
		case errors.Is(err, errMoved):
			continue // another Join moved the session before the answer
		case err != nil:
			return nil, err
		case rep.room != nil:
			return rep.room, nil
		}
		next := rep.env.GetSeatReservation()
		if next == nil {
			return nil, unexpectedReply(rep.env)
		}
		sr = next
	}
}

// cancelTicket asks the server to cancel the ticket in queue without
// waiting: the request goes out (and is resent after a resume) and its
// answer is dropped.
func (c *Client) cancelTicket(queue string) {
	if _, err := c.send(ticketCancelFrame(queue), newPending(), nil); err != nil {
		c.log.Debug("tandem: cancelling the ticket failed", "queue", queue, "err", err)
	}
}

// ticketWait is a Matchmake waiting for its ticket's statuses. Its end is a
// pending entry of the session the ticket lives on, under a cid no request
// uses: like a request's, it fails when that session is lost or moves away,
// or when the client stops.
type ticketWait struct {
	queue    string
	progress func(TicketStatus)
	end      *pending                 // guarded by Client.mu (rewait replaces it)
	wake     chan struct{}            // capacity 1: statuses were pushed
	statuses []*protocol.TicketStatus // pushed, not yet taken; guarded by Client.mu
}

// waitTicket registers a Matchmake in queue, on the current session.
func (c *Client) waitTicket(queue string, progress func(TicketStatus)) (*ticketWait, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopErr; err != nil {
		return nil, err
	}
	if c.tickets[queue] != nil {
		return nil, fmt.Errorf("tandem: a Matchmake in queue %q is already waiting", queue)
	}
	w := &ticketWait{queue: queue, progress: progress, wake: make(chan struct{}, 1)}
	c.watchSessionLocked(w)
	c.tickets[queue] = w
	return w, nil
}

// watchSessionLocked makes w end with the current session. The caller
// holds mu.
func (c *Client) watchSessionLocked(w *ticketWait) {
	c.nextCid++
	w.end = newPending()
	w.end.sess, w.end.cid = c.sess, c.nextCid
	c.sess.pending[w.end.cid] = w.end
}

// rewait moves w to the current session when Matchmake moved the session
// itself, to take a seat whose room then refused the join: the server goes
// on with the ticket there.
func (c *Client) rewait(w *ticketWait) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.end.sess == c.sess || c.stopErr != nil {
		return
	}
	delete(w.end.sess.pending, w.end.cid)
	c.watchSessionLocked(w)
}

func (c *Client) endWait(w *ticketWait) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tickets, w.queue)
	delete(w.end.sess.pending, w.end.cid)
}

// push queues a pushed status for w. The caller holds Client.mu.
func (w *ticketWait) push(ts *protocol.TicketStatus) {
	w.statuses = append(w.statuses, ts)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// nextTicketStatus returns the next pushed status of the ticket id, or the
// error that ended the wait. It skips the statuses of another ticket of the
// queue (one that ended before), and a match followed by a newer status
// already: its seat is gone (the match fell through, or the ticket ended).
func (c *Client) nextTicketStatus(ctx context.Context, w *ticketWait, id string) (*protocol.TicketStatus, error) {
	for {
		c.mu.Lock()
		var ts *protocol.TicketStatus
		superseded := false
		if len(w.statuses) > 0 {
			ts = w.statuses[0]
			w.statuses[0] = nil
			w.statuses = w.statuses[1:]
			superseded = len(w.statuses) > 0
		}
		end := w.end
		c.mu.Unlock()
		switch {
		case ts == nil:
		case id != "" && ts.GetTicketId() != "" && ts.GetTicketId() != id:
			continue
		case superseded && ts.GetState() == TicketMatched:
			continue
		default:
			return ts, nil
		}
		select {
		case <-w.wake:
		case rep := <-end.ch:
			return nil, rep.err
		case <-c.done:
			return nil, c.stopError()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *Client) stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopErr != nil
}

func matchTerms(ts []Term) []*protocol.MatchTerm {
	if len(ts) == 0 {
		return nil
	}
	out := make([]*protocol.MatchTerm, len(ts))
	for i, t := range ts {
		out[i] = &protocol.MatchTerm{Property: t.Property, OneOf: t.OneOf, Min: t.Min, Max: t.Max, Weight: t.Weight}
	}
	return out
}

func ticketStatusOf(ts *protocol.TicketStatus) TicketStatus {
	if ts == nil {
		return TicketStatus{}
	}
	s := TicketStatus{
		Queue: ts.GetQueue(), State: ts.GetState(), Reason: ts.GetReason(), MatchID: ts.GetMatchId(),
		Team: int(ts.GetTeam()), Seat: ts.GetSeat(),
	}
	if ms := ts.GetCreatedAtMs(); ms != 0 {
		s.CreatedAt = time.UnixMilli(ms)
	}
	return s
}
