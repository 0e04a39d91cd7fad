package service

import (
	"context"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/matchmaker"
)

// TicketRequest is what a player asks for: the protocol's TicketCreate.
type TicketRequest struct {
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

// SessionEnded cancels the tickets a player's session leaves searching
// when it ends for good (not when it moved to another node, or was
// replaced by a newer login, which keep their tickets).
func (s *Service) SessionEnded(ctx context.Context, playerID string) {
	s.mu.Lock()
	names := make([]string, 0, len(s.queues))
	for name := range s.queues {
		names = append(names, name)
	}
	s.mu.Unlock()
	for _, name := range names {
		if _, err := s.end(ctx, playerID, name, tandem.TicketCancelled, "session_ended", true); err != nil &&
			tandem.ErrorCodeOf(err) != tandem.ENotFound && tandem.ErrorCodeOf(err) != tandem.EConflict {
			s.log.Warn("cancel ticket of an ended session", "queue", name, "player", playerID, "err", err)
		}
	}
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
