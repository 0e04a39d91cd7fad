package service

import (
	"cmp"
	"context"
	"maps"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/matchmaker"
)

// matcher runs one queue on the node that holds the queue's lease. Its
// copy of the queue's tickets follows the bucket (a watch) and its own
// writes; every write it makes is a compare-and-swap on the revision it
// read, so a matcher that lost its lease without knowing (paused, cut off)
// can never place a ticket another matcher placed since.
type matcher struct {
	s      *Service
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	q       tandem.MatchQueue
	tickets map[string]tandem.MatchTicket // by player

	// Backoff after failed commits (the pass's goroutine only, and the
	// commits it waits for, under mu): no new room is made before
	// newRoomsAt, and a room that refused a backfill is skipped until its
	// time in skipRooms.
	fails      int
	newRoomsAt time.Time
	skipRooms  map[string]time.Time
}

func newMatcher(s *Service, q tandem.MatchQueue) *matcher {
	ctx, cancel := context.WithCancel(s.ctx)
	return &matcher{s: s, ctx: ctx, cancel: cancel, q: q, tickets: make(map[string]tandem.MatchTicket), skipRooms: make(map[string]time.Time)}
}

func (m *matcher) stop() { m.cancel() }

func (m *matcher) setQueue(q tandem.MatchQueue) {
	m.mu.Lock()
	m.q = q
	m.mu.Unlock()
}

func (m *matcher) queue() tandem.MatchQueue {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.q
}

func (m *matcher) run() {
	name := m.queue().Name
	defer m.s.cfg.Metrics.QueueDepth.DeleteLabelValues(name)
	t := time.NewTicker(m.s.cfg.Tick)
	defer t.Stop()
	var stop func()
	for stop == nil {
		var err error
		if stop, err = m.s.cfg.Bus.WatchTickets(m.ctx, name, m.onTicket); err != nil {
			if m.ctx.Err() != nil {
				return
			}
			m.s.log.Warn("matcher: watch tickets", "queue", name, "err", err)
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
			}
		}
	}
	defer stop()
	for {
		m.safePass()
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// onTicket keeps the copy: a change older than what the matcher wrote
// itself is ignored.
func (m *matcher) onTicket(t tandem.MatchTicket, deleted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if deleted {
		delete(m.tickets, t.PlayerID)
		return
	}
	if cur, ok := m.tickets[t.PlayerID]; ok && cur.Revision > t.Revision {
		return
	}
	m.tickets[t.PlayerID] = t
}

// store records the matcher's own write of a ticket of its copy; one the
// watch deleted meanwhile stays deleted.
func (m *matcher) store(t tandem.MatchTicket) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.tickets[t.PlayerID]; ok && cur.Revision <= t.Revision {
		m.tickets[t.PlayerID] = t
	}
}

func (m *matcher) snapshot() (tandem.MatchQueue, []tandem.MatchTicket) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := make([]tandem.MatchTicket, 0, len(m.tickets))
	for _, t := range m.tickets {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b tandem.MatchTicket) int { return cmp.Compare(a.PlayerID, b.PlayerID) })
	return m.q, ts
}

// commitsInFlight bounds the matches a pass commits at once.
const commitsInFlight = 16

// safePass runs a pass; a panic (a bug, or a queue configuration the
// matcher cannot handle) is logged instead of taking the node down, and
// with it every node that takes the queue over next.
func (m *matcher) safePass() {
	defer func() {
		if v := recover(); v != nil {
			m.s.log.Error("matcher pass failed", "queue", m.queue().Name, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	m.pass()
}

// defaultTimeout expires a ticket of a queue without a timeout before the
// tickets bucket's own limit (an hour) would delete it unseen.
const defaultTimeout = 55 * time.Minute

// pass is one run of the matcher: expire, release and settle what is due,
// then match the searching tickets and commit the matches.
func (m *matcher) pass() {
	start := time.Now()
	now := m.s.cfg.Now()
	q, tickets := m.snapshot()
	var searching []tandem.MatchTicket
	matches := make(map[string][]tandem.MatchTicket)
	for _, t := range tickets {
		if m.ctx.Err() != nil {
			return // stopped (its lease lost): the next holder does the rest
		}
		switch {
		case t.State == tandem.TicketSearching:
			if now.Sub(t.CreatedAt) >= timeout(q) {
				m.end(t, tandem.TicketExpired, "timeout", now)
				continue
			}
			searching = append(searching, t)
		case t.State == tandem.TicketClaimed:
			// A commit finishes within the pass that began it: a claim seen
			// here is another (older) matcher's, in progress or abandoned.
			if now.Sub(t.ClaimedAt) >= m.s.cfg.ClaimTimeout {
				m.requeue(t, now)
			}
		case t.State == tandem.TicketMatched, t.State == tandem.TicketSeated:
			matches[t.MatchID] = append(matches[t.MatchID], t)
		case t.State == tandem.TicketCancelled && t.MatchID != "" && t.Reason == "cancelled":
			// A player who gave up a seat: its match falls through.
			matches[t.MatchID] = append(matches[t.MatchID], t)
		case t.State.Ended() && now.Sub(t.UpdatedAt) >= m.s.cfg.Ended && (t.State != tandem.TicketDone || !q.Backfill):
			// Done tickets of a backfilling queue say who is in its rooms
			// (the bucket drops them after an hour).
			m.delete(t)
		}
	}
	m.s.cfg.Metrics.QueueDepth.WithLabelValues(q.Name).Set(float64(len(searching)))
	for _, id := range sortedKeys(matches) {
		if m.ctx.Err() != nil {
			return
		}
		m.settle(q, matches[id], now)
	}
	if len(searching) > 0 {
		var open []matchmaker.OpenRoom
		if q.Backfill {
			open = m.openRooms(q, tickets, now)
		}
		m.commitAll(q, matchmaker.Run(q, now, searching, open), now)
	}
	m.s.cfg.Metrics.MatcherTick.WithLabelValues(q.Name).Observe(time.Since(start).Seconds())
}

// commitAll commits a pass's matches. They share no ticket, so they are
// committed side by side, a bounded number at a time (each is a few bus
// round trips). New rooms wait out a backoff after failed commits.
func (m *matcher) commitAll(q tandem.MatchQueue, matches []matchmaker.Match, now time.Time) {
	m.mu.Lock()
	newRooms := !now.Before(m.newRoomsAt)
	m.mu.Unlock()
	var wg sync.WaitGroup
	slots := make(chan struct{}, commitsInFlight)
	for _, mt := range matches {
		if m.ctx.Err() != nil || !m.s.leaseGood(q.Name) {
			break
		}
		if mt.RoomID == "" && !newRooms {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			m.commit(q, mt, now)
		})
	}
	wg.Wait()
}

// failed records a failed commit: new rooms back off (doubling up to
// maxBackoff), a backfilled room is skipped for a while.
func (m *matcher) failed(roomID string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if roomID != "" {
		m.skipRooms[roomID] = now.Add(maxBackoff)
		return
	}
	m.fails++
	m.newRoomsAt = now.Add(min(maxBackoff, m.s.cfg.Tick<<min(m.fails, 8)))
}

func (m *matcher) succeeded(roomID string) {
	if roomID != "" {
		return
	}
	m.mu.Lock()
	m.fails, m.newRoomsAt = 0, time.Time{}
	m.mu.Unlock()
}

// maxBackoff bounds how long a matcher waits after failed commits.
const maxBackoff = 30 * time.Second

// timeout is how long q's tickets may search.
func timeout(q tandem.MatchQueue) time.Duration {
	if q.TimeoutMS <= 0 || q.TimeoutMS > defaultTimeout.Milliseconds() {
		return defaultTimeout
	}
	return time.Duration(q.TimeoutMS) * time.Millisecond
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// busTimeout bounds one bus call of the matcher.
const busTimeout = 5 * time.Second

// update writes t over the revision it was read at. A write begun
// finishes even when the matcher is stopping (its lease lost): a commit
// cut in the middle would leave claims for the claim timeout to release.
func (m *matcher) update(t tandem.MatchTicket) (tandem.MatchTicket, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), busTimeout)
	defer cancel()
	nt, err := m.s.cfg.Bus.UpdateTicket(ctx, t)
	if err != nil {
		if c := tandem.ErrorCodeOf(err); c != tandem.EConflict && c != tandem.ENotFound {
			m.s.log.Warn("matcher: update ticket", "queue", t.Queue, "player", t.PlayerID, "err", err)
		}
		return t, err
	}
	m.store(nt)
	return nt, nil
}

// apply writes decide's change of t; when t changed meanwhile (a cancel, a
// seat taken) it reads it again and decides again, as long as it is still
// part of the same match. It returns the ticket as written and whether a
// write landed.
func (m *matcher) apply(t tandem.MatchTicket, decide func(cur tandem.MatchTicket) (tandem.MatchTicket, bool)) (tandem.MatchTicket, bool) {
	match := t.MatchID
	for range casRetries {
		next, ok := decide(t)
		if !ok {
			return t, false
		}
		nt, err := m.update(next)
		if err == nil {
			return nt, true
		}
		if tandem.ErrorCodeOf(err) != tandem.EConflict {
			return t, false
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), busTimeout)
		t, err = m.s.cfg.Bus.Ticket(ctx, t.Queue, t.PlayerID)
		cancel()
		if err != nil || t.MatchID != match {
			return t, false
		}
		m.store(t)
	}
	return t, false
}

func (m *matcher) end(t tandem.MatchTicket, state tandem.TicketState, reason string, now time.Time) {
	t.State, t.Reason, t.UpdatedAt = state, reason, now
	_, _ = m.update(t)
}

// requeued is t back to searching, at its old place in the queue.
func requeued(t tandem.MatchTicket, now time.Time) tandem.MatchTicket {
	t.State, t.MatchID, t.Team, t.Backfill, t.Seat, t.UpdatedAt = tandem.TicketSearching, "", 0, false, nil, now
	t.ClaimedAt = time.Time{}
	return t
}

func (m *matcher) requeue(t tandem.MatchTicket, now time.Time) {
	_, _ = m.update(requeued(t, now))
}

func (m *matcher) delete(t tandem.MatchTicket) {
	ctx, cancel := context.WithTimeout(m.ctx, busTimeout)
	defer cancel()
	_ = m.s.cfg.Bus.DeleteTicket(ctx, t.Queue, t.PlayerID, t.Revision)
}

// commit claims every ticket of a match for it, has a node reserve the
// seats and hands each ticket its seat. Any claim that fails (another
// matcher, a cancel) abandons the match and releases the claims taken.
func (m *matcher) commit(q tandem.MatchQueue, mt matchmaker.Match, now time.Time) {
	id := newID("m-")
	var taken []tandem.MatchTicket
	release := func() {
		for _, t := range taken {
			m.requeue(t, now)
		}
	}
	teams := make([][]string, len(mt.Teams))
	for team, ts := range mt.Teams {
		for _, t := range ts {
			// The claim timeout counts from the write (the pass may be long).
			t.State, t.MatchID, t.ClaimedAt, t.Team, t.Backfill, t.UpdatedAt = tandem.TicketClaimed, id, m.s.cfg.Now(), team, mt.RoomID != "", now
			nt, err := m.update(t)
			if err != nil {
				release()
				return
			}
			taken = append(taken, nt)
			teams[team] = append(teams[team], t.PlayerID)
		}
	}
	node, room, err := m.room(q, mt.RoomID, id, teams)
	if err != nil {
		if m.ctx.Err() == nil {
			m.s.log.Warn("matcher: no room for a match", "queue", q.Name, "room", mt.RoomID, "err", err)
		}
		m.failed(mt.RoomID, now)
		release()
		return
	}
	m.succeeded(mt.RoomID)
	var wait time.Duration
	landed := make([][]string, len(teams))
	var written []tandem.MatchTicket
	missing := false
	for i, t := range taken {
		s := room.Seats[i]
		t.State, t.UpdatedAt = tandem.TicketMatched, now
		t.Seat = &tandem.MatchSeat{RoomID: room.RoomID, Node: s.Node, NodeURL: s.NodeURL, Token: s.Token, ExpiresAt: s.ExpiresAt}
		nt, err := m.update(t)
		if err != nil {
			// Left claimed: the claim timeout puts it back.
			missing = true
			continue
		}
		written = append(written, nt)
		landed[t.Team] = append(landed[t.Team], t.PlayerID)
		wait = max(wait, now.Sub(t.CreatedAt))
	}
	if missing && mt.RoomID == "" {
		// A new room's match is all or nothing: its room was made for
		// exactly these players (its options name them). Undone: the
		// others back to the front of the queue, the room closed.
		for _, t := range written {
			m.apply(t, func(t tandem.MatchTicket) (tandem.MatchTicket, bool) {
				if t.State != tandem.TicketMatched {
					return t, false
				}
				return requeued(t, now), true
			})
		}
		m.closeRoom(node, room.RoomID, id, now)
		return
	}
	if len(written) == 0 {
		return
	}
	for _, t := range written {
		m.s.cfg.Metrics.TimeToMatch.WithLabelValues(q.Name).Observe(now.Sub(t.CreatedAt).Seconds())
	}
	m.s.cfg.Metrics.Matches.WithLabelValues(q.Name).Inc()
	m.s.cfg.Emit(tandem.Event{
		Kind:     tandem.EventMatch,
		At:       now,
		RoomID:   room.RoomID,
		RoomType: q.RoomType,
		Attrs: map[string]string{
			"queue":    q.Name,
			"match":    id,
			"node":     node,
			"players":  joinTeams(landed),
			"wait_ms":  strconv.FormatInt(wait.Milliseconds(), 10),
			"backfill": strconv.FormatBool(mt.RoomID != ""),
		},
	})
}

// joinTeams writes teams of players as "a,b|c,d".
func joinTeams(teams [][]string) string {
	parts := make([]string, len(teams))
	for i, t := range teams {
		parts[i] = strings.Join(t, ",")
	}
	return strings.Join(parts, "|")
}

// roomRequestTimeout is how long a node may take to create a match's room
// and its seats; the node stops at it too, so no room outlives a request
// the matcher gave up on.
const roomRequestTimeout = 4 * time.Second

// room has a node create the match's room (or reserve seats in the room
// to backfill) with a seat per player, in the order of teams. A new room
// goes to the live node with the fewest connections (then rooms) that is
// not draining; when it cannot take it, the next one is tried.
func (m *matcher) room(q tandem.MatchQueue, roomID, matchID string, teams [][]string) (string, tandem.MatchRoom, error) {
	ctx, cancel := context.WithTimeout(m.ctx, busTimeout)
	defer cancel()
	players := 0
	for _, t := range teams {
		players += len(t)
	}
	req := tandem.MatchRoomRequest{
		MatchID: matchID, Queue: q.Name, RoomType: q.RoomType, RoomID: roomID, Teams: teams,
		TimeoutMS: roomRequestTimeout.Milliseconds(),
	}
	var nodes []string
	if roomID != "" {
		rooms, err := m.s.cfg.Cluster.Rooms(ctx)
		if err != nil {
			return "", tandem.MatchRoom{}, err
		}
		i := slices.IndexFunc(rooms, func(r tandem.RoomEntry) bool { return r.ID == roomID })
		if i < 0 {
			return "", tandem.MatchRoom{}, tandem.Errorf(tandem.ENotFound, "no room %q", roomID)
		}
		nodes = []string{rooms[i].Node}
	} else {
		live, err := m.s.cfg.Cluster.Nodes(ctx)
		if err != nil {
			return "", tandem.MatchRoom{}, err
		}
		live = slices.DeleteFunc(live, func(n tandem.NodeInfo) bool { return n.Draining })
		slices.SortStableFunc(live, func(a, b tandem.NodeInfo) int {
			return cmp.Or(cmp.Compare(a.Connections, b.Connections), cmp.Compare(a.Rooms, b.Rooms), cmp.Compare(a.ID, b.ID))
		})
		for _, n := range live[:min(len(live), 3)] {
			nodes = append(nodes, n.ID)
		}
	}
	var err error = tandem.Errorf(tandem.EUnavailable, "no realtime node takes rooms")
	for _, node := range nodes {
		rctx, rcancel := context.WithTimeout(m.ctx, roomRequestTimeout+time.Second)
		var room tandem.MatchRoom
		room, err = m.s.cfg.Bus.CreateMatchRoom(rctx, node, req)
		rcancel()
		switch {
		case err == nil && len(room.Seats) != players:
			err = tandem.Errorf(tandem.EInternal, "node %s reserved %d seats for %d players", node, len(room.Seats), players)
		case err == nil:
			return node, room, nil
		}
		if c := tandem.ErrorCodeOf(err); c != tandem.EUnavailable && c != tandem.ETimeout && c != tandem.EInternal {
			break // the node answered: the room type, say, is the problem, not the node
		}
	}
	return "", tandem.MatchRoom{}, err
}

// settle ends a match once its players took their seats (done), or lets it
// fall through: once a seat expired untaken, or a player gave up the seat,
// the late players' tickets expire and the others go back to the front of
// the queue, and a room made for the match is closed. A backfill match
// settles each ticket alone: its room goes on either way. Every write is
// re-decided on the ticket as it is when it changed meanwhile.
func (m *matcher) settle(q tandem.MatchQueue, ts []tandem.MatchTicket, now time.Time) {
	due := func(t tandem.MatchTicket) bool {
		return t.Seat != nil && now.After(t.Seat.ExpiresAt.Add(m.s.cfg.SeatGrace))
	}
	expire := func(t tandem.MatchTicket) tandem.MatchTicket {
		t.State, t.Reason, t.UpdatedAt = tandem.TicketExpired, "seat_expired", now
		return t
	}
	// A player whose seat looks untaken may be in the room all the same:
	// its node's report (seated) waits behind other work. The directory
	// says who is in the room.
	var inRoom map[string]bool
	present := func(t tandem.MatchTicket) bool {
		if inRoom == nil {
			inRoom = m.roomPlayers(t.Seat.RoomID)
		}
		return inRoom[t.PlayerID]
	}
	late := func(t tandem.MatchTicket) bool {
		return t.State == tandem.TicketMatched && due(t) && !present(t)
	}
	countExpired := func(t tandem.MatchTicket, ok bool) {
		if ok && t.State == tandem.TicketExpired {
			m.s.cfg.Metrics.ReservationsExpired.WithLabelValues(q.Name).Inc()
		}
	}
	forget := func(t tandem.MatchTicket) tandem.MatchTicket { // a cancelled ticket leaves its match
		t.MatchID, t.Seat, t.UpdatedAt = "", nil, now
		return t
	}
	if ts[0].Backfill {
		for _, t := range ts {
			countExpired(m.apply(t, func(t tandem.MatchTicket) (tandem.MatchTicket, bool) {
				switch {
				case t.State == tandem.TicketSeated:
					t.State, t.UpdatedAt = tandem.TicketDone, now
					return t, true
				case late(t):
					return expire(t), true
				case t.State == tandem.TicketCancelled:
					return forget(t), true
				}
				return t, false
			}))
		}
		return
	}
	seated, lateOnes, gaveUp := 0, 0, false
	for _, t := range ts {
		switch {
		case t.State == tandem.TicketSeated:
			seated++
		case t.State == tandem.TicketCancelled:
			gaveUp = true
		case late(t):
			lateOnes++
		}
	}
	if seated == len(ts) {
		for _, t := range ts {
			m.apply(t, func(t tandem.MatchTicket) (tandem.MatchTicket, bool) {
				if t.State != tandem.TicketSeated {
					return t, false // changed meanwhile: the next pass sees the match again
				}
				t.State, t.UpdatedAt = tandem.TicketDone, now
				return t, true
			})
		}
		return
	}
	if lateOnes == 0 && !gaveUp {
		return // players are on their way (or in the room, their report on its way)
	}
	var expired, returned []string
	for _, t := range ts {
		nt, ok := m.apply(t, func(t tandem.MatchTicket) (tandem.MatchTicket, bool) {
			switch {
			case t.State == tandem.TicketCancelled:
				return forget(t), true
			case late(t):
				return expire(t), true
			case t.State == tandem.TicketMatched, t.State == tandem.TicketSeated:
				return requeued(t, now), true
			}
			return t, false
		})
		countExpired(nt, ok)
		switch {
		case !ok:
		case nt.State == tandem.TicketExpired:
			expired = append(expired, t.PlayerID)
		case nt.State == tandem.TicketSearching:
			returned = append(returned, t.PlayerID)
		}
	}
	var room tandem.MatchSeat
	for _, t := range ts {
		if t.Seat != nil {
			room = *t.Seat
		}
	}
	if room.RoomID != "" {
		m.closeRoom(room.Node, room.RoomID, ts[0].MatchID, now)
	}
	m.s.cfg.Emit(tandem.Event{
		Kind:   tandem.EventMatchExpired,
		At:     now,
		RoomID: room.RoomID,
		Attrs: map[string]string{
			"queue": q.Name, "match": ts[0].MatchID,
			"expired": strings.Join(expired, ","), "returned": strings.Join(returned, ","),
		},
	})
}

// closeRoom closes the room made for a match that did not happen (its
// players get leave(room_closed)). The command's id is the match's, so
// sending it twice closes once.
func (m *matcher) closeRoom(node, roomID, matchID string, now time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), busTimeout)
	defer cancel()
	_, err := m.s.cfg.Cluster.SendCommand(ctx, tandem.Command{
		ID: "mm-close-" + matchID, Node: node, Kind: tandem.CommandCloseRoom, RoomID: roomID, CreatedAt: now,
	})
	if err != nil {
		m.s.log.Warn("matcher: close the room of a match that did not happen", "room", roomID, "err", err)
	}
}

// roomPlayers is who the directory says is in a room (none when it is
// gone or unreadable).
func (m *matcher) roomPlayers(roomID string) map[string]bool {
	ctx, cancel := context.WithTimeout(m.ctx, busTimeout)
	defer cancel()
	r, err := m.s.cfg.Cluster.Room(ctx, roomID)
	if err != nil {
		return map[string]bool{}
	}
	in := make(map[string]bool, len(r.Players))
	for _, p := range r.Players {
		in[p] = true
	}
	return in
}

// openRooms lists the rooms of q's matches that can take more players:
// rooms of its settled matches (none of their seats still on the way from
// the match that made them), not locked, not skipped after refusing a
// backfill; their members are the tickets seated or done in them, still in
// the room. Free seats are counted from the queue's shape and capped by
// the room's own limit.
func (m *matcher) openRooms(q tandem.MatchQueue, tickets []tandem.MatchTicket, now time.Time) []matchmaker.OpenRoom {
	ctx, cancel := context.WithTimeout(m.ctx, busTimeout)
	defer cancel()
	rooms, err := m.s.cfg.Cluster.Rooms(ctx)
	if err != nil {
		m.s.log.Warn("matcher: list rooms for backfill", "queue", q.Name, "err", err)
		return nil
	}
	byRoom := make(map[string][]tandem.MatchTicket)
	unsettled := make(map[string]bool)
	for _, t := range tickets {
		if t.Seat == nil {
			continue
		}
		switch t.State {
		case tandem.TicketMatched, tandem.TicketSeated:
			if !t.Backfill {
				unsettled[t.Seat.RoomID] = true
			}
			byRoom[t.Seat.RoomID] = append(byRoom[t.Seat.RoomID], t)
		case tandem.TicketDone:
			byRoom[t.Seat.RoomID] = append(byRoom[t.Seat.RoomID], t)
		}
	}
	m.mu.Lock()
	skip := maps.Clone(m.skipRooms)
	for id, until := range m.skipRooms {
		if !now.Before(until) {
			delete(m.skipRooms, id)
		}
	}
	m.mu.Unlock()
	var open []matchmaker.OpenRoom
	for _, r := range rooms {
		if r.Labels[LabelQueue] != q.Name || r.Locked || unsettled[r.ID] || now.Before(skip[r.ID]) {
			continue
		}
		present := make(map[string]bool, len(r.Players))
		for _, p := range r.Players {
			present[p] = true
		}
		var members []tandem.MatchTicket
		pending := 0
		for _, t := range byRoom[r.ID] {
			// A seat still on its way counts: it holds its place.
			if t.State == tandem.TicketMatched && !present[t.PlayerID] {
				pending++
				members = append(members, t)
			} else if present[t.PlayerID] {
				members = append(members, t)
			}
		}
		var free []int
		if q.Teams > 0 {
			free = make([]int, q.Teams)
			for i := range free {
				free[i] = q.TeamSize
			}
			for _, t := range members {
				if t.Team >= 0 && t.Team < q.Teams {
					free[t.Team]--
				}
			}
		} else {
			free = []int{q.MaxPlayers - len(r.Players) - pending}
		}
		// The room's own limit: players the tickets do not know of (joined
		// by id, or whose ticket is gone) take seats too.
		if r.MaxPlayers > 0 {
			room := r.MaxPlayers - len(r.Players) - pending
			total := 0
			for i := range free {
				free[i] = max(0, min(free[i], room))
				total += free[i]
			}
			for i := len(free) - 1; i >= 0 && total > room; i-- {
				cut := min(free[i], total-room)
				free[i] -= cut
				total -= cut
			}
		}
		if slices.ContainsFunc(free, func(n int) bool { return n > 0 }) {
			open = append(open, matchmaker.OpenRoom{ID: r.ID, Members: members, Free: free, CreatedAt: r.CreatedAt})
		}
	}
	return open
}

// The labels a match's room carries.
const (
	LabelQueue = "mm.queue"
	LabelMatch = "mm.match"
)
