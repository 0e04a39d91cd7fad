package service

import (
	"context"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/matchmaker"
)

// TicketRequest is what a player asks for: the protocol's TicketCreate.
type TicketRequest struct {
	Session   string // the player's session asking
	Queue     string
	Strings   map[string]string
	Numbers   map[string]float64
	Must      []tandem.MatchTerm
	Should    []tandem.MatchTerm
	Party     string
	PartySize int
}

// casRetries bounds the compare-and-swap loops of the ticket front: a
// ticket changes a few times in its life, never continuously.
const casRetries = 8

// Create puts player in a queue. The properties that decide fairness come
// from the player's realtime token (its mm claim); the request may only
// add those its queue lets a client set.
func (s *Service) Create(ctx context.Context, player *tandem.Player, r TicketRequest) (tandem.MatchTicket, error) {
	q, ok := s.Queue(r.Queue)
	if !ok {
		return tandem.MatchTicket{}, tandem.Errorf(tandem.ENotFound, "no matchmaking queue %q", r.Queue)
	}
	if q.Disabled {
		return tandem.MatchTicket{}, tandem.Errorf(tandem.EUnavailable, "queue %q takes no tickets now", r.Queue)
	}
	now := s.cfg.Now()
	t, err := matchmaker.BuildTicket(q, tandem.MatchTicket{
		ID:        newID("t-"),
		Queue:     q.Name,
		PlayerID:  player.ID,
		Party:     r.Party,
		PartySize: r.PartySize,
		Must:      r.Must,
		Should:    r.Should,
		CreatedAt: now,
		UpdatedAt: now,
		Node:      s.cfg.Node,
		Session:   r.Session,
		State:     tandem.TicketSearching,
	}, player.MM, r.Strings, r.Numbers)
	if err != nil {
		return tandem.MatchTicket{}, err
	}
	t, err = s.cfg.Bus.CreateTicket(ctx, t)
	if err != nil {
		if tandem.ErrorCodeOf(err) == tandem.EConflict {
			return tandem.MatchTicket{}, tandem.Errorf(tandem.EConflict, "already in queue %q", r.Queue)
		}
		return tandem.MatchTicket{}, err
	}
	// Known at once, not when the watch brings it: a session ending
	// right after must find it.
	s.index(t, false)
	s.cfg.Metrics.Tickets.WithLabelValues(q.Name).Inc()
	return t, nil
}

// Status returns the player's ticket in queue.
func (s *Service) Status(ctx context.Context, playerID, queue string) (tandem.MatchTicket, error) {
	t, err := s.cfg.Bus.Ticket(ctx, queue, playerID)
	if tandem.ErrorCodeOf(err) == tandem.ENotFound {
		return t, tandem.Errorf(tandem.ENotFound, "no ticket in queue %q", queue)
	}
	return t, err
}

// Cancel takes the player's ticket out of queue. A ticket being claimed
// for a match cannot be cancelled (EConflict: ask again in a moment); a
// matched one can, which gives up its seat.
func (s *Service) Cancel(ctx context.Context, playerID, queue string) (tandem.MatchTicket, error) {
	return s.end(ctx, playerID, queue, tandem.TicketCancelled, "cancelled", false)
}

// SessionEnded cancels a player's searching tickets when a session of the
// player ends for good (not when it moved to another node, or was replaced
// by a newer login: those keep their tickets): all of them when the player
// has no other live session, else only those the ended session created (a
// newer session's are left alone, even if this runs late). It reports
// whether it should be called again later: a ticket being claimed for a
// match cannot be cancelled now, and may come back to searching.
func (s *Service) SessionEnded(ctx context.Context, playerID, session string) (again bool) {
	alive := false
	switch p, err := s.cfg.Cluster.Presence(ctx, playerID); {
	case err == nil:
		alive = p.SessionID != session
	case tandem.ErrorCodeOf(err) != tandem.ENotFound:
		s.log.Warn("cancel tickets of an ended session: presence", "player", playerID, "err", err)
		return true
	}
	for _, name := range s.liveQueues(playerID) {
		t, err := s.cfg.Bus.Ticket(ctx, name, playerID)
		if err != nil {
			if tandem.ErrorCodeOf(err) != tandem.ENotFound {
				s.log.Warn("cancel ticket of an ended session", "queue", name, "player", playerID, "err", err)
				again = true
			}
			continue
		}
		if alive && t.Session != session {
			continue // the player lives on in another session, which may own it
		}
		_, err = s.end(ctx, playerID, name, tandem.TicketCancelled, "session_ended", true)
		switch c := tandem.ErrorCodeOf(err); {
		case err == nil, c == tandem.ENotFound:
		case c == tandem.EConflict:
			// Claimed: it may come back to searching. Matched or seated:
			// the seat's expiry settles it.
			// Matched too: its match may fall through and put it back.
			again = again || t.State == tandem.TicketClaimed || t.State == tandem.TicketSearching || t.State == tandem.TicketMatched
		default:
			s.log.Warn("cancel ticket of an ended session", "queue", name, "player", playerID, "err", err)
			again = true
		}
	}
	return again
}

// end moves the player's ticket to an ended state. searchingOnly leaves
// tickets that are past searching alone.
func (s *Service) end(ctx context.Context, playerID, queue string, state tandem.TicketState, reason string, searchingOnly bool) (tandem.MatchTicket, error) {
	for range casRetries {
		t, err := s.Status(ctx, playerID, queue)
		if err != nil {
			return t, err
		}
		switch {
		case t.State.Ended():
			return t, tandem.Errorf(tandem.ENotFound, "no ticket in queue %q (it is %s)", queue, t.State)
		case t.State == tandem.TicketClaimed, t.State == tandem.TicketSeated, t.State != tandem.TicketSearching && searchingOnly:
			return t, tandem.Errorf(tandem.EConflict, "the ticket in queue %q is %s", queue, t.State)
		}
		t.State, t.Reason, t.UpdatedAt = state, reason, s.cfg.Now()
		t, err = s.cfg.Bus.UpdateTicket(ctx, t)
		if tandem.ErrorCodeOf(err) == tandem.EConflict {
			continue
		}
		return t, err
	}
	return tandem.MatchTicket{}, tandem.Errorf(tandem.EConflict, "the ticket in queue %q keeps changing", queue)
}

// Seated records that the player took the seat of its match in queue (a
// seated join on this node): the match's matcher settles it.
func (s *Service) Seated(ctx context.Context, playerID, queue, roomID string) error {
	for range casRetries {
		t, err := s.cfg.Bus.Ticket(ctx, queue, playerID)
		if err != nil {
			return err
		}
		if t.State != tandem.TicketMatched || t.Seat == nil || t.Seat.RoomID != roomID {
			return tandem.Errorf(tandem.EConflict, "the ticket in queue %q is %s", queue, t.State)
		}
		t.State, t.UpdatedAt = tandem.TicketSeated, s.cfg.Now()
		if _, err = s.cfg.Bus.UpdateTicket(ctx, t); tandem.ErrorCodeOf(err) != tandem.EConflict {
			return err
		}
	}
	return tandem.Errorf(tandem.EConflict, "the ticket in queue %q keeps changing", queue)
}
