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

// handshake opens a connection to url and sends connect: with the resume
// token and positions when resume is set, as a new session otherwise (with
// seatToken, when following a seat reservation). It returns the connection
// and the connected envelope.
func (c *Client) handshake(ctx context.Context, url string, resume bool, seatToken string) (*wsConn, *protocol.Envelope, error) {
	timeout := c.hbTimeout()
	token, err := c.cfg.Token(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("tandem: token: %w", err)
	}
	var hello *protocol.Envelope
	c.mu.Lock()
	if resume {
		hello = connectFrame(token, c.sess.resumeToken, c.sess.streams.positions(), "", c.cfg.SDK)
	} else {
		hello = connectFrame(token, "", nil, seatToken, c.cfg.SDK)
	}
	c.mu.Unlock()
	payload, err := c.codec.Marshal(nil, hello)
	if err != nil {
		return nil, nil, fmt.Errorf("tandem: encode: %w", err)
	}

	wc, err := dialWS(ctx, url, &c.cfg, c.codec, timeout)
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
	s := c.sess
	s.id, s.playerID, s.resumeToken = cd.GetSessionId(), cd.GetPlayerId(), cd.GetResumeToken()
	s.node = cd.GetNode()
	if hb := cd.GetHeartbeatMs(); hb > 0 {
		c.heartbeat.Store(int64(time.Duration(hb) * time.Millisecond))
	}
	s.seatHold = time.Duration(cd.GetSeatHoldMs()) * time.Millisecond
	s.maxFrame = int(cd.GetMaxFrameBytes())
	s.resend.trim(env.GetAck())
	frames := s.resend.pending()
	ack := ackFrame(s.streams.positions())
	s.streams.dirty = false
	wc.sess = s
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
// resuming, or starting a new session — or stops. A move (Join following a
// seat reservation) hands it the new node's connection, which it serves
// from then on while a drain serves the old one.
func (c *Client) run(wc *wsConn) {
	defer close(c.done)
	defer close(c.events)
	defer c.quiesce()
	var (
		lost       *SessionLost // session lost, reported once a new session is up
		endedAt    time.Time    // when the last connection ended
		attempt    int
		relocate   bool      // the node seems gone: ask Config.Locate where to go
		lastLocate time.Time // during this disconnection; zero: not asked yet
	)
	for {
		if wc != nil {
			in := c.read(wc)
			h, err := c.serve(wc, in)
			if h != nil {
				if wc = c.adopt(h, wc, in); wc == nil {
					c.stop(ErrClosed)
					return
				}
				continue
			}
			wc = nil
			if c.ctx.Err() != nil {
				c.stop(ErrClosed)
				return
			}
			endedAt, attempt, lastLocate = time.Now(), 0, time.Time{}
			c.log.Debug("tandem: connection lost", "err", err, "class", classAfter(err))
			if isMoved(err) {
				// The server moved the session before the Join that
				// follows the reservation handed run the new connection.
				if h := c.awaitMove(); h != nil {
					if wc = c.adopt(h, nil, nil); wc == nil {
						c.stop(ErrClosed)
						return
					}
					continue
				}
			}
			switch classAfter(err) {
			case protocol.ClassFinal:
				c.finish(err)
				return
			case protocol.ClassRejoin:
				c.emit(&Disconnected{Err: err})
				lost = c.loseSession(err)
			default:
				c.emit(&Disconnected{Err: err})
			}
			relocate = nodeGone(err)
		}

		delay := backoff(attempt, c.cfg.MinBackoff, c.cfg.MaxBackoff, nil)
		h, ok := c.pause(delay)
		if !ok {
			c.stop(ErrClosed)
			return
		}
		if h != nil {
			// A Join moved the session while the connection was down.
			if wc = c.adoptWhileDown(h, &lost); wc == nil {
				c.stop(ErrClosed)
				return
			}
			attempt, relocate = 0, false
			continue
		}
		attempt++
		resume := lost == nil
		if resume && c.seatHoldOver(endedAt) {
			lost = c.loseSession(errSeatHoldOver)
			resume = false
		}
		// Locate is asked at most once per max(1s, backoff) of one
		// disconnection: a web server answering fast must not be asked at
		// the rate of failing dials.
		if relocate && (lastLocate.IsZero() || time.Since(lastLocate) >= max(time.Second, delay)) {
			lastLocate, relocate = time.Now(), false
			if err := c.locate(); err != nil {
				c.finish(err)
				return
			}
		}
		c.mu.Lock()
		url := c.url
		c.mu.Unlock()
		next, env, err := c.handshake(c.ctx, url, resume, "")
		if err != nil {
			if c.ctx.Err() != nil {
				c.stop(ErrClosed)
				return
			}
			c.log.Debug("tandem: reconnect failed", "err", err, "resume", resume, "attempt", attempt, "url", url)
			if isMoved(err) {
				if h := c.awaitMove(); h != nil {
					if wc = c.adoptWhileDown(h, &lost); wc == nil {
						c.stop(ErrClosed)
						return
					}
					attempt, relocate = 0, false
					continue
				}
			}
			relocate = relocate || nodeGone(err)
			switch classAfter(err) {
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
		relocate = false
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

// adoptWhileDown adopts the connection a Join's move handed over while run
// had none, and ends the disconnection with the event that follows
// Disconnected: SessionLost when the old session was lost meanwhile,
// Resumed otherwise (the old session's rooms end with their Left events).
// It returns nil when the client was closed meanwhile.
func (c *Client) adoptWhileDown(h *handoff, lost **SessionLost) *wsConn {
	wc := c.adopt(h, nil, nil)
	if wc == nil {
		return nil
	}
	if *lost != nil {
		c.emit(*lost)
		*lost = nil
	} else {
		c.emit(&Resumed{})
	}
	return wc
}

// classAfter is classOf for the reconnect loop: a `moved` close that no
// Join of this client awaits (the session moved to a node the client does
// not know) is rejoin class: the session is lost, a new one starts.
func classAfter(err error) protocol.CloseClass {
	if isMoved(err) {
		return protocol.ClassRejoin
	}
	return classOf(err)
}

// nodeGone reports whether err says the node the client used is gone, so
// Config.Locate should name another: its dial failed, it drains, the
// session's node is gone, or the session moved where the client cannot
// tell.
func nodeGone(err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return true
	}
	var ce *CloseError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Code {
	case protocol.CloseNodeDraining, protocol.CloseNodeGone, protocol.CloseMoved:
		return true
	}
	return false
}

// locate asks Config.Locate for the URL to connect to now. It returns an
// error only when no later attempt can succeed (the login is over); any
// other failure keeps the URL in use.
func (c *Client) locate() error {
	if c.cfg.Locate == nil {
		return nil
	}
	url, err := c.cfg.Locate(c.ctx)
	switch {
	case err != nil && classOf(err) == protocol.ClassFinal:
		return err
	case err != nil:
		c.log.Debug("tandem: locate failed; keeping the URL", "err", err)
	case url != "":
		c.mu.Lock()
		c.url = url
		c.mu.Unlock()
	}
	return nil
}

// pause waits d, or until a move hands run a new connection, or Close.
func (c *Client) pause(d time.Duration) (*handoff, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, true
	case h := <-c.moves:
		return h, true
	case <-c.ctx.Done():
		return nil, false
	}
}

// seatHoldOver reports whether the seat hold of the session has run out
// since endedAt: resuming cannot succeed.
func (c *Client) seatHoldOver(endedAt time.Time) bool {
	c.mu.Lock()
	hold := c.sess.seatHold
	c.mu.Unlock()
	return hold > 0 && time.Since(endedAt) > hold
}

// emit delivers ev to the application, blocking until it is read, the
// client is closed, or run is ending the client (only Closed follows).
func (c *Client) emit(ev Event) {
	select {
	case c.events <- ev:
	case <-c.ctx.Done():
	case <-c.quiet:
	}
}

// quiesce silences every goroutine but run and waits for the drains: run
// is ending the client, and Closed must be the last event.
func (c *Client) quiesce() {
	c.quietOnce.Do(func() { close(c.quiet) })
	c.drains.Wait()
}

// loseSession forgets the session: its rooms, positions, client seq, resend
// buffer and resume token; pending requests fail with ErrSessionLost. The
// next connect starts a new session.
func (c *Client) loseSession(cause error) *SessionLost {
	lerr := lostError(cause)
	c.mu.Lock()
	s := c.sess
	ids := slices.Sorted(maps.Keys(s.rooms))
	for _, r := range s.rooms {
		r.gone(lerr)
	}
	s.rooms = map[string]*Room{}
	s.streams.reset()
	s.seq = 0
	s.resend.reset()
	s.resumeToken = ""
	pend := s.pending
	s.pending = map[uint64]*pending{}
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
	s := c.sess
	for _, r := range s.rooms {
		r.gone(err)
	}
	s.rooms = map[string]*Room{}
	s.resend.reset()
	pend := s.pending
	s.pending = map[uint64]*pending{}
	c.mu.Unlock()
	for _, p := range pend {
		p.resolve(reply{err: err})
	}
}

// finish ends the client after a final close: Closed{err}, except for the
// silent `moved`.
func (c *Client) finish(err error) {
	c.stop(err)
	c.quiesce()
	if !isMoved(err) {
		select {
		case c.events <- &Closed{Err: err}:
		case <-c.ctx.Done():
		}
	}
}

// inbound is one read from a connection: a frame, or why it ended.
type inbound struct {
	env *protocol.Envelope
	err error
}

// inbox is a connection's reader goroutine and its frames, one at a time
// (so a slow application still slows the server down: TCP backpressure).
// Whoever serves the connection reads frames; a move hands the inbox over
// from run to a drain without interrupting a read.
type inbox struct {
	frames chan inbound
	stop   chan struct{}
	done   chan struct{}
}

// read starts the reader of wc. It sends frames until a read fails, then
// the error, and ends; or it ends at close.
func (c *Client) read(wc *wsConn) *inbox {
	in := &inbox{frames: make(chan inbound), stop: make(chan struct{}), done: make(chan struct{})}
	control := c.control(wc)
	go func() {
		defer close(in.done)
		for {
			env := new(protocol.Envelope)
			err := wc.readEnvelope(env, c.hbTimeout(), control)
			var de *decodeError
			if errors.As(err, &de) {
				c.log.Warn("tandem: undecodable frame skipped", "err", err)
				continue
			}
			select {
			case in.frames <- inbound{env: env, err: err}:
			case <-in.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return in
}

// close closes wc and waits for its reader.
func (in *inbox) close(wc *wsConn) {
	close(in.stop)
	wc.nc.Close()
	<-in.done
}

// serve dispatches the frames of wc until it fails, or until a move hands
// run another connection (then wc stays open, its inbox running, for a
// drain); a keepalive goroutine sends pings and acks meanwhile. After Close
// it only drains (until the server's close echo, or Close gives up and
// closes wc).
func (c *Client) serve(wc *wsConn, in *inbox) (*handoff, error) {
	stop := make(chan struct{})
	kaDone := make(chan struct{})
	go func() {
		defer close(kaDone)
		c.keepalive(wc, stop)
	}()
	var h *handoff
	defer func() {
		close(stop)
		if h == nil {
			in.close(wc)
		}
		<-kaDone
		c.mu.Lock()
		if c.conn == wc {
			c.conn = nil
		}
		c.mu.Unlock()
	}()
	var lastErr *ServerError // a session-level error frame just before a close
	for {
		select {
		case m := <-in.frames:
			if m.err != nil {
				var ce *CloseError
				if errors.As(m.err, &ce) && ce.Server == nil {
					ce.Server = lastErr
				}
				return nil, m.err
			}
			if c.ctx.Err() != nil {
				continue
			}
			lastErr = c.dispatch(wc, m.env)
		case h = <-c.moves:
			return h, nil
		}
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
