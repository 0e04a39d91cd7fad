package session

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
)

// Config configures a Registry.
type Config struct {
	// Node is this node's id; resume tokens name it.
	Node string
	// SeatHold is how long a session is held after its connection is lost.
	SeatHold time.Duration
	// ReplayCount and ReplayBytes bound each session stream's buffer.
	ReplayCount, ReplayBytes int
	// Encoder encodes frames (the gateway's: complete WebSocket frames).
	Encoder room.Encoder
	Metrics *observe.Realtime
	Logger  *slog.Logger
	// OnOpen, if set, runs for a new session before anything can end it:
	// whatever it records comes before OnEnd's record.
	OnOpen func(s *Session)
	// OnEnd, if set, runs once when a session ends for good.
	OnEnd func(s *Session)
}

// Registry holds the sessions of a node. It is safe for concurrent use.
type Registry struct {
	cfg Config

	mu       sync.Mutex
	byID     map[string]*Session
	byPlayer map[string]*Session
	byToken  map[string]*Session
}

// NewRegistry returns an empty Registry.
func NewRegistry(cfg Config) *Registry {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReplayCount <= 0 {
		cfg.ReplayCount = 1024
	}
	if cfg.ReplayBytes <= 0 {
		cfg.ReplayBytes = 1 << 20
	}
	return &Registry{
		cfg:      cfg,
		byID:     make(map[string]*Session),
		byPlayer: make(map[string]*Session),
		byToken:  make(map[string]*Session),
	}
}

// Connected builds the connected frame for a session and its new resume
// token; the gateway fills in its own fields.
type Connected func(s *Session, resumeToken string, resumed bool, ack uint64, rooms []string) *protocol.Envelope

// Open starts a new session for p on connection c. A session the player
// already has on this node ends with duplicate_session.
func (g *Registry) Open(ctx context.Context, p *tandem.Player, codec protocol.CodecID, c Conn, connected Connected) *Session {
	return g.open(ctx, p, codec, c, connected, false)
}

// OpenMoved is Open for a player who followed a seat reservation: a
// session the player already has on this node ends with moved, as one on
// another node would.
func (g *Registry) OpenMoved(ctx context.Context, p *tandem.Player, codec protocol.CodecID, c Conn, connected Connected) *Session {
	return g.open(ctx, p, codec, c, connected, true)
}

func (g *Registry) open(ctx context.Context, p *tandem.Player, codec protocol.CodecID, c Conn, connected Connected, moved bool) *Session {
	s := &Session{
		id:       newID(),
		player:   p,
		registry: g,
		started:  time.Now(),
		buffer:   room.NewReplayBuffer[*protocol.Envelope](g.cfg.ReplayCount, g.cfg.ReplayBytes),
	}
	s.log = g.cfg.Logger.With("session", s.id, "player", p.ID)
	token := newToken(g.cfg.Node)
	s.tokens = []string{token}
	if g.cfg.OnOpen != nil {
		g.cfg.OnOpen(s)
	}

	g.mu.Lock()
	old := g.byPlayer[p.ID]
	g.byID[s.id] = s
	g.byPlayer[p.ID] = s
	g.byToken[token] = s
	s.attach(c, codec, 0, func([]string) *protocol.Envelope { return connected(s, token, false, 0, nil) })
	g.mu.Unlock()

	s.log.Info("session opened", "codec", codec.Codec().Name())
	switch {
	case old != nil && moved:
		g.end(ctx, old, protocol.LeaveReason_LEAVE_REASON_MOVED, protocol.CloseMoved, "moved")
	case old != nil:
		g.end(ctx, old, protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED, protocol.CloseDuplicateSession, "duplicate session")
	}
	return s
}

// Resume attaches connection c to the held (or still attached) session
// that resumeToken names, after checking it belongs to player p. The
// session stream is replayed from positions; each room replays its stream
// or sends a gap. A token that names no session gives ENotFound: the client
// must start a new session.
func (g *Registry) Resume(ctx context.Context, resumeToken string, p *tandem.Player, codec protocol.CodecID, c Conn, positions []*protocol.StreamPos, connected Connected) (*Session, error) {
	g.mu.Lock()
	s := g.byToken[resumeToken]
	g.mu.Unlock()
	if s == nil || s.player.ID != p.ID {
		g.cfg.Metrics.Resumes.WithLabelValues(observe.ResumeExpired).Inc()
		return nil, tandem.Errorf(tandem.ENotFound, "no held session for this resume token")
	}

	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	// Take the connection away from a previous connection that may still
	// be up (a half-open socket), and wait for the rooms to stop sending.
	if old, links, ok := s.detach(nil, time.Now()); ok {
		old.Close(protocol.CloseReplaced, "resumed on another connection")
		s.disconnectRooms(ctx, links)
	}

	var sessionPos uint64
	roomPos := make(map[string]*protocol.StreamPos, len(positions))
	for _, pos := range positions {
		if pos.GetRoom() == "" {
			sessionPos = pos.GetSeq()
		} else {
			roomPos[pos.GetRoom()] = pos
		}
	}

	g.mu.Lock()
	if s.ended || g.byToken[resumeToken] != s {
		g.mu.Unlock()
		g.cfg.Metrics.Resumes.WithLabelValues(observe.ResumeExpired).Inc()
		return nil, tandem.Errorf(tandem.ENotFound, "no held session for this resume token")
	}
	token := newToken(g.cfg.Node)
	s.mu.Lock()
	// The client holds the token it presented, and the new one once it
	// reads connected; it can hold no other. Keeping exactly these two
	// (rather than the last few issued) keeps the session resumable however
	// many handshakes in a row are cut after the server took them.
	for _, t := range s.tokens {
		if t != resumeToken {
			delete(g.byToken, t)
		}
	}
	s.tokens = []string{resumeToken, token}
	ack := s.clientSeq
	s.mu.Unlock()
	g.byToken[token] = s
	links, attached := s.attach(c, codec, sessionPos, func(rooms []string) *protocol.Envelope {
		return connected(s, token, true, ack, rooms)
	})
	g.mu.Unlock()
	if !attached {
		g.cfg.Metrics.Resumes.WithLabelValues(observe.ResumeExpired).Inc()
		g.end(ctx, s, protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED, protocol.CloseSessionExpired, "session stream no longer buffered")
		return nil, tandem.Errorf(tandem.ENotFound, "the session stream is no longer buffered")
	}
	for _, l := range links {
		if err := l.Rejoin(ctx, s, roomPos[l.ID()]); err != nil {
			s.log.Debug("rejoin room", "room", l.ID(), "err", err)
		}
	}
	g.cfg.Metrics.Resumes.WithLabelValues(observe.ResumeReplayed).Inc()
	s.log.Info("session resumed", "client_seq", ack, "session_pos", sessionPos, "rooms", len(links))
	return s, nil
}

// Detach is called when connection c of s has ended with a code of the
// resume class: the session is held for the seat hold and its rooms see a
// disconnect.
func (g *Registry) Detach(ctx context.Context, s *Session, c Conn) {
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	if _, links, ok := s.detach(c, time.Now()); ok {
		s.log.Info("session held", "seat_hold", g.cfg.SeatHold.String())
		s.disconnectRooms(ctx, links)
	}
}

// End ends a session at once (a final close, or the node closing): its rooms
// see it leave with reason and an attached connection closes with code.
func (g *Registry) End(ctx context.Context, s *Session, reason protocol.LeaveReason, code protocol.CloseCode, why string) {
	g.end(ctx, s, reason, code, why)
}

// EndFrom ends the session like End, but only while connection c is
// still the session's connection.
func (g *Registry) EndFrom(ctx context.Context, s *Session, c Conn, reason protocol.LeaveReason, code protocol.CloseCode, why string) {
	g.endIf(ctx, s, func() bool { return s.conn == c }, reason, code, why)
}

func (g *Registry) end(ctx context.Context, s *Session, reason protocol.LeaveReason, code protocol.CloseCode, why string) {
	g.endIf(ctx, s, nil, reason, code, why)
}

// endIf ends the session if cond (checked under the session's lock; nil:
// always) holds.
func (g *Registry) endIf(ctx context.Context, s *Session, cond func() bool, reason protocol.LeaveReason, code protocol.CloseCode, why string) {
	g.mu.Lock()
	s.mu.Lock()
	if s.ended || (cond != nil && !cond()) {
		s.mu.Unlock()
		g.mu.Unlock()
		return
	}
	s.ended = true
	s.endCode, s.endWhy = code, why
	conn, links, tokens := s.conn, s.rooms, s.tokens
	s.conn, s.rooms, s.tokens = nil, nil, nil
	s.mu.Unlock()
	if g.byID[s.id] == s {
		delete(g.byID, s.id)
	}
	if g.byPlayer[s.player.ID] == s {
		delete(g.byPlayer, s.player.ID)
	}
	for _, t := range tokens {
		delete(g.byToken, t)
	}
	g.mu.Unlock()

	s.log.Info("session ended", "reason", reason.String(), "close_code", code.String(), "why", why)
	if conn != nil {
		conn.Close(code, why)
	}
	if g.cfg.OnEnd != nil {
		g.cfg.OnEnd(s)
	}
	for _, l := range links {
		if err := l.Leave(ctx, s, reason); err != nil && ctx.Err() == nil {
			s.log.Debug("leave room", "room", l.ID(), "err", err)
		}
	}
}

// Sweep ends the sessions held longer than the seat hold; their rooms see
// them leave with SEAT_EXPIRED. It returns how many sessions are held.
func (g *Registry) Sweep(ctx context.Context, now time.Time) int {
	var expired []*Session
	held := 0
	g.mu.Lock()
	for _, s := range g.byID {
		s.mu.Lock()
		if s.conn == nil && !s.heldSince.IsZero() {
			if now.Sub(s.heldSince) >= g.cfg.SeatHold {
				expired = append(expired, s)
			} else {
				held++
			}
		}
		s.mu.Unlock()
	}
	g.mu.Unlock()
	for _, s := range expired {
		// Checked again under the lock: a resume may have come in since.
		stillHeld := func() bool {
			return s.conn == nil && !s.heldSince.IsZero() && now.Sub(s.heldSince) >= g.cfg.SeatHold
		}
		g.endIf(ctx, s, stillHeld, protocol.LeaveReason_LEAVE_REASON_SEAT_EXPIRED, 0, "seat hold expired")
	}
	return held
}

// ByPlayer returns the player's session on this node, live or held.
func (g *Registry) ByPlayer(playerID string) (*Session, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.byPlayer[playerID]
	return s, ok
}

// Sessions returns every session.
func (g *Registry) Sessions() []*Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	ss := make([]*Session, 0, len(g.byID))
	for _, s := range g.byID {
		ss = append(ss, s)
	}
	return ss
}

// Len returns the number of sessions, held or attached.
func (g *Registry) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.byID)
}
