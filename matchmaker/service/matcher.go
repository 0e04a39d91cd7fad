package service

import (
	"cmp"
	"context"
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
}

func newMatcher(s *Service, q tandem.MatchQueue) *matcher {
	ctx, cancel := context.WithCancel(s.ctx)
	return &matcher{s: s, ctx: ctx, cancel: cancel, q: q, tickets: make(map[string]tandem.MatchTicket)}
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

// store records the matcher's own write.
func (m *matcher) store(t tandem.MatchTicket) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.tickets[t.PlayerID]; !ok || cur.Revision <= t.Revision {
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
		case t.State == tandem.TicketCancelled && t.MatchID != "":
			// A player who gave up a seat: its match falls through.
			matches[t.MatchID] = append(matches[t.MatchID], t)
		case t.State.Ended() && t.State != tandem.TicketDone && now.Sub(t.UpdatedAt) >= m.s.cfg.Ended:
			m.delete(t)
		}
	}
	m.s.cfg.Metrics.QueueDepth.WithLabelValues(q.Name).Set(float64(len(searching)))
	for _, id := range sortedKeys(matches) {
		m.settle(q, matches[id], now)
	}
	if len(searching) > 0 {
		var open []matchmaker.OpenRoom
		if q.Backfill {
			open = m.openRooms(q, tickets)
		}
		// The matches share no ticket: they are committed side by side,
		// a bounded number at a time (each is a few bus round trips).
		var wg sync.WaitGroup
		slots := make(chan struct{}, commitsInFlight)
		for _, mt := range matchmaker.Run(q, now, searching, open) {
			if m.ctx.Err() != nil {
				break
			}
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				m.commit(q, mt, now)
			})
		}
		wg.Wait()
	}
	m.s.cfg.Metrics.MatcherTick.WithLabelValues(q.Name).Observe(time.Since(start).Seconds())
}

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

// update writes t over the revision it was read at.
func (m *matcher) update(t tandem.MatchTicket) (tandem.MatchTicket, error) {
	ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
	defer cancel()
	nt, err := m.s.cfg.Bus.UpdateTicket(ctx, t)
	if err != nil {
		if c := tandem.ErrorCodeOf(err); c != tandem.EConflict && c != tandem.ENotFound && m.ctx.Err() == nil {
			m.s.log.Warn("matcher: update ticket", "queue", t.Queue, "player", t.PlayerID, "err", err)
		}
		return t, err
	}
	m.store(nt)
	return nt, nil
}

func (m *matcher) end(t tandem.MatchTicket, state tandem.TicketState, reason string, now time.Time) {
	t.State, t.Reason, t.UpdatedAt = state, reason, now
	_, _ = m.update(t)
}

// requeue puts t back to searching, at its old place in the queue.
func (m *matcher) requeue(t tandem.MatchTicket, now time.Time) {
	t.State, t.MatchID, t.Team, t.Backfill, t.Seat, t.UpdatedAt = tandem.TicketSearching, "", 0, false, nil, now
	t.ClaimedAt = time.Time{}
	_, _ = m.update(t)
}

func (m *matcher) delete(t tandem.MatchTicket) {
	ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
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
			t.State, t.MatchID, t.ClaimedAt, t.Team, t.Backfill, t.UpdatedAt = tandem.TicketClaimed, id, now, team, mt.RoomID != "", now
			nt, err := m.update(t)
			if err != nil {
				release()
				return
			}
			taken = append(taken, nt)
			teams[team] = append(teams[team], t.PlayerID)
		}
	}
	node, err := m.nodeFor(mt.RoomID)
	var room tandem.MatchRoom
	if err == nil {
		ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
		room, err = m.s.cfg.Bus.CreateMatchRoom(ctx, node, tandem.MatchRoomRequest{
			MatchID: id, Queue: q.Name, RoomType: q.RoomType, RoomID: mt.RoomID, Teams: teams,
		})
		cancel()
	}
	if err == nil && len(room.Seats) != len(taken) {
		err = tandem.Errorf(tandem.EInternal, "node %s reserved %d seats for %d players", node, len(room.Seats), len(taken))
	}
	if err != nil {
		if m.ctx.Err() == nil {
			m.s.log.Warn("matcher: no room for a match", "queue", q.Name, "node", node, "err", err)
		}
		release()
		return
	}
	var wait time.Duration
	for i, t := range taken {
		s := room.Seats[i]
		t.State, t.UpdatedAt = tandem.TicketMatched, now
		t.Seat = &tandem.MatchSeat{RoomID: room.RoomID, Node: s.Node, NodeURL: s.NodeURL, Token: s.Token, ExpiresAt: s.ExpiresAt}
		// A ticket whose seat cannot be written stays claimed: the claim
		// timeout puts it back, and its match falls through without it.
		_, _ = m.update(t)
		w := now.Sub(t.CreatedAt)
		wait = max(wait, w)
		m.s.cfg.Metrics.TimeToMatch.WithLabelValues(q.Name).Observe(w.Seconds())
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
			"players":  joinTeams(teams),
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

// nodeFor picks the node of a match's room: the backfilled room's own, or
// the live node with the fewest connections (then rooms) that is not
// draining.
func (m *matcher) nodeFor(roomID string) (string, error) {
	ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
	defer cancel()
	if roomID != "" {
		rooms, err := m.s.cfg.Cluster.Rooms(ctx)
		if err != nil {
			return "", err
		}
		for _, r := range rooms {
			if r.ID == roomID {
				return r.Node, nil
			}
		}
		return "", tandem.Errorf(tandem.ENotFound, "no room %q", roomID)
	}
	nodes, err := m.s.cfg.Cluster.Nodes(ctx)
	if err != nil {
		return "", err
	}
	best := -1
	for i, n := range nodes {
		if n.Draining {
			continue
		}
		if best < 0 || n.Connections < nodes[best].Connections ||
			n.Connections == nodes[best].Connections && n.Rooms < nodes[best].Rooms {
			best = i
		}
	}
	if best < 0 {
		return "", tandem.Errorf(tandem.EUnavailable, "no realtime node takes rooms")
	}
	return nodes[best].ID, nil
}

// settle ends a match once its players took their seats (done), or lets it
// fall through: once a seat expired untaken, or a player gave up the seat,
// the late players' tickets expire and the others go back to the front of
// the queue, and a room made for the match is closed. A backfill match
// settles each ticket alone: its room goes on either way.
func (m *matcher) settle(q tandem.MatchQueue, ts []tandem.MatchTicket, now time.Time) {
	due := func(t tandem.MatchTicket) bool {
		return t.Seat != nil && now.After(t.Seat.ExpiresAt.Add(m.s.cfg.SeatGrace))
	}
	if ts[0].Backfill {
		for _, t := range ts {
			switch {
			case t.State == tandem.TicketSeated:
				m.end(t, tandem.TicketDone, "", now)
			case t.State == tandem.TicketMatched && due(t):
				m.s.cfg.Metrics.ReservationsExpired.WithLabelValues(q.Name).Inc()
				m.end(t, tandem.TicketExpired, "seat_expired", now)
			}
		}
		return
	}
	seated, late, gaveUp := 0, 0, false
	for _, t := range ts {
		switch {
		case t.State == tandem.TicketSeated:
			seated++
		case t.State == tandem.TicketCancelled:
			gaveUp = true
		case due(t):
			late++
		}
	}
	if seated == len(ts) {
		for _, t := range ts {
			m.end(t, tandem.TicketDone, "", now)
		}
		return
	}
	if late == 0 && !gaveUp {
		return // players are on their way
	}
	var expired, returned []string
	for _, t := range ts {
		switch {
		case t.State == tandem.TicketCancelled:
			t.MatchID, t.Seat = "", nil
			_, _ = m.update(t)
		case t.State == tandem.TicketMatched && due(t):
			m.s.cfg.Metrics.ReservationsExpired.WithLabelValues(q.Name).Inc()
			m.end(t, tandem.TicketExpired, "seat_expired", now)
			expired = append(expired, t.PlayerID)
		default:
			m.requeue(t, now)
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
		ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
		_, err := m.s.cfg.Cluster.SendCommand(ctx, tandem.Command{
			ID: "mm-close-" + ts[0].MatchID, Node: room.Node, Kind: tandem.CommandCloseRoom, RoomID: room.RoomID, CreatedAt: now,
		})
		cancel()
		if err != nil && m.ctx.Err() == nil {
			m.s.log.Warn("matcher: close the room of a match that fell through", "room", room.RoomID, "err", err)
		}
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

// openRooms lists the rooms of q's matches that can take more players:
// their members are the tickets seated or done in them, still in the room.
func (m *matcher) openRooms(q tandem.MatchQueue, tickets []tandem.MatchTicket) []matchmaker.OpenRoom {
	ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
	defer cancel()
	rooms, err := m.s.cfg.Cluster.Rooms(ctx)
	if err != nil {
		m.s.log.Warn("matcher: list rooms for backfill", "queue", q.Name, "err", err)
		return nil
	}
	byRoom := make(map[string][]tandem.MatchTicket)
	for _, t := range tickets {
		if t.Seat != nil && (t.State == tandem.TicketSeated || t.State == tandem.TicketDone || t.State == tandem.TicketMatched) {
			byRoom[t.Seat.RoomID] = append(byRoom[t.Seat.RoomID], t)
		}
	}
	var open []matchmaker.OpenRoom
	for _, r := range rooms {
		if r.Labels[LabelQueue] != q.Name || r.Locked {
			continue
		}
		present := make(map[string]bool, len(r.Players))
		for _, p := range r.Players {
			present[p] = true
		}
		var members []tandem.MatchTicket
		for _, t := range byRoom[r.ID] {
			// A seat still on its way counts: it holds its place.
			if present[t.PlayerID] || t.State == tandem.TicketMatched {
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
			taken := len(r.Players)
			for _, t := range members {
				if !present[t.PlayerID] {
					taken++
				}
			}
			free = []int{q.MaxPlayers - taken}
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
