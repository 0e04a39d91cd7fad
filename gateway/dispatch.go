package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/gobwas/ws"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/session"
)

// maxRecipients bounds a room_message's recipient list, which rooms scan
// for every member.
const maxRecipients = 64

// ackEvery is how many reliable frames the server takes before it sends an
// ack_frame unasked.
const ackEvery = 32

// readLoop is the connection's reader goroutine: it reads frames until the
// connection ends, then hands the session to the registry.
func (c *conn) readLoop() {
	defer c.finish()
	var env protocol.Envelope
	for {
		// Wait for a frame holding no buffer: an idle connection keeps none.
		h, err := ws.ReadHeader(c.nc)
		if err != nil {
			c.endWith(err)
			return
		}
		bp := c.g.readBufs.Get().(*[]byte)
		msg, op, err := c.readFrame(h, *bp)
		if err == nil && (op == ws.OpBinary) != c.codec.Codec().Binary() {
			err = tandem.Errorf(tandem.EInvalid, "frame of type %d on subprotocol %s", op, c.codec.Codec().Name())
		}
		if err == nil {
			c.framed.Store(true)
			c.g.metrics.FramesIn.Inc()
			err = c.handle(msg, &env)
		}
		if cap(msg) <= 64<<10 {
			*bp = msg[:0]
		}
		c.g.readBufs.Put(bp)
		if err != nil {
			c.endWith(err)
			return
		}
	}
}

// endWith closes the connection for the error that ended its read loop.
func (c *conn) endWith(err error) {
	var te *tandem.Error
	var ce closeErr
	var pc peerClosed
	var pe ws.ProtocolError
	switch {
	case errors.As(err, &pc):
		// A normal closure is the player leaving: the session ends. Any
		// other close (going away, an error) holds the seat.
		// A client answering the server's own close echoes a code: that is
		// not a logout.
		code := protocol.CloseCode(ws.StatusGoingAway)
		if pc.code == ws.StatusNormalClosure && c.closeCodeSent() == 0 {
			code = protocol.CloseCode(ws.StatusNormalClosure)
			c.endSession = true
		}
		c.Close(code, "")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), isTimeout(err):
		c.Close(protocol.CloseCode(ws.StatusNormalClosure), "")
	case errors.Is(err, errFrameTooLarge):
		c.g.metrics.LimitViolations.WithLabelValues("frame_size").Inc()
		c.closeForViolation(protocol.CloseTooLarge, "frame larger than max_frame_bytes")
	case errors.As(err, &ce):
		c.closeForViolation(ce.code, ce.reason)
	case errors.As(err, &te):
		c.closeForViolation(protocol.CloseProtocolViolation, te.Message)
	case errors.As(err, &pe):
		c.closeForViolation(protocol.CloseProtocolViolation, pe.Error())
	default:
		c.abort()
	}
}

// closeForViolation closes a connection whose peer broke a rule while it
// may still be sending: the reader lingers so the close frame is not lost to
// a reset.
func (c *conn) closeForViolation(code protocol.CloseCode, reason string) {
	c.linger = true
	c.Close(code, reason)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closeErr ends a connection with a close code.
type closeErr struct {
	code   protocol.CloseCode
	reason string
}

func (e closeErr) Error() string { return e.reason }

// finish runs when the read loop ends: the socket closes (after the writer
// sent what it holds, such as the close frame) and the session is held
// (resume-class endings) or ended (final and rejoin-class ones).
func (c *conn) finish() {
	if c.linger {
		c.lingerRead()
	}
	c.mu.Lock()
	c.readDone = true
	writing := c.writing
	c.mu.Unlock()
	if !writing {
		c.abort()
	}
	if s := c.sess.Load(); s != nil {
		code := c.closeCodeSent()
		if !c.endSession && (code.Class() == protocol.ClassResume || code < 4000) {
			c.g.sessions.Detach(c.g.ctx, s, c)
		} else {
			// Only while this connection still owns the session: after a
			// resume elsewhere, the old connection's ending ends nothing.
			c.g.sessions.EndFrom(c.g.ctx, s, c, protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED, code, "")
		}
	}
	c.g.untrack(c)
}

// lingerRead reads and drops what the peer still sends — first the rest of
// a frame refused unread (too_large, say), then frame by frame — until its
// close frame (the handshake is over: the server closes TCP first, as RFC
// 6455 §7.1.1 asks and browsers wait for), until it closes, until 4 maximum
// frames were dropped (and 4 of the refused frame), or until the close
// grace passes. Closing a socket
// with unread bytes makes the kernel send a reset, which can destroy the
// close frame before the peer reads it. After broken framing (a frame that
// did not decode is whole: the stream is still at a boundary) the headers
// read may be garbage; the same bounds hold.
func (c *conn) lingerRead() {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.g.cfg.CloseGrace))
	bound := int64(4 * c.g.cfg.MaxFrameBytes)
	if _, err := io.CopyN(io.Discard, io.LimitReader(c.nc, bound), c.unread); err != nil {
		return
	}
	r := io.LimitReader(c.nc, bound)
	for {
		h, err := ws.ReadHeader(r)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, r, h.Length); err != nil || h.OpCode == ws.OpClose {
			return
		}
	}
}

// abortAfter closes the socket if the connection has not ended within d.
func (c *conn) abortAfter(d time.Duration) {
	_ = c.nc.SetDeadline(time.Now().Add(d))
}

// handle decodes and acts on one frame.
func (c *conn) handle(msg []byte, env *protocol.Envelope) error {
	if err := c.codec.Codec().Unmarshal(msg, env); err != nil {
		return tandem.Errorf(tandem.EInvalid, "malformed frame")
	}
	s := c.sess.Load()
	if s == nil {
		return c.connect(env)
	}
	if _, ack := env.Body.(*protocol.Envelope_AckFrame); ack && c.confirmPending {
		// The client acknowledges connected, so it holds the new token.
		c.confirmPending = false
		s.ConfirmToken(c)
	}
	now := time.Now()
	lim := c.g.limiter(s)
	if ok, kind := lim.allowFrame(&c.g.cfg.Limits, now, len(msg), c.g.cfg.MaxFrameBytes, housekeeping(env)); !ok {
		c.g.metrics.LimitViolations.WithLabelValues(kind).Inc()
		if lim.violation(&c.g.cfg.Limits, now) {
			return closeErr{protocol.ClosePolicyViolation, "too many frames over the rate limit"}
		}
		return c.refuse(s, env, tandem.Errorf(tandem.ERateLimited, "over the %s rate limit", kind))
	}

	switch b := env.Body.(type) {
	case *protocol.Envelope_Ping:
		c.sendUnsequenced(&protocol.Envelope{Cid: env.Cid, Ack: s.ClientSeq(), Body: &protocol.Envelope_Pong{Pong: &protocol.Pong{TimeUs: b.Ping.GetTimeUs()}}})
		return nil
	case *protocol.Envelope_Pong:
		if rtt := now.UnixMicro() - b.Pong.GetTimeUs(); rtt >= 0 && b.Pong.GetTimeUs() > 0 {
			c.rttUs.Store(uint32(min(rtt, 1<<31)))
			s.SetRTT(time.Duration(rtt) * time.Microsecond)
			c.g.metrics.RTT.Observe(float64(rtt) / 1e6)
		}
		return nil
	case *protocol.Envelope_AckFrame:
		for _, p := range b.AckFrame.GetPositions() {
			if p.GetRoom() == "" {
				s.Ack(p.GetSeq())
			}
		}
		return nil
	case *protocol.Envelope_Connect:
		return tandem.Errorf(tandem.EInvalid, "connect sent twice")
	}
	return c.reliable(s, env)
}

// housekeeping reports whether a frame only keeps the connection going
// (ping, pong, ack): it counts against the byte rate, not the message rate.
func housekeeping(env *protocol.Envelope) bool {
	switch env.Body.(type) {
	case *protocol.Envelope_Ping, *protocol.Envelope_Pong, *protocol.Envelope_AckFrame:
		return true
	}
	return false
}

// refuse answers a frame refused by a limit. A reliable frame still takes
// its seq, so the client's numbering stays in step.
func (c *conn) refuse(s *session.Session, env *protocol.Envelope, err error) error {
	if env.Seq == 0 {
		c.sendUnsequenced(errorEnvelope(env.Cid, err))
		return nil
	}
	_, derr := s.Dispatch(c, env.Seq, func() { s.Reply(errorEnvelope(env.Cid, err)) })
	return derr
}

// reliable processes a client frame that carries a client seq, exactly once.
func (c *conn) reliable(s *session.Session, env *protocol.Envelope) error {
	if env.Seq == 0 {
		if _, ok := env.Body.(*protocol.Envelope_ListRooms); !ok {
			c.sendUnsequenced(errorEnvelope(env.Cid, tandem.Errorf(tandem.EInvalid, "this frame needs a client seq")))
			return nil
		}
		c.listRooms(s, env)
		return nil
	}
	cid := env.Cid
	body := env.Body
	ran, err := s.Dispatch(c, env.Seq, func() { c.apply(s, cid, body) })
	if err != nil {
		return err
	}
	if ran && env.Seq >= c.nextAck {
		c.nextAck = env.Seq + ackEvery
		c.sendUnsequenced(&protocol.Envelope{Ack: env.Seq, Body: &protocol.Envelope_AckFrame{AckFrame: &protocol.Ack{}}})
	}
	return nil
}

// apply runs one reliable request; answers go on the session stream.
func (c *conn) apply(s *session.Session, cid uint64, body any) {
	ctx := c.g.ctx
	fail := func(err error) { s.Reply(errorEnvelope(cid, err)) }
	switch b := body.(type) {
	case *protocol.Envelope_Join:
		if err := c.join(ctx, s, cid, b.Join); err != nil {
			fail(err)
		}
	case *protocol.Envelope_Leave:
		l, ok := s.Room(b.Leave.GetRoomId())
		if !ok {
			fail(tandem.Errorf(tandem.ENotInRoom, "not in room %q", b.Leave.GetRoomId()))
			return
		}
		if err := l.Leave(ctx, s, protocol.LeaveReason_LEAVE_REASON_REQUESTED); err != nil {
			fail(err)
		}
	case *protocol.Envelope_RoomMessage:
		m := b.RoomMessage
		if len(m.GetTo()) > maxRecipients {
			fail(tandem.Errorf(tandem.EInvalid, "at most %d recipients in a list", maxRecipients))
			return
		}
		l, ok := s.Room(m.GetRoomId())
		if !ok {
			fail(tandem.Errorf(tandem.ENotInRoom, "not in room %q", m.GetRoomId()))
			return
		}
		err := l.Submit(ctx, s, room.Message{Topic: m.GetTopic(), Data: m.GetData(), Delivery: m.GetDelivery(), To: m.GetTo()})
		if err != nil {
			fail(err)
		}
	case *protocol.Envelope_Rpc:
		c.rpc(ctx, s, cid, b.Rpc)
	case *protocol.Envelope_TicketCreate, *protocol.Envelope_TicketCancel, *protocol.Envelope_TicketStatus:
		c.ticket(ctx, s, cid, b)
	case *protocol.Envelope_ListRooms:
		c.listRooms(s, &protocol.Envelope{Cid: cid, Body: b})
	default:
		fail(tandem.Errorf(tandem.EUnknownMessage, "unknown or unexpected frame body"))
	}
}

func (c *conn) join(ctx context.Context, s *session.Session, cid uint64, j *protocol.Join) error {
	g := c.g
	if !g.Ready() {
		return tandem.Errorf(tandem.EUnavailable, "node is draining")
	}
	if max := g.cfg.Limits.MaxRooms; max > 0 && s.RoomCount() >= max {
		g.metrics.LimitViolations.WithLabelValues("max_rooms").Inc()
		return tandem.Errorf(tandem.EQuotaExceeded, "a session may be in at most %d rooms", max)
	}
	mode := j.GetMode()
	if mode == protocol.JoinMode_JOIN_MODE_UNSPECIFIED {
		mode = protocol.JoinMode_JOIN_MODE_JOIN_OR_CREATE
		if j.GetRoomId() != "" {
			mode = protocol.JoinMode_JOIN_MODE_JOIN
		}
	}
	var r *room.Room
	switch mode {
	case protocol.JoinMode_JOIN_MODE_JOIN:
		if tok := j.GetSeatToken(); tok != "" {
			return c.joinSeated(ctx, s, cid, j)
		}
		var ok bool
		if r, ok = g.rooms.Get(j.GetRoomId()); !ok {
			if g.cl == nil {
				return tandem.Errorf(tandem.ENotFound, "no room %q", j.GetRoomId())
			}
			// The room may run on another node: answer with a seat there.
			res, err := g.cl.seatElsewhere(ctx, s, j.GetRoomId())
			if err != nil {
				return err
			}
			s.Reply(&protocol.Envelope{Cid: cid, Body: &protocol.Envelope_SeatReservation{SeatReservation: res}})
			return nil
		}
		if g.cl != nil {
			if seat, ok := g.cl.takeSeat(s, r.ID(), time.Now()); ok {
				g.cl.seated(s, seat)
				return r.JoinSeated(ctx, s, cid, j.GetMetadata(), seatKey(seat.Token))
			}
		}
	case protocol.JoinMode_JOIN_MODE_JOIN_OR_CREATE:
		// The room list may be a moment old: a room that turns out full is
		// skipped (a few times), and then a new one is made.
		for range 3 {
			found, ok := g.rooms.FindOpen(j.GetRoomType())
			if !ok {
				break
			}
			open, err := found.TryJoin(ctx, s, cid, j.GetMetadata())
			if err != nil || open {
				return err
			}
		}
		fallthrough
	case protocol.JoinMode_JOIN_MODE_CREATE:
		if !g.limiter(s).allowCreate(&g.cfg.Limits, time.Now()) {
			g.metrics.LimitViolations.WithLabelValues("room_creates").Inc()
			return tandem.Errorf(tandem.EQuotaExceeded, "too many rooms created; wait a minute")
		}
		created, err := g.rooms.Create(j.GetRoomType(), j.GetOptions())
		if err != nil {
			return err
		}
		r = created
	default:
		return tandem.Errorf(tandem.EInvalid, "unknown join mode %d", mode)
	}
	return r.Join(ctx, s, cid, j.GetMetadata())
}

// joinSeated joins a room of this node with a seat reservation for it (a
// match's seat, for a player already on the room's node): the seat is
// claimed, used once, and the join passes everything but a lock.
func (c *conn) joinSeated(ctx context.Context, s *session.Session, cid uint64, j *protocol.Join) error {
	g := c.g
	r, ok := g.rooms.Get(j.GetRoomId())
	if g.cl == nil || !ok {
		return tandem.Errorf(tandem.ENotFound, "no room %q on this node", j.GetRoomId())
	}
	seat, err := g.cl.claimSeat(j.GetSeatToken(), s.Player().ID)
	if err != nil {
		return err
	}
	if seat.RoomID != r.ID() {
		return tandem.Errorf(tandem.EInvalid, "the seat reservation is for another room")
	}
	g.cl.seated(s, seat)
	return r.JoinSeated(ctx, s, cid, j.GetMetadata(), seatKey(seat.Token))
}

func (c *conn) rpc(ctx context.Context, s *session.Session, cid uint64, call *protocol.Rpc) {
	h, ok := c.g.cfg.RPCs[call.GetMethod()]
	if !ok {
		s.Reply(errorEnvelope(cid, tandem.Errorf(tandem.EUnknownRPC, "no RPC %q", call.GetMethod())))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.g.cfg.RPCTimeout)
	defer cancel()
	out, err := safeRPC(ctx, h, s.Player(), call.GetData())
	if err != nil && ctx.Err() == context.DeadlineExceeded && tandem.ErrorCodeOf(err) == tandem.EInternal {
		err = tandem.Errorf(tandem.ETimeout, "rpc %q did not finish in %s", call.GetMethod(), c.g.cfg.RPCTimeout)
	}
	if err != nil {
		if tandem.ErrorCodeOf(err) == tandem.EInternal {
			s.Logger().Error("rpc failed", "method", call.GetMethod(), "err", err)
		}
		s.Reply(errorEnvelope(cid, err))
		return
	}
	s.Reply(&protocol.Envelope{Cid: cid, Body: &protocol.Envelope_RpcReply{RpcReply: &protocol.RpcReply{Data: out}}})
}

// safeRPC runs a game's RPC handler; a panic becomes an internal error
// instead of taking the node down.
func safeRPC(ctx context.Context, h tandem.RPC, p *tandem.Player, data []byte) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = tandem.Errorf(tandem.EInternal, "rpc handler failed")
		}
	}()
	return h(ctx, p, data)
}

func (c *conn) listRooms(s *session.Session, env *protocol.Envelope) {
	if cl := c.g.cl; cl != nil {
		// The cluster's directory (the node's watched copy): rooms of
		// every node.
		rooms := cl.rooms(env.GetListRooms().GetRoomType())
		s.Reply(&protocol.Envelope{Cid: env.Cid, Body: &protocol.Envelope_RoomList{RoomList: &protocol.RoomList{Rooms: rooms}}})
		return
	}
	infos := c.g.rooms.List(env.GetListRooms().GetRoomType())
	list := &protocol.RoomList{Rooms: make([]*protocol.RoomInfo, len(infos))}
	for i, in := range infos {
		list.Rooms[i] = &protocol.RoomInfo{
			RoomId: in.ID, RoomType: in.Type, Players: uint32(in.Players), MaxPlayers: uint32(in.MaxPlayers),
			Open: in.Open, Node: c.g.cfg.Node,
		}
	}
	s.Reply(&protocol.Envelope{Cid: env.Cid, Body: &protocol.Envelope_RoomList{RoomList: list}})
}

// connect handles the first frame: authenticate, then open or resume the
// session.
func (c *conn) connect(env *protocol.Envelope) error {
	g := c.g
	req := env.GetConnect()
	if req == nil {
		return tandem.Errorf(tandem.EInvalid, "the first frame must be connect")
	}
	claims, err := g.cfg.Verifier.Verify(req.GetToken(), time.Now(), tandem.AudienceRealtime)
	if err != nil {
		c.sendUnsequenced(errorEnvelope(env.Cid, err))
		return verifyClose(g, err)
	}
	if g.cl != nil {
		if berr, banned := g.cl.banned(claims.Subject, time.Now()); banned {
			c.sendUnsequenced(errorEnvelope(env.Cid, berr))
			return closeErr{protocol.CloseBanned, "banned"}
		}
		if g.cl.revoked(claims.Subject, claims.IssuedAt) {
			c.sendUnsequenced(errorEnvelope(env.Cid, errRevoked()))
			return closeErr{protocol.CloseBadToken, "token revoked"}
		}
	}
	if !g.Ready() {
		c.sendUnsequenced(errorEnvelope(env.Cid, tandem.Errorf(tandem.EUnavailable, "node is draining")))
		return closeErr{protocol.CloseNodeDraining, "node is draining"}
	}
	p := &tandem.Player{ID: claims.Subject, Name: claims.Name, Roles: claims.Roles, MM: claims.MM}
	connected := func(s *session.Session, token string, resumed bool, ack uint64, rooms []string) *protocol.Envelope {
		return &protocol.Envelope{Cid: env.Cid, Ack: ack, Body: &protocol.Envelope_Connected{Connected: &protocol.Connected{
			SessionId:     s.ID(),
			PlayerId:      p.ID,
			ResumeToken:   token,
			Resumed:       resumed,
			HeartbeatMs:   uint32(g.cfg.Heartbeat.Milliseconds()),
			SeatHoldMs:    uint32(g.cfg.SeatHold.Milliseconds()),
			Node:          g.cfg.Node,
			MaxFrameBytes: uint32(g.cfg.MaxFrameBytes),
			Rooms:         rooms,
		}}}
	}

	if rt := req.GetResumeToken(); rt != "" && req.GetSeatToken() == "" {
		if node, _, _ := strings.Cut(rt, "."); node != g.cfg.Node {
			c.sendUnsequenced(errorEnvelope(env.Cid, tandem.Errorf(tandem.ENotFound, "node %q is gone", node)))
			return closeErr{protocol.CloseNodeGone, "node gone"}
		}
		s, err := g.sessions.Resume(g.ctx, rt, p, c.codec, c, req.GetPositions(), connected)
		if err != nil {
			c.sendUnsequenced(errorEnvelope(env.Cid, err))
			return closeErr{protocol.CloseSessionExpired, "session expired"}
		}
		c.sess.Store(s)
		c.confirmPending = true
		c.nextAck = s.ClientSeq() + ackEvery
		g.authenticated(s, claims.IssuedAt)
		return nil
	}

	// A seat reservation moves the player here from another node: always a
	// new session, whose presence claim says it moved.
	var seat *tandem.Seat
	if st := req.GetSeatToken(); st != "" {
		if g.cl == nil {
			err = errSeatUnknown()
		} else {
			seat, err = g.cl.claimSeat(st, claims.Subject)
		}
		if err != nil {
			c.sendUnsequenced(errorEnvelope(env.Cid, err))
			return closeErr{protocol.CloseSessionExpired, "seat reservation unknown"}
		}
	}

	if h := g.cfg.Hooks.SessionStart; h != nil {
		if err := h(g.ctx, p); err != nil {
			c.sendUnsequenced(errorEnvelope(env.Cid, err))
			return closeErr{protocol.CloseKicked, tandem.ErrorMessageOf(err)}
		}
	}
	// A seat moves the player: a session it has here ends as moved.
	open := g.sessions.Open
	if seat != nil {
		open = g.sessions.OpenMoved
	}
	s := open(g.ctx, p, c.codec, c, connected)
	c.sess.Store(s)
	c.confirmPending = true
	c.nextAck = ackEvery
	g.authenticated(s, claims.IssuedAt)
	g.sessionOpened(s, seat)
	return nil
}

// sendUnsequenced sends a frame outside every stream (ping, pong, acks,
// errors before a session exists).
func (c *conn) sendUnsequenced(env *protocol.Envelope) {
	b, err := EncodeFrame(c.codec, env)
	if err != nil {
		c.g.log.Error("encode frame", "err", err)
		return
	}
	c.Send(b)
}

// verifyClose returns the close for a token the verifier refused. Only a
// temporary refusal — the node cannot check tokens yet, its keys not
// loaded — keeps the client trying: node_draining, whose advice (connect
// again, to this node or another, with a fresh token) is what it needs.
// Anything else is the token's fault and final.
func verifyClose(g *Gateway, err error) closeErr {
	if tandem.ErrorCodeOf(err) == tandem.EUnavailable {
		return closeErr{protocol.CloseNodeDraining, "token keys not available"}
	}
	g.metrics.LimitViolations.WithLabelValues("bad_token").Inc()
	return closeErr{protocol.CloseBadToken, tandem.ErrorMessageOf(err)}
}

func errorEnvelope(cid uint64, err error) *protocol.Envelope {
	code := tandem.ErrorCodeOf(err)
	e := &protocol.Error{Code: uint32(code), Message: tandem.ErrorMessageOf(err), Temporary: code.Temporary()}
	var te *tandem.Error
	if errors.As(err, &te) {
		for _, f := range te.Fields {
			e.Fields = append(e.Fields, &protocol.FieldError{Field: f.Field, Message: f.Message})
		}
	}
	return &protocol.Envelope{Cid: cid, Body: &protocol.Envelope_Error{Error: e}}
}

// prefixConn replays bytes the handshake reader had already buffered.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		if len(p.prefix) == 0 {
			p.prefix = nil
		}
		return n, nil
	}
	return p.Conn.Read(b)
}
