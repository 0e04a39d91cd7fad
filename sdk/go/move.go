package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gobwas/ws"

	"github.com/tandemhq/tandem/protocol"
)

// A move: a Join answered with seat_reservation (the room lives on another
// node). The Join's goroutine connects to the node the reservation names
// with its seat token (follow); once that node answers connected, the move
// is committed and run takes the connection (adopt). The new connection
// carries a new session; the old one lives on beside it, served by a drain,
// until the old node closes it with `moved` after leaving its rooms with
// LEAVE_REASON_MOVED (or, when the old node does not, until the drain's time
// limit, when the client closes it). One Join moves the session at a time
// (moveSlot); another Join's reservation is then stale.

// handoff is the connection a move opened, on its way to run.
type handoff struct {
	wc   *wsConn
	env  *protocol.Envelope // its connected
	url  string
	done chan error // run's answer: nil once wc is the client's connection
}

// follow connects to the node a seat reservation names and hands the
// connection to run. sentOn is the session the Join was answered on. It
// reports false, without moving, when the reservation is stale: another
// Join is moving the session (follow waits until that move is over) or
// moved it since; the Join then asks again on the current session. A
// refusal by the node (the seat is gone) changes nothing: the old
// connection goes on.
func (c *Client) follow(ctx context.Context, sr *protocol.SeatReservation, sentOn *session) (bool, error) {
	url := sr.GetNodeUrl()
	if url == "" {
		return false, errors.New("tandem: seat reservation without a node URL")
	}
	select {
	case c.moveSlot <- struct{}{}:
	default:
		select {
		case c.moveSlot <- struct{}{}:
			<-c.moveSlot
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case <-c.done:
			return false, c.stopError()
		}
	}
	defer func() { <-c.moveSlot }()
	c.mu.Lock()
	if err := c.stopErr; err != nil {
		c.mu.Unlock()
		return false, err
	}
	if c.sess != sentOn {
		c.mu.Unlock()
		return false, nil
	}
	c.moving = true
	c.mu.Unlock()
	committed := false
	defer func() {
		if !committed {
			c.mu.Lock()
			c.moving = false
			c.mu.Unlock()
			select {
			case c.moveEnded <- struct{}{}:
			default:
			}
		}
	}()

	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	wc, env, err := c.handshake(hctx, url, false, sr.GetSeatToken())
	if err != nil {
		if c.ctx.Err() != nil {
			return false, ErrClosed
		}
		return false, err
	}
	// From here the move is done on the server's side: the old node ends
	// the old session. So the handoff no longer heeds the Join's context.
	h := &handoff{wc: wc, env: env, url: url, done: make(chan error, 1)}
	select {
	case c.moves <- h:
		committed = true // run counts it done
	case <-c.done:
		wc.nc.Close()
		return false, c.stopError()
	}
	return true, <-h.done
}

func (c *Client) stopError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopErr != nil {
		return c.stopErr
	}
	return ErrClosed
}

// awaitMove waits, after the old node closed the connection with `moved`,
// for the Join under way to hand over the new connection. It returns nil
// when no move is under way, or it failed.
func (c *Client) awaitMove() *handoff {
	for {
		c.mu.Lock()
		moving := c.moving
		c.mu.Unlock()
		if !moving {
			return nil
		}
		select {
		case h := <-c.moves:
			return h
		case <-c.moveEnded:
		case <-c.ctx.Done():
			return nil
		}
	}
}

// adopt makes the handed-over connection the client's, with a session of
// its own, and answers the Join that opened it. The old session is served
// on old (when it is still open) by a drain until the old node closes it,
// or ended at once. It returns the new connection, or nil when the client
// was closed meanwhile.
func (c *Client) adopt(h *handoff, old *wsConn, in *inbox) *wsConn {
	c.mu.Lock()
	c.moving = false
	prev := c.sess
	c.sess = newSession()
	c.url = h.url
	c.mu.Unlock()
	err := c.attach(h.wc, h.env)
	// The Join is answered before the old session's Left events, whose
	// delivery waits for the application to read Events.
	h.done <- err
	if err != nil || old == nil {
		if old != nil {
			in.close(old)
		}
		c.endMoved(prev)
	} else {
		c.drains.Add(1)
		go func() {
			defer c.drains.Done()
			c.drain(old, in, prev)
		}()
	}
	if err != nil {
		return nil
	}
	return h.wc
}

// drain serves the connection of a session that moved until the old node
// closes it (with `moved`, silent), the client is closed, or run ends the
// client. A node that does not end the session within the heartbeat
// timeout is sent a normal close, which ends it: the session must not live
// on beside the new one.
func (c *Client) drain(wc *wsConn, in *inbox, s *session) {
	defer c.endMoved(s)
	defer in.close(wc)
	limit := time.NewTimer(c.hbTimeout())
	defer limit.Stop()
	closing := false
	for {
		select {
		case <-limit.C:
			if closing {
				return // no close echo: in.close closes the connection
			}
			c.log.Debug("tandem: the old node did not end the moved session; closing it")
			closing = true
			c.wmu.Lock()
			_ = wc.writeControl(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""), closeWait)
			c.wmu.Unlock()
			limit.Reset(closeWait)
		case m := <-in.frames:
			if m.err != nil {
				if !isMoved(m.err) {
					c.log.Debug("tandem: the moved session's connection ended", "err", m.err)
				}
				return
			}
			c.dispatch(wc, m.env)
		case <-c.ctx.Done():
			return
		case <-c.quiet:
			return
		}
	}
}

// endMoved ends a session that moved to another node: a room the old node
// did not leave before its connection ended is left with MOVED all the
// same (Missed: its last frames may be lost), and its pending requests
// fail.
func (c *Client) endMoved(s *session) {
	c.mu.Lock()
	stopErr := c.stopErr
	var left []Event
	for _, id := range slices.Sorted(maps.Keys(s.rooms)) {
		r := s.rooms[id]
		s.leftRoom(r)
		left = append(left, &Left{Room: r, Reason: protocol.LeaveReason_LEAVE_REASON_MOVED, Missed: true, State: r.state})
	}
	pend := s.pending
	s.pending = map[uint64]*pending{}
	s.resend.reset()
	c.mu.Unlock()
	err := stopErr
	if err == nil {
		err = fmt.Errorf("%w: %w", ErrSessionLost, errMoved)
	}
	for _, p := range pend {
		p.resolve(reply{err: err})
	}
	if stopErr != nil {
		return
	}
	for _, ev := range left {
		c.emit(ev)
	}
}
