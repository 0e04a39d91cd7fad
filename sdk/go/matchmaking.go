package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	// its ticket the client receives (the answer to the ticket's creation,
	// every change the server pushes, the answers when Matchmake asks for
	// the ticket), in order, before Matchmake acts on it; never after
	// Matchmake returned (Matchmake waits for a call under way). It is
	// called from the client's goroutine that reads the connection: it
	// must not block.
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
	Reason  string // cancelled, expired: why (cancelled, session_ended, queue_deleted, timeout, seat_expired)
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
// searching. The server refuses with a *ServerError: validation_failed (a
// property or term it does not accept; Fields names each), not_found (no
// such queue), conflict (the player has a live ticket in the queue),
// banned, or unavailable (the queue is disabled, or the node has no
// matchmaking). The ticket's changes arrive as TicketUpdate events.
func (c *Client) CreateTicket(ctx context.Context, r TicketRequest) (TicketStatus, error) {
	ts, err := c.createTicket(ctx, r)
	return ticketStatusOf(ts), err
}

func (c *Client) createTicket(ctx context.Context, r TicketRequest) (*protocol.TicketStatus, error) {
	if r.PartySize < 0 {
		return nil, fmt.Errorf("tandem: negative PartySize %d", r.PartySize)
	}
	return c.ticketRequest(ctx, createFrame(r))
}

func createFrame(r TicketRequest) *protocol.Envelope {
	return ticketCreateFrame(&protocol.TicketCreate{
		Queue: r.Queue, StringProperties: r.Strings, NumericProperties: r.Numbers,
		Must: matchTerms(r.Must), Should: matchTerms(r.Should),
		Party: r.Party, PartySize: uint32(r.PartySize),
	})
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
// claimed is asked again for a moment, on a goroutine Close waits for) and
// returns ctx.Err(). A ticket that ends before the player is seated
// (expired, or cancelled by the server) returns a *TicketEndedError. A seat
// that cannot be taken does not end Matchmake: a transient failure
// (rate_limited, unavailable, the seat's node cannot be reached) is retried
// with backoff until the seat expires; a seat that is gone (not_found,
// join_rejected, invalid) is left to the server, which puts the ticket back
// in the queue (a match that fell through keeps its place) or ends it.
//
// The ticket lives on the server, not in the session: a session that moves
// (another Join moved it) or is lost (its node died; the client started a
// new session) keeps it, and its changes go to the new session. Matchmake
// follows it there, and asks for the ticket's status (Ticket) to learn what
// it missed; it does so every 30 s too. A ticket the server no longer has
// ends Matchmake with an error wrapping the *ServerError not_found. Only
// the client stopping (Close: ErrClosed) ends Matchmake otherwise.
//
// One Matchmake per queue at a time; the pushed statuses reach it even
// while the application does not read Events (within the Events buffer:
// the application must read Events all the same).
func (c *Client) Matchmake(ctx context.Context, r TicketRequest) (*Room, error) {
	if r.PartySize < 0 {
		return nil, fmt.Errorf("tandem: negative PartySize %d", r.PartySize)
	}
	w, err := c.waitTicket(r.Queue, r.Progress)
	if err != nil {
		return nil, err
	}
	defer c.endWait(w)
	m := &matchmaking{c: c, r: r, w: w, resync: time.NewTimer(c.ticketResync)}
	defer m.stopTimers()
	ts, err := c.createWaitedTicket(ctx, w, r)
	if errors.Is(err, ErrSessionLost) && ctx.Err() == nil {
		ts = m.recreated(ctx)
	}
	if ts == nil {
		return nil, err
	}
	for {
		room, err := m.act(ctx, ts)
		if err == nil && room == nil {
			ts, err = m.next(ctx)
		}
		var ended *TicketEndedError
		switch {
		case room != nil:
			return room, nil
		case err == nil:
		case errors.As(err, &ended):
			return nil, err
		case ctx.Err() != nil:
			c.cancelTicket(r.Queue)
			return nil, ctx.Err()
		case c.stopped():
			return nil, c.stopError()
		default:
			return nil, fmt.Errorf("tandem: matchmaking in %q: %w", r.Queue, err)
		}
	}
}

// createWaitedTicket creates the ticket Matchmake waits for with w. Its
// answer names the ticket for w (dispatchTicket). A ticket_create that went
// out is cancelled when ctx ends before its answer; one that never went
// out is not.
func (c *Client) createWaitedTicket(ctx context.Context, w *ticketWait, r TicketRequest) (*protocol.TicketStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := c.send(createFrame(r), w.create, nil); err != nil {
		return nil, err
	}
	var rep reply
	select {
	case rep = <-w.create.ch:
	case <-ctx.Done():
		c.forget(w.create)
		c.cancelTicket(r.Queue)
		return nil, ctx.Err()
	}
	if rep.err != nil {
		return nil, rep.err
	}
	ts := rep.env.GetTicketStatus()
	if ts == nil {
		return nil, unexpectedReply(rep.env)
	}
	return ts, nil
}

// matchmaking is the state of one Matchmake after its ticket was created.
type matchmaking struct {
	c *Client
	r TicketRequest
	w *ticketWait

	resync   *time.Timer // the next periodic Ticket(queue)
	resyncOn bool        // ask for the ticket's status before waiting again

	// A seat that could not be taken for a transient reason, taken again
	// when retry fires (unless another status comes first).
	retry       *time.Timer
	retryStatus *protocol.TicketStatus
	retrySeat   string // its seat token: attempts count per seat
	attempts    int
}

// act does what a status of the ticket calls for: it returns the ticket's
// end, takes the seat of a match, or does nothing (Matchmake waits on).
func (m *matchmaking) act(ctx context.Context, ts *protocol.TicketStatus) (*Room, error) {
	c := m.c
	s := ticketStatusOf(ts)
	switch {
	case s.Ended():
		return nil, &TicketEndedError{Status: s}
	case s.State != TicketMatched || s.Seat == nil:
		return nil, nil
	}
	room, err := c.takeSeat(ctx, s.Seat, m.r.Metadata)
	if err == nil || ctx.Err() != nil || c.stopped() {
		return room, err
	}
	c.log.Debug("tandem: the seat could not be taken", "queue", m.r.Queue, "room", s.Seat.GetRoomId(), "err", err)
	if errors.Is(err, ErrSessionLost) || !c.watching(m.w) {
		// The session was lost, or Matchmake moved it and then failed to
		// join: statuses may have been written while no session had them.
		c.rewatch(m.w)
		m.resyncOn = true
		return nil, nil
	}
	if seatGone(err) {
		return nil, nil
	}
	m.retryLater(ts)
	return nil, nil
}

// recreated returns the ticket a ticket_create lost with its session
// created after all (the server may have made it before the session
// ended), or nil.
func (m *matchmaking) recreated(ctx context.Context) *protocol.TicketStatus {
	m.c.rewatch(m.w)
	ts, err := m.sync(ctx)
	if err != nil || ts == nil || ticketStatusOf(ts).Ended() {
		return nil
	}
	m.c.mu.Lock()
	m.w.id = ts.GetTicketId()
	m.c.mu.Unlock()
	return ts
}

// retryLater arranges to take the seat of ts again after a backoff, if
// that is before the seat expires.
func (m *matchmaking) retryLater(ts *protocol.TicketStatus) {
	sr := ts.GetSeat()
	if sr.GetSeatToken() != m.retrySeat {
		m.retrySeat, m.attempts = sr.GetSeatToken(), 0
	}
	d := backoff(m.attempts, m.c.cfg.MinBackoff, m.c.cfg.MaxBackoff, nil)
	m.attempts++
	if ms := sr.GetExpiresAtMs(); ms == 0 || time.Now().Add(d).After(time.UnixMilli(ms)) {
		return // the server expires the seat: a status follows
	}
	m.stopRetry()
	m.retry, m.retryStatus = time.NewTimer(d), ts
}

// next returns the next status to act on: a pushed one, the answer to a
// resync, or a seat to retry; or the error that ends Matchmake.
func (m *matchmaking) next(ctx context.Context) (*protocol.TicketStatus, error) {
	c, w := m.c, m.w
	for {
		if m.resyncOn {
			m.resyncOn = false
			ts, err := m.sync(ctx)
			if err != nil || ts != nil {
				m.stopRetry()
				return ts, err
			}
		}
		if ts := c.takeTicketStatus(w); ts != nil {
			m.stopRetry()
			return ts, nil
		}
		var retry <-chan time.Time
		if m.retry != nil {
			retry = m.retry.C
		}
		c.mu.Lock()
		end := w.end
		c.mu.Unlock()
		select {
		case <-w.wake:
		case rep := <-end.ch:
			if c.stopped() {
				return nil, rep.err
			}
			c.rewatch(w) // a new session has the ticket's changes
			m.resyncOn = true
		case <-retry:
			ts := m.retryStatus
			m.retry, m.retryStatus = nil, nil
			return ts, nil
		case <-m.resync.C:
			m.resyncOn = true
		case <-c.done:
			return nil, c.stopError()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// sync asks for the ticket's status: it returns it, or nil when the
// answer is no news (a transient failure: the next resync asks again), or
// the error that ends Matchmake (not_found: the server has no ticket).
func (m *matchmaking) sync(ctx context.Context) (*protocol.TicketStatus, error) {
	c, w := m.c, m.w
	defer m.resync.Reset(c.ticketResync)
	for {
		ts, err := c.ticketRequest(ctx, ticketStatusFrame(m.r.Queue))
		switch {
		case err == nil:
			c.mu.Lock()
			id := w.id
			c.mu.Unlock()
			if got := ts.GetTicketId(); id != "" && got != "" && got != id {
				return nil, fmt.Errorf("tandem: ticket %s was replaced by %s", id, got)
			}
			return ts, nil
		case ctx.Err() != nil, c.stopped(), errors.Is(err, &ServerError{Code: CodeNotFound}):
			return nil, err
		case errors.Is(err, ErrSessionLost):
			c.rewatch(w) // lost again, or moved: ask the session current now
		default:
			c.log.Debug("tandem: asking for the ticket failed", "queue", m.r.Queue, "err", err)
			return nil, nil
		}
	}
}

func (m *matchmaking) stopRetry() {
	if m.retry != nil {
		m.retry.Stop()
		m.retry, m.retryStatus = nil, nil
	}
}

func (m *matchmaking) stopTimers() {
	m.stopRetry()
	m.resync.Stop()
}

// seatGone reports whether a failure to take a seat says the seat is gone
// (it does not exist, the room refused the player, or the request is
// wrong): retrying cannot help, the server moves the ticket on.
func seatGone(err error) bool {
	var se *ServerError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case CodeNotFound, CodeJoinRejected, CodeInvalid:
		return true
	}
	return false
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

// The cancel Matchmake sends when its context ends is asked again while
// the server answers conflict (the ticket is being claimed: a moment
// later it is matched, and cancelling gives its seat up) or the session is
// lost (the ticket is not), a few times within cancelPatience.
const (
	cancelPatience = 2 * time.Second
	cancelAttempts = 5
)

// ticketResyncInterval is how often a waiting Matchmake asks for its
// ticket's status (Client.ticketResync; tests shorten it): a status lost
// or never sent, or a ticket the server deleted, must not leave it waiting
// for ever.
const ticketResyncInterval = 30 * time.Second

// cancelTicket cancels the ticket in queue without holding its caller up:
// on a goroutine of the client's (Close waits for it), it asks until the
// ticket is cancelled, the answer is final, or cancelPatience is over.
func (c *Client) cancelTicket(queue string) {
	c.mu.Lock()
	if c.stopErr != nil {
		c.mu.Unlock()
		return
	}
	c.tasks.Add(1) // under mu, before Close sets stopErr and waits
	c.mu.Unlock()
	go func() {
		defer c.tasks.Done()
		ctx, cancel := context.WithTimeout(c.ctx, cancelPatience)
		defer cancel()
		for attempt := 0; ; attempt++ {
			_, err := c.ticketRequest(ctx, ticketCancelFrame(queue))
			again := errors.Is(err, &ServerError{Code: CodeConflict}) || errors.Is(err, ErrSessionLost)
			if !again || attempt+1 == cancelAttempts {
				if err != nil {
					c.log.Debug("tandem: cancelling the ticket failed", "queue", queue, "err", err)
				}
				return
			}
			t := time.NewTimer(backoff(attempt, c.cfg.MinBackoff, c.cfg.MaxBackoff, nil))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				c.log.Debug("tandem: cancelling the ticket failed", "queue", queue, "err", err)
				return
			}
		}
	}()
}

// ticketWait is a Matchmake waiting for its ticket's statuses. Its end is a
// pending entry of the session it watches, under a cid no request uses:
// like a request's, it fails when that session is lost or moves away, or
// when the client stops; Matchmake then watches the session current.
type ticketWait struct {
	queue    string
	progress func(TicketStatus)
	// progressMu is held while Progress runs, and by endWait: Progress is
	// never called once Matchmake returned.
	progressMu sync.Mutex

	// Guarded by Client.mu:
	create   *pending                 // the ticket_create; its answer names the ticket
	id       string                   // the ticket's id, once known
	end      *pending                 // rewatch replaces it
	statuses []*protocol.TicketStatus // pushed, not yet taken

	wake chan struct{} // capacity 1: statuses were pushed
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
	w := &ticketWait{queue: queue, progress: progress, create: newPending(), wake: make(chan struct{}, 1)}
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

// watching reports whether w watches the current session (Matchmake did
// not move it since).
func (c *Client) watching(w *ticketWait) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return w.end.sess == c.sess
}

// rewatch makes w watch the current session, after the one it watched
// moved or was lost: the server goes on with the ticket there.
func (c *Client) rewatch(w *ticketWait) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopErr != nil {
		return
	}
	delete(w.end.sess.pending, w.end.cid)
	c.watchSessionLocked(w)
}

func (c *Client) endWait(w *ticketWait) {
	w.progressMu.Lock()
	defer w.progressMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tickets, w.queue)
	delete(w.end.sess.pending, w.end.cid)
}

// concerns reports whether ts is a status of w's ticket: any of the queue
// until the ticket's id is known. The caller holds Client.mu.
func (w *ticketWait) concerns(ts *protocol.TicketStatus) bool {
	return w.id == "" || ts.GetTicketId() == "" || ts.GetTicketId() == w.id
}

// reportProgress calls w's Progress with s, unless Matchmake has returned.
func (c *Client) reportProgress(w *ticketWait, s TicketStatus) {
	w.progressMu.Lock()
	defer w.progressMu.Unlock()
	c.mu.Lock()
	live := c.tickets[w.queue] == w
	c.mu.Unlock()
	if live {
		w.progress(s)
	}
}

// push queues a pushed status for w. The caller holds Client.mu.
func (w *ticketWait) push(ts *protocol.TicketStatus) {
	w.statuses = append(w.statuses, ts)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// takeTicketStatus returns the next pushed status of w's ticket, or nil.
// It skips a match followed by a newer status already: its seat is gone
// (the match fell through, or the ticket ended).
func (c *Client) takeTicketStatus(w *ticketWait) *protocol.TicketStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(w.statuses) > 0 {
		ts := w.statuses[0]
		w.statuses[0] = nil
		w.statuses = w.statuses[1:]
		switch {
		case !w.concerns(ts):
		case len(w.statuses) > 0 && ts.GetState() == TicketMatched:
		default:
			return ts
		}
	}
	return nil
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
