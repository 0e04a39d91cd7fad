package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
	gosdk "github.com/tandemhq/tandem/sdk/go"
)

// matchWait bounds the wait of a matched player for its seat's join and
// its match's end (done): the other players of the match join at once.
const matchWait = 30 * time.Second

// mmRun is the state the matchmaking players share.
type mmRun struct {
	r        *runner
	end      time.Time // no new ticket after it; a player still searching stops
	toMatch  Histogram // ticket_create sent → matched received
	toSeat   Histogram // ticket_create sent → joined received
	cycles   atomic.Int64
	outcomes tally // tickets that ended other than done, by state and reason

	mu      sync.Mutex
	matches map[string]struct{} // ids of the matches a player finished
}

// matchmaking runs Clients players that, in a loop, put a ticket in Queue,
// take the seat of their match (a seated join on their own node, as the Go
// SDK does), wait until the match is done (every player seated) and leave
// the room. Matches per second count the matches whose players finished;
// time to match runs from the ticket_create to the matched status.
func (r *runner) matchmaking(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	rep := r.newReport(fmt.Sprintf("%d players in a loop: ticket in queue %q, seated join, done, leave; %s", cfg.Clients, cfg.Queue, cfg.Duration))
	r.logf("connecting %d players", cfg.Clients)
	m := &mmRun{r: r, matches: make(map[string]struct{})}
	var o *openStats
	var players []func(ctx context.Context) error
	if r.sdk() {
		so := r.openSDKSessions(ctx, cfg.Clients, func(b *sdkBot) {
			b.on, b.mm = m.sdkEvent, make(chan gosdk.Event, 16)
		})
		defer closeSDK(so.all)
		o = &so.openStats
		for _, b := range so.bots {
			players = append(players, func(ctx context.Context) error { return m.sdkPlayer(ctx, b) })
		}
	} else {
		ro := r.openSessions(ctx, cfg.Clients)
		defer closeAll(ro.clients, nil)
		o = &ro.openStats
		for _, c := range ro.clients {
			players = append(players, func(ctx context.Context) error { return m.player(ctx, c) })
		}
	}
	if len(players) == 0 {
		return nil, fmt.Errorf("no player connected: %w", o.firstErr)
	}
	m.end = time.Now().Add(cfg.Duration)
	r.setStatus(func() string {
		m.mu.Lock()
		defer m.mu.Unlock()
		return fmt.Sprintf("%d matches, %d players seated", len(m.matches), m.cycles.Load())
	})
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u := r.startUsage()
	var wg sync.WaitGroup
	var failMu sync.Mutex
	var failed []error
	for _, player := range players {
		wg.Go(func() {
			if err := player(ctx); err != nil {
				var qe *queueError
				if errors.As(err, &qe) {
					cancel(err) // an unknown queue: nobody will do better
				}
				failMu.Lock()
				failed = append(failed, err)
				failMu.Unlock()
			}
		})
	}
	wg.Wait()
	p := u.stop()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	if len(failed) == len(players) {
		return nil, fmt.Errorf("every player failed; first: %w", failed[0])
	}

	m.mu.Lock()
	matches := len(m.matches)
	m.mu.Unlock()
	rep.info("matches", float64(matches)/p.wall.Seconds(), UnitPerSecond)
	rep.info("players seated", float64(m.cycles.Load())/p.wall.Seconds(), UnitPerSecond)
	rep.info("matches finished", float64(matches), UnitCount)
	rep.latency("ticket → matched", &m.toMatch, 0, 0)
	rep.latency("ticket → joined", &m.toSeat, 0, 0)
	rep.usageMeasures(p, 0)
	if oc := m.outcomes.counts(); len(oc) > 0 {
		rep.note("tickets that ended without a match done: %s", formatCounts(oc))
	}
	if len(failed) > 0 {
		rep.note("%d players failed; first error: %v", len(failed), hint(failed[0]))
	}
	rep.noteFailures(o, nil)
	if r.sdk() {
		r.noteSDK(rep)
	}
	return rep, nil
}

// queueError is a ticket refused because the node does not know the queue.
type queueError struct {
	queue string
	err   error
}

func (e *queueError) Error() string {
	return fmt.Sprintf("queue %q: the node does not know it (%v); the operator creates it first (admin console, Matchmaking, or PUT /api/admin/v1/matchmaking/queues/%s), then give its name with --queue", e.queue, e.err, e.queue)
}

func (e *queueError) Unwrap() error { return e.err }

// openSessions dials and connects n players, at most Concurrency at once,
// in no room.
func (r *runner) openSessions(ctx context.Context, n int) *opened {
	all := make([]*client, n)
	for i := range all {
		all[i] = r.newClient(i)
	}
	ok, st := r.openEach(ctx, n, func(ctx context.Context, i int) error {
		c := all[i]
		err := c.dial(ctx)
		if err == nil {
			if _, err = c.connect(r.tokens[i], "", nil); err != nil {
				c.nc.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.player, err)
		}
		return nil
	})
	res := &opened{openStats: st}
	res.clients, _ = grouped(all, ok, n)
	return res
}

// openEach opens bots 0…n-1 with open, at most Concurrency at once; ok says
// which made it.
func (r *runner) openEach(ctx context.Context, n int, open func(ctx context.Context, i int) error) (ok []bool, res openStats) {
	res.latency = new(Histogram)
	ok = make([]bool, n)
	var mu sync.Mutex
	sem := make(chan struct{}, r.cfg.Concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			t0 := time.Now()
			if err := open(ctx, i); err != nil {
				mu.Lock()
				res.failed++
				if res.firstErr == nil {
					res.firstErr = err
				}
				mu.Unlock()
				return
			}
			res.latency.Record(time.Since(t0))
			ok[i] = true
		})
	}
	wg.Wait()
	res.took = time.Since(start)
	if err := ctx.Err(); err != nil && res.firstErr == nil {
		res.firstErr = err
	}
	return ok, res
}

// player runs one player's loop until the run's end.
func (m *mmRun) player(ctx context.Context, c *client) error {
	for ctx.Err() == nil && time.Now().Before(m.end) {
		if err := m.cycle(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// cycle is one ticket of a player: created, matched, the seat taken, done,
// the room left. A ticket that ends otherwise (expired, cancelled by the
// server) ends the cycle too; one still searching at the run's end is left
// to the server, which cancels it when the session closes.
func (m *mmRun) cycle(ctx context.Context, c *client) error {
	queue := m.r.cfg.Queue
	c.cid++
	createCid := c.cid
	t0 := time.Now()
	if err := c.reliable(&protocol.Envelope{Cid: createCid, Body: &protocol.Envelope_TicketCreate{TicketCreate: &protocol.TicketCreate{Queue: queue}}}); err != nil {
		return err
	}
	var (
		ticketID  string
		matched   bool
		joinCid   uint64
		joined    bool
		seatedAt  time.Time
		matchID   string
		createdOK bool
		doneEarly bool // done came before the answer to the join
	)
	for {
		deadline := m.end
		if matched {
			deadline = seatedAt.Add(matchWait)
		}
		if !createdOK {
			deadline = time.Now().Add(ioTimeout)
		}
		v, err := c.nextBefore(deadline)
		if err != nil {
			if !matched && createdOK && time.Now().After(m.end) || ctx.Err() != nil {
				return nil // the run is over while the ticket searches
			}
			return fmt.Errorf("%s: %w", c.player, err)
		}
		c.track(v)
		switch {
		case v.kind == kindError && v.cid == createCid:
			err := replyError(v, c.codec)
			var se *serverError
			if errors.As(err, &se) && se.code == tandem.ENotFound {
				return &queueError{queue, err}
			}
			return fmt.Errorf("ticket_create in queue %q: %w", queue, err)
		case v.kind == kindError && joinCid != 0 && v.cid == joinCid:
			// The seat could not be taken: the server requeues the ticket
			// or ends it, and says so in a status.
			matched, joinCid = false, 0
		case v.kind == kindJoined && joinCid != 0 && v.cid == joinCid:
			env, err := v.decode(c.codec)
			if err != nil {
				return err
			}
			j := env.GetJoined()
			c.roomID, c.epoch, c.roomSeq = j.GetRoomId(), j.GetEpoch(), j.GetSeq()
			joined = true
			m.toSeat.Record(time.Since(t0))
			if doneEarly {
				m.finished(matchID)
				return m.leave(c, joined)
			}
		case v.kind == kindLeave:
			joined = false
			c.roomID = ""
		case v.kind == kindTicket:
			env, err := v.decode(c.codec)
			if err != nil {
				return err
			}
			ts := env.GetTicketStatus()
			if v.cid == createCid {
				createdOK, ticketID = true, ts.GetTicketId()
			} else if v.cid != 0 || ticketID != "" && ts.GetTicketId() != "" && ts.GetTicketId() != ticketID {
				continue
			}
			switch ts.GetState() {
			case "matched":
				if matched || ts.GetSeat().GetSeatToken() == "" {
					continue
				}
				sr := ts.GetSeat()
				if sr.GetNode() != "" && c.node != "" && sr.GetNode() != c.node {
					// The bots take seats on the node they are connected to
					// only: against several nodes, point --url at one and
					// the matches made elsewhere are counted, not played.
					m.outcomes.add("seat on another node (given up)")
					c.cid++
					if err := c.reliable(&protocol.Envelope{Cid: c.cid, Body: &protocol.Envelope_TicketCancel{
						TicketCancel: &protocol.TicketCancel{Queue: queue},
					}}); err != nil {
						return err
					}
					return m.leave(c, false)
				}
				matched, seatedAt, matchID = true, time.Now(), ts.GetMatchId()
				m.toMatch.Record(time.Since(t0))
				c.cid++
				joinCid = c.cid
				if err := c.reliable(&protocol.Envelope{Cid: joinCid, Body: &protocol.Envelope_Join{Join: &protocol.Join{
					Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomId: sr.GetRoomId(), SeatToken: sr.GetSeatToken(),
				}}}); err != nil {
					return err
				}
			case "searching":
				matched, joinCid = false, 0 // a match that fell through: the ticket waits again
			case "done":
				if !joined && joinCid != 0 {
					doneEarly = true // the joined answer is on its way
					continue
				}
				if joined {
					m.finished(matchID)
				}
				return m.leave(c, joined)
			case "cancelled", "expired":
				m.outcomes.add(ts.GetState() + " (" + ts.GetReason() + ")")
				return m.leave(c, joined)
			}
		}
	}
}

func (m *mmRun) finished(matchID string) {
	m.cycles.Add(1)
	m.mu.Lock()
	m.matches[matchID] = struct{}{}
	m.mu.Unlock()
}

// leave leaves the match's room, if the player is in it, and acknowledges
// the session stream so far: the server frees what it kept for a resume.
func (m *mmRun) leave(c *client, joined bool) error {
	if joined && c.roomID != "" {
		c.cid++
		cid := c.cid
		if err := c.reliable(&protocol.Envelope{Cid: cid, Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{RoomId: c.roomID}}}); err != nil {
			return err
		}
		deadline := time.Now().Add(ioTimeout)
		for {
			v, err := c.nextBefore(deadline)
			if err != nil {
				return fmt.Errorf("%s: leave: %w", c.player, err)
			}
			c.track(v)
			if v.kind == kindLeave || v.kind == kindError && v.cid == cid {
				break
			}
		}
		c.roomID = ""
	}
	return c.ack()
}
