// Package gateway owns the realtime node's WebSocket endpoint: the
// handshake (subprotocol, Origin allow-list), token authentication in the
// connect frame, each connection's read loop and on-demand writer with its
// bounded send queue, limits, heartbeats, and the dispatch of client frames
// to sessions, rooms and RPC handlers. One sweeper goroutine per node does
// every timed check (connect timeout, heartbeats, seat holds), so idle
// connections hold no timers.
//
// WebSocket library: github.com/gobwas/ws, chosen by measurement against the
// memory target (docs/realtime.md): it upgrades a hijacked connection and
// leaves buffering to us, so an idle connection keeps one small goroutine
// and no reader or writer buffers.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/tandemhq/tandem"
	mmservice "github.com/tandemhq/tandem/matchmaker/service"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/session"
)

// Verifier checks a realtime token and returns its claims.
type Verifier interface {
	Verify(token string, now time.Time, audience string) (tandem.Claims, error)
}

// Config configures a Gateway. Zero durations and sizes take the defaults
// of docs/config.md.
type Config struct {
	Node     string
	Verifier Verifier
	// RoomTypes are the room types this node runs.
	RoomTypes []room.Type
	// RPCs are the server-side RPC handlers by method name.
	RPCs  map[string]tandem.RPC
	Hooks tandem.Hooks
	// CORSOrigins is the allow-list of browser origins ("*" allows any).
	// Handshakes without an Origin header (non-browser clients) pass.
	CORSOrigins    []string
	MaxFrameBytes  int
	ConnectTimeout time.Duration
	Heartbeat      time.Duration // ping interval; silence for 2.5× closes
	SeatHold       time.Duration
	SendQueue      int // frames
	Limits         Limits
	// EmptyRoomTimeout disposes of rooms without members.
	EmptyRoomTimeout time.Duration
	// ReplayCount and ReplayBytes bound each stream's replay buffer.
	ReplayCount, ReplayBytes int
	RPCTimeout               time.Duration
	// CloseGrace bounds how long a closing connection may take to send
	// its close frame and to read the peer's answer (default 2 s).
	CloseGrace time.Duration
	Metrics    *observe.Realtime
	Logger     *slog.Logger

	// Cluster is the bus the node shares with the cluster (nil: a single
	// node on its own).
	Cluster tandem.Cluster
	// Events receives the node's events (nil: none).
	Events EventSink
	// AdvertiseURL is where clients reach this node (NodeInfo.URL and the
	// node_url of its seat reservations).
	AdvertiseURL string
	Version      string
	// HeartbeatInterval is how often the node rewrites its registry entry
	// (default 2 s).
	HeartbeatInterval time.Duration
	// SeatTTL is the lifetime of a seat reservation (default 15 s).
	SeatTTL time.Duration
	// Matchmaking is the node's matchmaking (nil: none); it needs Cluster.
	// The gateway starts and stops it with its cluster membership.
	Matchmaking *mmservice.Service
	// OnDrainCommand is called when an operator's drain command arrives;
	// it must start the drain and return without waiting for it.
	OnDrainCommand func()
}

func (c *Config) setDefaults() {
	if c.Node == "" {
		c.Node = "node-1"
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 10 * time.Second
	}
	if c.SeatHold <= 0 {
		c.SeatHold = 20 * time.Second
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 1024
	}
	if c.EmptyRoomTimeout <= 0 {
		c.EmptyRoomTimeout = 30 * time.Second
	}
	if c.CloseGrace <= 0 {
		c.CloseGrace = 2 * time.Second
	}
	if c.RPCTimeout <= 0 {
		c.RPCTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.SeatTTL <= 0 {
		c.SeatTTL = 15 * time.Second
	}
}

// Gateway is a realtime node's WebSocket front: it implements http.Handler
// for /ws.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	metrics  *observe.Realtime
	rooms    *room.Manager
	sessions *session.Registry
	cl       *cluster // nil without Config.Cluster

	ctx    context.Context // ends when the gateway closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the sweeper and every connection's reader

	// readBufs recycles frame read buffers, so an idle connection holds none.
	readBufs sync.Pool

	sweeping atomic.Bool // a session sweep is running
	limiters sync.Map    // *session.Session → *limiter

	mu       sync.Mutex
	conns    map[*conn]struct{}
	draining bool
	closed   bool
}

// New returns a Gateway and starts its sweeper. Close stops it.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if cfg.Verifier == nil {
		return nil, errors.New("gateway: Config.Verifier is required")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = observe.NewRealtime(observe.NewRegistry())
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, conns: make(map[*conn]struct{})}
	g.readBufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	rooms, err := room.NewManager(room.ManagerConfig{
		Types:        cfg.RoomTypes,
		Encoder:      EncodeFrame,
		ReplayCount:  cfg.ReplayCount,
		ReplayBytes:  cfg.ReplayBytes,
		EmptyTimeout: cfg.EmptyRoomTimeout,
		Logger:       cfg.Logger,
		OnGap:        func() { cfg.Metrics.Resumes.WithLabelValues(observe.ResumeSnapshot).Inc() },
		OnChange:     g.roomOpenedOrClosed,
		OnRoster:     g.rosterChanged,
		TickObserver: func(d, interval time.Duration) {
			cfg.Metrics.TickDuration.Observe(d.Seconds())
			if d > interval {
				cfg.Metrics.TickOverruns.Inc()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	g.rooms = rooms
	g.sessions = session.NewRegistry(session.Config{
		Node:        cfg.Node,
		SeatHold:    cfg.SeatHold,
		ReplayCount: cfg.ReplayCount,
		ReplayBytes: cfg.ReplayBytes,
		Encoder:     EncodeFrame,
		Metrics:     cfg.Metrics,
		Logger:      cfg.Logger,
		OnOpen: func(s *session.Session) {
			g.emit(tandem.Event{Kind: tandem.EventSessionOpened, SessionID: s.ID(), PlayerID: s.Player().ID})
		},
		OnEnd: func(s *session.Session) {
			g.limiters.Delete(s)
			g.sessionEnded(s)
			if h := cfg.Hooks.SessionEnd; h != nil {
				h(g.ctx, s.Player())
			}
		},
	})
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if cfg.Cluster != nil {
		if err := g.startCluster(); err != nil {
			g.cancel()
			_ = g.rooms.Close(context.Background())
			return nil, err
		}
	}
	g.wg.Add(1)
	go g.sweep()
	return g, nil
}

// emit hands an event to the sink, if any. It never blocks.
func (g *Gateway) emit(e tandem.Event) {
	if g.cfg.Events == nil {
		return
	}
	e.Node = g.cfg.Node
	if e.At.IsZero() {
		e.At = time.Now()
	}
	g.cfg.Events.Emit(e)
}

// roomOpenedOrClosed runs when a room is created or closed.
func (g *Gateway) roomOpenedOrClosed(info room.Info, opened bool) {
	kind := tandem.EventRoomCreated
	if !opened {
		kind = tandem.EventRoomClosed
	}
	g.emit(tandem.Event{Kind: kind, RoomID: info.ID, RoomType: info.Type})
	if g.cl != nil {
		if opened {
			g.cl.roomChanged(info.ID)
		} else {
			g.cl.roomClosed(info.ID)
		}
	}
}

// rosterChanged runs on a room goroutine after a join, leave, lock or
// unlock: it must not block.
func (g *Gateway) rosterChanged(r *room.Room, c room.RosterChange) {
	switch c.Kind {
	case room.RosterJoined:
		g.emit(tandem.Event{Kind: tandem.EventRoomJoined, RoomID: r.ID(), RoomType: r.TypeName(), PlayerID: c.PlayerID})
		if g.cl != nil {
			g.cl.joined(r.ID(), c.PlayerID)
		}
	case room.RosterLeft:
		g.emit(tandem.Event{Kind: tandem.EventRoomLeft, RoomID: r.ID(), RoomType: r.TypeName(), PlayerID: c.PlayerID, Reason: leaveReasonName(c.Reason)})
	}
	if g.cl != nil {
		g.cl.roomChanged(r.ID())
	}
}

// sessionOpened runs for a new session (not a resume). seat is the
// reservation the client connected with, if any.
// (session.opened is emitted by the registry's OnOpen, before anything
// can end the session.)
func (g *Gateway) sessionOpened(s *session.Session, seat *tandem.Seat) {
	if g.cl != nil {
		g.cl.opened(s, seat)
	}
}

// authenticated runs when a session is opened or resumed with a token
// issued at iat.
func (g *Gateway) authenticated(s *session.Session, iat int64) {
	if g.cl != nil {
		g.cl.sessionAuthenticated(s, iat)
	} else {
		s.SetTokenIssuedAt(iat)
	}
}

// sessionEnded runs once when a session ends for good.
func (g *Gateway) sessionEnded(s *session.Session) {
	code, why := s.EndCode()
	g.emit(tandem.Event{
		Kind:      tandem.EventSessionClosed,
		SessionID: s.ID(),
		PlayerID:  s.Player().ID,
		CloseCode: int(code),
		Reason:    why,
		Duration:  time.Since(s.Started()),
		RTTMillis: s.RTTSummary(),
	})
	if g.cl != nil {
		g.cl.sessionEnded(s)
	}
}

// leaveReasonName is a leave reason as events name it: "moved", "kicked".
func leaveReasonName(r protocol.LeaveReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "LEAVE_REASON_"))
}

// Rooms returns the node's room manager.
func (g *Gateway) Rooms() *room.Manager { return g.rooms }

// Sessions returns the node's session registry.
func (g *Gateway) Sessions() *session.Registry { return g.sessions }

// Ready reports whether the node accepts new sessions and rooms.
func (g *Gateway) Ready() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.draining && !g.closed
}

// ServeHTTP upgrades a WebSocket handshake and starts the connection.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && !g.originAllowed(origin) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	codec, ok := pickSubprotocol(r.Header.Values("Sec-WebSocket-Protocol"))
	if !ok {
		http.Error(w, "offer the subprotocol "+protocol.SubprotocolJSON+" or "+protocol.SubprotocolBinary, http.StatusBadRequest)
		return
	}
	if !g.Ready() {
		http.Error(w, "node is draining", http.StatusServiceUnavailable)
		return
	}
	name := codec.Codec().Name()
	u := ws.HTTPUpgrader{Timeout: g.cfg.ConnectTimeout, Protocol: func(p string) bool { return p == name }}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		g.log.Debug("websocket upgrade", "err", err, "remote", r.RemoteAddr)
		return
	}
	if n := rw.Reader.Buffered(); n > 0 {
		// The client sent its first frame with the handshake: keep those bytes.
		early, _ := rw.Reader.Peek(n)
		nc = &prefixConn{Conn: nc, prefix: append([]byte(nil), early...)}
	}
	c := newConn(g, nc, codec, time.Now())
	if !g.track(c) {
		_ = nc.Close()
		return
	}
	// A fresh goroutine: the handler's stack grew during the handshake, and
	// the read loop lives as long as the connection.
	go c.readLoop()
}

func (g *Gateway) originAllowed(origin string) bool {
	return slices.ContainsFunc(g.cfg.CORSOrigins, func(o string) bool {
		return o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin)
	})
}

func pickSubprotocol(headers []string) (protocol.CodecID, bool) {
	for _, h := range headers {
		for p := range strings.SplitSeq(h, ",") {
			if id, ok := protocol.CodecBySubprotocol(strings.TrimSpace(p)); ok {
				return id, true
			}
		}
	}
	return 0, false
}

func (g *Gateway) track(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c] = struct{}{}
	g.wg.Add(1)
	g.metrics.Connections.Inc()
	return true
}

func (g *Gateway) untrack(c *conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	g.metrics.Connections.Dec()
	g.wg.Done()
}

func (g *Gateway) connsSnapshot() []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	cs := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		cs = append(cs, c)
	}
	return cs
}

// sweepInterval is how often the sweeper looks at every connection.
func (g *Gateway) sweepInterval() time.Duration {
	iv := min(g.cfg.Heartbeat/4, g.cfg.ConnectTimeout/4, g.cfg.SeatHold/4, time.Second)
	return max(iv, 5*time.Millisecond)
}

// sweep is the node's one timer: connect timeouts, pings, missed
// heartbeats, seat-hold expiry and the gauges.
func (g *Gateway) sweep() {
	defer g.wg.Done()
	t := time.NewTicker(g.sweepInterval())
	defer t.Stop()
	silence := g.cfg.Heartbeat * 5 / 2
	for {
		select {
		case <-g.ctx.Done():
			return
		case now := <-t.C:
			for _, c := range g.connsSnapshot() {
				c.check(now, silence)
			}
			g.sweepSessions(now)
			for typ, n := range g.rooms.Count() {
				g.metrics.Rooms.WithLabelValues(typ).Set(float64(n))
			}
		}
	}
}

// sweepSessions ends the sessions whose seat hold expired, on a goroutine
// of its own: ending one waits for its rooms and the game's SessionEnd hook,
// which must not hold up the heartbeats of every other connection.
func (g *Gateway) sweepSessions(now time.Time) {
	if !g.sweeping.CompareAndSwap(false, true) {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.sweeping.Store(false)
		g.metrics.HeldSeats.Set(float64(g.sessions.Sweep(g.ctx, now)))
	}()
}

// check applies the timed rules to one connection.
func (c *conn) check(now time.Time, silence time.Duration) {
	s := c.sess.Load()
	switch {
	case s == nil && !c.framed.Load() && now.Sub(c.born) > c.g.cfg.ConnectTimeout:
		c.g.metrics.LimitViolations.WithLabelValues("connect_timeout").Inc()
		c.Close(protocol.CloseConnectTimeout, "no connect frame in time")
	case s != nil && now.UnixNano()-c.lastRead.Load() > int64(silence):
		c.closeWith(protocol.CloseHeartbeatTimeout, "missed heartbeats", true, true)
	case s != nil && now.UnixNano() >= c.nextPing.Load():
		c.nextPing.Store(now.Add(c.g.cfg.Heartbeat).UnixNano())
		c.sendUnsequenced(&protocol.Envelope{Body: &protocol.Envelope_Ping{Ping: &protocol.Ping{
			TimeUs: now.UnixMicro(), RttUs: c.rttUs.Load(),
		}}})
	}
}

// Drain stops taking new sessions, rooms and joins, lets rooms run until
// they end or ctx ends, then closes the remaining sessions with the
// rejoin-class node_draining code.
func (g *Gateway) Drain(ctx context.Context) {
	g.mu.Lock()
	g.draining = true
	g.mu.Unlock()
	if g.cl != nil {
		g.cl.draining()
	}
	g.rooms.Drain()
	t := time.NewTicker(g.sweepInterval())
	defer t.Stop()
	for g.rooms.Len() > 0 {
		select {
		case <-ctx.Done():
			g.endSessions(protocol.CloseNodeDraining, "node drained")
			g.stopCluster(ctx)
			return
		case <-t.C:
		}
	}
	g.endSessions(protocol.CloseNodeDraining, "node drained")
	g.stopCluster(ctx)
}

// stopCluster makes the node's clean exit from the cluster, if it is in one.
func (g *Gateway) stopCluster(ctx context.Context) {
	if g.cl != nil {
		g.cl.stop(ctx)
	}
}

func (g *Gateway) endSessions(code protocol.CloseCode, why string) {
	for _, s := range g.sessions.Sessions() {
		g.sessions.End(g.ctx, s, protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED, code, why)
	}
}

// Close ends every session and room and waits for every goroutine the
// gateway started, or for ctx.
func (g *Gateway) Close(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	g.endSessions(protocol.CloseNodeDraining, "node shutting down")
	err := g.rooms.Close(ctx)
	g.stopCluster(ctx)
	g.cancel()
	for _, c := range g.connsSnapshot() {
		c.abortAfter(g.cfg.CloseGrace)
	}
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		for _, c := range g.connsSnapshot() {
			c.abort()
		}
		// Aborted sockets end their readers at once; a reader stuck in a
		// game's RPC or hook that ignores its context is not waited for.
		select {
		case <-done:
		case <-time.After(g.cfg.CloseGrace):
		}
		return ctx.Err()
	}
}
