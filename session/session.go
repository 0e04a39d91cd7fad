// Package session owns realtime sessions: stable session and player ids,
// the session stream (sequence, replay buffer, acks), client sequence
// numbers with duplicate drop, resume tokens, the seat hold after a
// disconnect, and the Registry that finds sessions by id, player and resume
// token. A session outlives its connections; the gateway attaches and
// detaches them.
package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
)

// Conn is one connection of a session, implemented by the gateway.
type Conn interface {
	// Send queues a complete frame without blocking. It returns false when
	// the connection is closed or its queue overflowed (it then closes
	// itself as a slow consumer).
	Send(frame []byte) bool
	// Close sends what is queued, then a close frame with code, then ends
	// the connection. It does not block.
	Close(code protocol.CloseCode, reason string)
}

// Session is one player's presence on this node, across connections.
type Session struct {
	id       string
	player   *tandem.Player
	registry *Registry
	log      *slog.Logger

	// dispatchMu is held while a client frame is checked and handed to a
	// room, and while a resume swaps connections, so that no frame of an
	// old connection is processed after a resume read the client seq.
	// Rooms never take it.
	dispatchMu sync.Mutex

	rtt     atomic.Int64 // last measured round trip, nanoseconds
	started time.Time
	// tokenIAT is the iat of the token the session was opened or last
	// resumed with (0: not known yet): a revocation ends the session if
	// it refuses that token.
	tokenIAT atomic.Int64

	rttMu      sync.Mutex
	rttSamples []uint32 // the last rttWindow round trips in µs; allocated at the first
	rttNext    int

	mu        sync.Mutex
	codec     protocol.CodecID
	conn      Conn // nil while held
	heldSince time.Time
	ended     bool
	rooms     []room.Link // join order
	clientSeq uint64      // last client seq processed
	tokens    []string    // valid resume tokens, oldest first
	endCode   protocol.CloseCode
	endWhy    string
	seq       uint64 // session stream
	buffer    *room.ReplayBuffer[*protocol.Envelope]
}

// ID returns the session id.
func (s *Session) ID() string { return s.id }

// Player returns the session's player.
func (s *Session) Player() *tandem.Player { return s.player }

// Logger returns a logger carrying the session and player ids.
func (s *Session) Logger() *slog.Logger { return s.log }

// Ended reports whether the session has ended for good.
func (s *Session) Ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// RTT returns the last round trip measured by ping/pong (0 before the
// first).
func (s *Session) RTT() time.Duration { return time.Duration(s.rtt.Load()) }

// rttWindow is how many recent round trips a session keeps for its RTT
// summary: enough for a p99 that means something, 256 bytes a session.
const rttWindow = 64

// SetRTT records a measured round trip.
func (s *Session) SetRTT(d time.Duration) {
	s.rtt.Store(int64(d))
	us := uint32(min(d.Microseconds(), 1<<31))
	s.rttMu.Lock()
	defer s.rttMu.Unlock()
	if len(s.rttSamples) < rttWindow {
		if s.rttSamples == nil {
			// The whole window at once: growing it by append would
			// allocate some seven times a session.
			s.rttSamples = make([]uint32, 0, rttWindow)
		}
		s.rttSamples = append(s.rttSamples, us)
		return
	}
	s.rttSamples[s.rttNext] = us
	s.rttNext = (s.rttNext + 1) % rttWindow
}

// RTTSummary returns the p50, p99 and maximum of the recent round trips,
// in milliseconds; nil before the first measure.
func (s *Session) RTTSummary() []float64 {
	s.rttMu.Lock()
	xs := slices.Clone(s.rttSamples)
	s.rttMu.Unlock()
	if len(xs) == 0 {
		return nil
	}
	slices.Sort(xs)
	at := func(q float64) float64 {
		i := int(q*float64(len(xs))+0.5) - 1
		return float64(xs[max(0, min(i, len(xs)-1))]) / 1000
	}
	return []float64{at(0.5), at(0.99), float64(xs[len(xs)-1]) / 1000}
}

// SetTokenIssuedAt records the iat (Unix seconds) of the token the
// session was opened or resumed with.
func (s *Session) SetTokenIssuedAt(iat int64) { s.tokenIAT.Store(iat) }

// TokenIssuedAt returns the iat SetTokenIssuedAt recorded (0: none).
func (s *Session) TokenIssuedAt() int64 { return s.tokenIAT.Load() }

// Connected reports whether a connection is attached (false: held for a
// resume, or ended).
func (s *Session) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil
}

// Rooms returns the ids of the rooms the session is in, in join order.
func (s *Session) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.rooms))
	for i, l := range s.rooms {
		ids[i] = l.ID()
	}
	return ids
}

// Started returns when the session opened.
func (s *Session) Started() time.Time { return s.started }

// EndCode returns the close code and the reason the session ended with
// (zero before it ended; 0 for a seat hold that expired).
func (s *Session) EndCode() (protocol.CloseCode, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endCode, s.endWhy
}

// Codec returns the codec of the session's current connection.
func (s *Session) Codec() protocol.CodecID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codec
}

// Deliver sends a room-stream frame to the current connection, if any.
// Frames a held session misses stay in the room's buffer for the resume.
func (s *Session) Deliver(frame []byte) {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		c.Send(frame)
	}
}

// Reply sends env on the session stream: it takes the next session seq, is
// buffered for replay, and is sent if a connection is attached.
func (s *Session) Reply(env *protocol.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.seq++
	env.Seq = s.seq
	b, err := s.registry.cfg.Encoder(s.codec, env)
	if err != nil {
		s.log.Error("encode session frame", "err", err)
		return
	}
	s.buffer.Push(s.seq, len(b), env)
	if s.conn != nil {
		s.conn.Send(b)
	}
}

// JoinedRoom records that the session is in a room. It reports whether a
// connection is attached, and false for ok when the session has ended (the
// room then drops the join: nobody would tell it the player left).
func (s *Session) JoinedRoom(l room.Link) (connected, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false, false
	}
	if !slices.ContainsFunc(s.rooms, func(x room.Link) bool { return x.ID() == l.ID() }) {
		s.rooms = append(s.rooms, l)
	}
	return s.conn != nil, true
}

// LeftRoom records that the session left a room.
func (s *Session) LeftRoom(roomID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rooms = slices.DeleteFunc(s.rooms, func(x room.Link) bool { return x.ID() == roomID })
}

// Room returns the link to a room the session is in.
func (s *Session) Room(roomID string) (room.Link, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.rooms {
		if l.ID() == roomID {
			return l, true
		}
	}
	return nil, false
}

// RoomCount returns the number of rooms the session is in.
func (s *Session) RoomCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// Dispatch runs fn for a client frame with client seq seq that arrived on
// conn c, exactly once: it returns (false, nil) without calling fn for a
// duplicate or for a frame of a connection the session no longer uses, and
// an error for a seq that skips ahead.
func (s *Session) Dispatch(c Conn, seq uint64, fn func()) (bool, error) {
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	s.mu.Lock()
	switch {
	case s.conn != c || s.ended:
		s.mu.Unlock()
		return false, nil
	case seq <= s.clientSeq:
		s.mu.Unlock()
		return false, nil
	case seq != s.clientSeq+1:
		want := s.clientSeq + 1
		s.mu.Unlock()
		return false, tandem.Errorf(tandem.EInvalid, "client seq %d skips ahead of %d", seq, want)
	}
	s.clientSeq = seq
	s.mu.Unlock()
	fn()
	return true, nil
}

// ClientSeq returns the last client seq processed.
func (s *Session) ClientSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientSeq
}

// Ack frees session-stream frames the client holds.
func (s *Session) Ack(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.seq {
		s.buffer.TrimThrough(seq)
	}
}

// ConfirmToken is called with the first frame a connection sends after its
// connected frame: the client holds the newest resume token, so the older
// ones stop being valid.
func (s *Session) ConfirmToken(c Conn) {
	s.registry.mu.Lock()
	defer s.registry.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != c || len(s.tokens) <= 1 {
		return
	}
	for _, t := range s.tokens[:len(s.tokens)-1] {
		delete(s.registry.byToken, t)
	}
	s.tokens = s.tokens[len(s.tokens)-1:]
}

// attach makes c the session's connection: it sends connected (built by
// connected, given the rooms the session is in), then replays the session
// stream after pos. It returns those rooms, read in the same step as the
// connection is set, so a room joined concurrently is either in the list
// (and gets a Rejoin) or sees the connection up. It returns false if the
// session stream no longer covers pos. The registry's lock is held.
func (s *Session) attach(c Conn, codec protocol.CodecID, sessionPos uint64, connected func(rooms []string) *protocol.Envelope) ([]room.Link, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sessionPos > s.seq || !s.buffer.Covers(sessionPos) {
		return nil, false
	}
	links := slices.Clone(s.rooms)
	ids := make([]string, len(links))
	for i, l := range links {
		ids[i] = l.ID()
	}
	b, err := s.registry.cfg.Encoder(codec, connected(ids))
	if err != nil {
		s.log.Error("encode connected", "err", err)
		return nil, false
	}
	s.conn, s.codec, s.heldSince = c, codec, time.Time{}
	c.Send(b)
	s.buffer.After(sessionPos, func(_ uint64, env *protocol.Envelope) bool {
		b, err := s.registry.cfg.Encoder(codec, env)
		if err == nil {
			c.Send(b)
		}
		return err == nil
	})
	return links, true
}

// detach takes the connection away, if it is still c (nil: any), and
// returns the rooms to tell. The session is held from now.
func (s *Session) detach(c Conn, now time.Time) (Conn, []room.Link, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || (c != nil && s.conn != c) || s.ended {
		return nil, nil, false
	}
	old := s.conn
	s.conn, s.heldSince = nil, now
	return old, slices.Clone(s.rooms), true
}

// disconnectRooms tells each room the member's connection is lost and waits
// until the room has taken it in, so that no room sends the session a live
// frame after this returns until its Rejoin.
func (s *Session) disconnectRooms(ctx context.Context, links []room.Link) {
	for _, l := range links {
		if err := l.Disconnect(ctx, s); err != nil && ctx.Err() == nil {
			s.log.Debug("disconnect from room", "room", l.ID(), "err", err)
		}
	}
}

func newToken(node string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return node + "." + base64.RawURLEncoding.EncodeToString(b[:])
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
