package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	gosdk "github.com/tandemhq/tandem/sdk/go"
)

// openSDKSessions dials n SDK bots, at most Concurrency at once, in no
// room; setup prepares each bot before it dials.
func (r *runner) openSDKSessions(ctx context.Context, n int, setup func(*sdkBot)) *sdkOpened {
	all := make([]*sdkBot, n)
	for i := range all {
		all[i] = r.newSDKBot(i, setup)
	}
	ok, st := r.openEach(ctx, n, func(ctx context.Context, i int) error { return all[i].dial(ctx) })
	o := &sdkOpened{openStats: st, all: all}
	o.bots, _ = grouped(all, ok, n)
	return o
}

// sdkEvent is an SDK player's handler: it passes on the ended statuses of
// its tickets (done, cancelled, expired) and the rooms it left.
func (m *mmRun) sdkEvent(b *sdkBot, ev gosdk.Event) {
	switch e := ev.(type) {
	case *gosdk.TicketUpdate:
		if e.Status.Queue != m.r.cfg.Queue || !e.Status.Ended() {
			return
		}
	case *gosdk.Left:
	default:
		return
	}
	select {
	case b.mm <- ev:
	default:
	}
}

// sdkPlayer runs one SDK player's loop until the run's end.
func (m *mmRun) sdkPlayer(ctx context.Context, b *sdkBot) error {
	for ctx.Err() == nil && time.Now().Before(m.end) {
		if err := m.sdkCycle(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// sdkCycle is one ticket of an SDK player: Matchmake (the ticket, and the
// seated join it makes on a match), then the match done and the room left.
// A ticket that ends otherwise ends the cycle. At the run's end a ticket
// still searching is cancelled (Matchmake does it); one claimed or matched
// goes on to its seat, as the other players of its match count on it.
func (m *mmRun) sdkCycle(ctx context.Context, b *sdkBot) error {
	// Ended statuses and leaves of earlier cycles nobody waited for: gone,
	// so that b.mm has room for this cycle's.
	for drained := false; !drained; {
		select {
		case <-b.mm:
		default:
			drained = true
		}
	}
	queue := m.r.cfg.Queue
	searchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var inMatch atomic.Bool // claimed or matched
	endSearch := func() {
		if !inMatch.Load() {
			cancel()
		}
	}
	stop := time.AfterFunc(time.Until(m.end), endSearch)
	defer stop.Stop()
	t0 := time.Now()
	var matchID string
	matched, seen := false, false
	b.out.Add(1)
	room, err := b.c.Matchmake(searchCtx, gosdk.TicketRequest{Queue: queue, Progress: func(ts gosdk.TicketStatus) {
		seen = true
		switch ts.State {
		case gosdk.TicketClaimed:
			inMatch.Store(true)
		case gosdk.TicketMatched:
			inMatch.Store(true)
			if !matched {
				matched, matchID = true, ts.MatchID
				m.toMatch.Record(time.Since(t0))
			}
		case gosdk.TicketSearching:
			// A claim released or a match that fell through: the
			// ticket waits again.
			inMatch.Store(false)
			matched = false
			if time.Now().After(m.end) {
				endSearch()
			}
		}
	}})
	var ended *gosdk.TicketEndedError
	switch {
	case errors.As(err, &ended):
		m.outcomes.add(ended.Status.State + " (" + ended.Status.Reason + ")")
		return nil
	case err != nil && searchCtx.Err() != nil:
		return nil // the run is over while the ticket searches
	case !seen && errors.Is(err, &gosdk.ServerError{Code: gosdk.CodeNotFound}):
		return &queueError{queue, err} // the ticket was refused: the node does not know the queue
	case err != nil:
		return fmt.Errorf("%s: matchmake in queue %q: %w", b.player, queue, err)
	}
	m.toSeat.Record(time.Since(t0))
	wait := time.NewTimer(matchWait)
	defer wait.Stop()
	for {
		select {
		case ev := <-b.mm:
			switch e := ev.(type) {
			case *gosdk.TicketUpdate:
				if e.Status.MatchID != matchID {
					continue // an earlier ticket's
				}
				if e.Status.State == gosdk.TicketDone {
					m.finished(matchID)
				} else {
					m.outcomes.add(e.Status.State + " (" + e.Status.Reason + ")")
				}
				return m.sdkLeave(ctx, b, room)
			case *gosdk.Left:
				if e.Room != room {
					continue // an earlier match's room
				}
				// The match fell through (a seat was not taken): the node
				// closed its room and put the ticket back in the queue.
				m.outcomes.add("match fell through (" + e.Reason.String() + ")")
				return m.sdkCancel(ctx, b)
			}
		case <-wait.C:
			return fmt.Errorf("%s: match %s not done within %s of the seat", b.player, matchID, matchWait)
		case <-ctx.Done():
			return nil
		}
	}
}

// sdkLeave leaves the match's room.
func (m *mmRun) sdkLeave(ctx context.Context, b *sdkBot, room *gosdk.Room) error {
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	b.out.Add(1)
	if err := room.Leave(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: leave: %w", b.player, err)
	}
	return nil
}

// sdkCancel takes the player's ticket, back in the queue after its match
// fell through, out of it, so that the next cycle can queue again. A
// ticket being claimed answers conflict for a moment: it is asked again.
func (m *mmRun) sdkCancel(ctx context.Context, b *sdkBot) error {
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	for {
		b.out.Add(1)
		_, err := b.c.CancelTicket(ctx, m.r.cfg.Queue)
		switch {
		case err == nil, errors.Is(err, &gosdk.ServerError{Code: gosdk.CodeNotFound}):
			return nil
		case ctx.Err() != nil:
			return nil // the run is over
		case !errors.Is(err, &gosdk.ServerError{Code: gosdk.CodeConflict}):
			return fmt.Errorf("%s: cancel the ticket of a match that fell through: %w", b.player, err)
		}
		if !sleep(ctx, 50*time.Millisecond) { // a claim lasts a matcher's pass
			return nil
		}
	}
}
