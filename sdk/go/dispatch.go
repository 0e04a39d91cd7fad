package client

import (
	"fmt"
	"time"

	"github.com/tandemhq/tandem/protocol"
)

// dispatch handles one frame from the server on wc, for the session wc
// carries. It returns the error of a session-level error frame (for a close
// that follows it).
func (c *Client) dispatch(wc *wsConn, env *protocol.Envelope) *ServerError {
	s := wc.sess
	if ack := env.GetAck(); ack > 0 {
		c.mu.Lock()
		s.resend.trim(ack)
		c.mu.Unlock()
	}
	switch b := env.GetBody().(type) {
	case *protocol.Envelope_Ping:
		if rtt := b.Ping.GetRttUs(); rtt > 0 {
			c.serverRTT.Store(int64(time.Duration(rtt) * time.Microsecond))
		}
		c.sendUnreliable(wc, pongFrame(b.Ping.GetTimeUs()))
		return nil
	case *protocol.Envelope_Pong:
		if t := b.Pong.GetTimeUs(); t > 0 {
			if rtt := time.Duration(c.nowUS()-t) * time.Microsecond; rtt > 0 {
				c.rtt.Store(int64(rtt))
			}
		}
		return nil
	case *protocol.Envelope_AckFrame:
		return nil
	case *protocol.Envelope_Connected:
		c.log.Warn("tandem: unexpected connected frame ignored")
		return nil
	}
	if env.GetRoom() != "" {
		c.dispatchRoom(s, env)
		return nil
	}
	return c.dispatchSession(s, env)
}

// dispatchSession handles a session-stream frame: replies by cid, notices,
// errors.
func (c *Client) dispatchSession(s *session, env *protocol.Envelope) *ServerError {
	c.mu.Lock()
	if !s.streams.acceptSession(env.GetSeq()) {
		c.mu.Unlock()
		return nil
	}
	switch b := env.GetBody().(type) {
	case *protocol.Envelope_Joined:
		j := b.Joined
		r := s.rooms[j.GetRoomId()]
		if r == nil {
			r = &Room{c: c, sess: s, id: j.GetRoomId(), typ: j.GetRoomType(), left: make(chan struct{})}
			s.rooms[r.id] = r
		}
		r.state = j.GetState()
		s.streams.join(r.id, j.GetEpoch(), j.GetSeq())
		p := s.takePending(env.GetCid())
		c.mu.Unlock()
		if p != nil {
			p.resolve(reply{env: env, room: r})
		}
		c.emit(&Joined{Room: r, Players: j.GetPlayers()})
	case *protocol.Envelope_Error:
		serr := newServerError(b.Error)
		p := s.takePending(env.GetCid())
		var f outFrame
		if p == nil && env.GetCid() != 0 {
			f, _ = s.resend.byCid(env.GetCid())
		}
		c.mu.Unlock()
		if p != nil {
			p.resolve(reply{env: env, err: serr})
			return nil
		}
		c.emit(&ErrorEvent{Room: f.room, Topic: f.topic, Err: serr})
		return serr
	case *protocol.Envelope_Notice:
		c.mu.Unlock()
		c.emit(&Notice{Kind: b.Notice.GetKind(), Text: b.Notice.GetText()})
	case *protocol.Envelope_Leave:
		// The server sends a room's final leave on the session stream, whose
		// buffer replays it on a resume even after the room forgot the
		// player; it comes after every frame of the room's stream.
		r := s.rooms[b.Leave.GetRoomId()]
		if r == nil {
			c.mu.Unlock()
			return nil
		}
		s.leftRoom(r)
		c.mu.Unlock()
		c.emit(&Left{Room: r, Reason: b.Leave.GetReason(), Missed: b.Leave.GetMissed(), State: b.Leave.GetState()})
	case *protocol.Envelope_TicketStatus:
		c.dispatchTicket(s, env, b.TicketStatus)
	default:
		p := s.takePending(env.GetCid())
		c.mu.Unlock()
		if p != nil {
			p.resolve(reply{env: env})
			return nil
		}
		c.log.Debug("tandem: session frame ignored", "body", fmt.Sprintf("%T", b), "cid", env.GetCid())
	}
	return nil
}

// dispatchTicket handles a ticket_status: the reply to a ticket request
// (cid set), or the server's push of a change (cid 0), which goes to the
// Matchmake waiting in its queue before it becomes a TicketUpdate event, so
// that Matchmake never waits for the application to read Events. Progress
// sees both, in stream order, once Matchmake's ticket is known only those
// of that ticket. The caller holds mu; dispatchTicket releases it.
func (c *Client) dispatchTicket(s *session, env *protocol.Envelope, ts *protocol.TicketStatus) {
	p := s.takePending(env.GetCid())
	pushed := env.GetCid() == 0
	w := c.tickets[ts.GetQueue()]
	if w != nil && p != nil && p == w.create {
		w.id = ts.GetTicketId()
	}
	if w != nil && !w.concerns(ts) {
		w = nil
	}
	c.mu.Unlock()
	status := ticketStatusOf(ts)
	// Progress sees a status before Matchmake acts on it.
	if w != nil && w.progress != nil && (p != nil || pushed) {
		c.reportProgress(w, status)
	}
	if w != nil && pushed {
		c.mu.Lock()
		w.push(ts)
		c.mu.Unlock()
	}
	switch {
	case p != nil:
		p.resolve(reply{env: env})
	case pushed:
		c.emit(&TicketUpdate{Status: status})
	default:
		c.log.Debug("tandem: unanswered ticket_status ignored", "cid", env.GetCid())
	}
}

// dispatchRoom handles a room-stream frame: dropped if it is a duplicate or
// for a room the client is not in.
func (c *Client) dispatchRoom(s *session, env *protocol.Envelope) {
	id := env.GetRoom()
	c.mu.Lock()
	r := s.rooms[id]
	var known, fresh bool
	if g := env.GetGap(); g != nil {
		known, fresh = s.streams.gap(id, g.GetEpoch(), g.GetSeq())
	} else {
		known, fresh = s.streams.acceptRoom(id, env.GetSeq())
	}
	if !known || r == nil || !fresh {
		c.mu.Unlock()
		if !known {
			c.log.Debug("tandem: frame for a room not joined dropped", "room", id, "seq", env.GetSeq())
		}
		return
	}
	var ev Event
	switch b := env.GetBody().(type) {
	case *protocol.Envelope_RoomMessage:
		m := b.RoomMessage
		ev = &RoomMessage{Room: r, From: m.GetFrom(), Topic: m.GetTopic(), Data: m.GetData(), Seq: env.GetSeq()}
	case *protocol.Envelope_Snapshot:
		r.state = b.Snapshot.GetState()
		ev = &Snapshot{Room: r, Tick: b.Snapshot.GetTick(), State: b.Snapshot.GetState(), Seq: env.GetSeq()}
	case *protocol.Envelope_Delta:
		ev = &Delta{Room: r, Tick: b.Delta.GetTick(), Patch: b.Delta.GetPatch(), Seq: env.GetSeq()}
	case *protocol.Envelope_RoomEvent:
		e := b.RoomEvent
		ev = &RoomEvent{Room: r, PlayerID: e.GetPlayerId(), Kind: e.GetKind(), Reason: e.GetReason(), Seq: env.GetSeq()}
	case *protocol.Envelope_Gap:
		g := b.Gap
		r.state = g.GetState()
		ev = &Gap{Room: r, FromSeq: g.GetFromSeq(), Seq: g.GetSeq(), Epoch: g.GetEpoch(), State: g.GetState()}
	case *protocol.Envelope_Leave:
		s.leftRoom(r)
		ev = &Left{Room: r, Reason: b.Leave.GetReason(), Missed: b.Leave.GetMissed(), State: b.Leave.GetState()}
	default:
		c.log.Debug("tandem: room frame ignored", "room", id, "body", fmt.Sprintf("%T", b))
	}
	c.mu.Unlock()
	if ev != nil {
		c.emit(ev)
	}
}

// leftRoom forgets a room the session is no longer in. The caller holds
// Client.mu.
func (s *session) leftRoom(r *Room) {
	delete(s.rooms, r.id)
	s.streams.leave(r.id)
	r.gone(ErrRoomLeft)
}
