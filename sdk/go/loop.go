package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tandemhq/tandem/protocol"
)

// handshake opens a connection and sends connect: with the resume token and
// positions when resume is set, as a new session otherwise. It returns the
// connection and the connected envelope.
func (c *Client) handshake(ctx context.Context, resume bool) (*wsConn, *protocol.Envelope, error) {
	timeout := c.hbTimeout()
	token, err := c.cfg.Token(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("tandem: token: %w", err)
	}
	var hello *protocol.Envelope
	c.mu.Lock()
	if resume {
		hello = connectFrame(token, c.resumeToken, c.streams.positions(), c.cfg.SDK)
	} else {
		hello = connectFrame(token, "", nil, c.cfg.SDK)
	}
	c.mu.Unlock()
	payload, err := c.codec.Marshal(nil, hello)
	if err != nil {
		return nil, nil, fmt.Errorf("tandem: encode: %w", err)
	}

	wc, err := dialWS(ctx, &c.cfg, c.codec, timeout)
	if err != nil {
		return nil, nil, err
	}
	interrupt := context.AfterFunc(ctx, func() { wc.nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*wsConn, *protocol.Envelope, error) {
		interrupt()
		wc.nc.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, err
	}
	if err := wc.writeFrame(payload, timeout); err != nil {
		return fail(fmt.Errorf("tandem: send connect: %w", err))
	}
	deadline := time.Now().Add(timeout)
	control := c.control(wc)
	var serverErr *ServerError
	for {
		env := new(protocol.Envelope)
		err := wc.readEnvelope(env, time.Until(deadline), control)
		var de *decodeError
		switch {
		case errors.As(err, &de):
			c.log.Warn("tandem: undecodable frame skipped", "err", err)
			continue
		case err != nil:
			var ce *CloseError
			if errors.As(err, &ce) {
				ce.Server = serverErr
				return fail(ce)
			}
			if serverErr != nil {
				return fail(fmt.Errorf("%w (then %w)", serverErr, err))
			}
			return fail(fmt.Errorf("tandem: waiting for connected: %w", err))
		}
		switch b := env.GetBody().(type) {
		case *protocol.Envelope_Connected:
			if !interrupt() {
				return fail(ctx.Err())
			}
			return wc, env, nil
		case *protocol.Envelope_Error:
			serverErr = newServerError(b.Error)
		default:
			c.log.Debug("tandem: frame before connected ignored", "body", fmt.Sprintf("%T", b))
		}
	}
}

// attach makes wc the client's connection after connected: it records the
// session, drops the frames the server acknowledged, and then — before any
// other frame can be written — sends ack_frame with the positions (which
// also confirms the new resume token) and resends the unacknowledged
// reliable frames in order.
func (c *Client) attach(wc *wsConn, env *protocol.Envelope) error {
	cd := env.GetConnected()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if err := c.stopErr; err != nil {
		c.mu.Unlock()
		wc.nc.Close()
		return err
	}
	c.sessionID, c.playerID, c.resumeToken = cd.GetSessionId(), cd.GetPlayerId(), cd.GetResumeToken()
	if hb := cd.GetHeartbeatMs(); hb > 0 {
		c.heartbeat.Store(int64(time.Duration(hb) * time.Millisecond))
	}
	c.seatHold = time.Duration(cd.GetSeatHoldMs()) * time.Millisecond
	c.maxFrame = int(cd.GetMaxFrameBytes())
	c.resend.trim(env.GetAck())
	frames := c.resend.pending()
	ack := ackFrame(c.streams.positions())
	c.streams.dirty = false
	c.conn = wc
	c.mu.Unlock()

	payload, err := c.codec.Marshal(nil, ack)
	if err != nil {
		wc.nc.Close()
		return nil // the reader fails and the loop reconnects
	}
	c.writeLocked(wc, payload)
	for _, f := range frames {
		c.writeLocked(wc, f.payload)
	}
	return nil
}

// run owns the connection: it serves it, and when it ends, reconnects —
// resuming, or starting a new session — or stops.
func (c *Client) run(wc *wsConn) {
	defer close(c.done)
	defer close(c.events)
	var (
		lost    *SessionLost // session lost, reported once a new session is up
		endedAt time.Time    // when the last connection ended
		attempt int
	)
	for {
		if wc != nil {
			err := c.serve(wc)
			wc = nil
			if c.ctx.Err() != nil {
				c.stop(ErrClosed)
				return
			}
			endedAt, attempt = time.Now(), 0
			c.log.Debug("tandem: connection lost", "err", err, "class", classOf(err))
			switch classOf(err) {
			case protocol.ClassFinal:
				c.finish(err)
				return
			case protocol.ClassRejoin:
				c.emit(&Disconnected{Err: err})
				lost = c.loseSession(err)
			default:
				c.emit(&Disconnected{Err: err})
			}
		}

		if !c.sleep(backoff(attempt, c.cfg.MinBackoff, c.cfg.MaxBackoff, nil)) {
			c.stop(ErrClosed)
			return
		}
		attempt++
		resume := lost == nil
		if resume && c.seatHoldOver(endedAt) {
			lost = c.loseSession(errSeatHoldOver)
			resume = false
		}
		next, env, err := c.handshake(c.ctx, resume)
		if err != nil {
			if c.ctx.Err() != nil {
				c.stop(ErrClosed)
				return
			}
			c.log.Debug("tandem: reconnect failed", "err", err, "resume", resume, "attempt", attempt)
			switch classOf(err) {
			case protocol.ClassFinal:
				c.finish(err)
				return
			case protocol.ClassRejoin:
				if lost == nil {
					lost = c.loseSession(err)
				}
			}
			continue
		}
		if resume && !env.GetConnected().GetResumed() {
			lost = c.loseSession(errNotResumed)
		}
		if err := c.attach(next, env); err != nil {
			c.stop(err)
			return
		}
		wc, attempt = next, 0
		if lost != nil {
			c.emit(lost)
			lost = nil
		} else {
			c.emit(&Resumed{})
		}
	}
}

// sleep waits d, or until Close.
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// seatHoldOver reports whether the seat hold of the session has run out
// since endedAt: resuming cannot succeed.
func (c *Client) seatHoldOver(endedAt time.Time) bool {
	c.mu.Lock()
	hold := c.seatHold
	c.mu.Unlock()
	return hold > 0 && time.Since(endedAt) > hold
}

// emit delivers ev to the application, blocking until it is read or the
// client is closed.
func (c *Client) emit(ev Event) {
	select {
	case c.events <- ev:
	case <-c.ctx.Done():
	}
}

// loseSession forgets the session: its rooms, positions, client seq, resend
// buffer and resume token; pending requests fail with ErrSessionLost. The
// next connect starts a new session.
func (c *Client) loseSession(cause error) *SessionLost {
	lerr := lostError(cause)
	c.mu.Lock()
	ids := slices.Sorted(maps.Keys(c.rooms))
	for _, r := range c.rooms {
		r.gone(lerr)
	}
	c.rooms = map[string]*Room{}
	c.streams.reset()
	c.seq = 0
	c.resend.reset()
	c.resumeToken = ""
	pend := c.pending
	c.pending = map[uint64]*pending{}
	c.mu.Unlock()
	for _, p := range pend {
		p.resolve(reply{err: lerr})
	}
	return &SessionLost{Rooms: ids, Err: cause}
}

// stop ends the client: requests and sends fail with err from now on.
func (c *Client) stop(err error) {
	c.mu.Lock()
	if c.stopErr == nil {
		c.stopErr = err
	}
	err = c.stopErr
	for _, r := range c.rooms {
		r.gone(err)
	}
	c.rooms = map[string]*Room{}
	c.resend.reset()
	pend := c.pending
	c.pending = map[uint64]*pending{}
	c.mu.Unlock()
	for _, p := range pend {
		p.resolve(reply{err: err})
	}
}

// finish ends the client after a final close: Closed{err}, except for the
// silent `moved`.
func (c *Client) finish(err error) {
	c.stop(err)
	if !isMoved(err) {
		c.emit(&Closed{Err: err})
	}
}

// serve reads wc until it fails, dispatching every frame; a keepalive
// goroutine sends pings and acks meanwhile. After Close it only drains
// (until the server's close echo, or Close gives up and closes wc).
func (c *Client) serve(wc *wsConn) error {
	stop := make(chan struct{})
	kaDone := make(chan struct{})
	go func() {
		defer close(kaDone)
		c.keepalive(wc, stop)
	}()
	defer func() {
		close(stop)
		wc.nc.Close()
		<-kaDone
		c.mu.Lock()
		if c.conn == wc {
			c.conn = nil
		}
		c.mu.Unlock()
	}()
	control := c.control(wc)
	var lastErr *ServerError // a session-level error frame just before a close
	for {
		env := new(protocol.Envelope)
		err := wc.readEnvelope(env, c.hbTimeout(), control)
		if err != nil {
			var de *decodeError
			if errors.As(err, &de) {
				c.log.Warn("tandem: undecodable frame skipped", "err", err)
				continue
			}
			var ce *CloseError
			if errors.As(err, &ce) && ce.Server == nil {
				ce.Server = lastErr
			}
			return err
		}
		if c.ctx.Err() != nil {
			continue
		}
		lastErr = c.dispatch(wc, env)
	}
}

// keepalive pings every heartbeat interval and sends ack_frame every
// AckInterval while frames arrive, until stop.
func (c *Client) keepalive(wc *wsConn, stop <-chan struct{}) {
	ack := time.NewTicker(c.cfg.AckInterval)
	defer ack.Stop()
	ping := time.NewTicker(time.Duration(c.heartbeat.Load()))
	defer ping.Stop()
	for {
		select {
		case <-stop:
			return
		case <-c.ctx.Done():
			return
		case <-ack.C:
			c.sendAck(wc)
		case <-ping.C:
			c.sendUnreliable(wc, pingFrame(c.nowUS()))
		}
	}
}
