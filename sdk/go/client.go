package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/tandemhq/tandem/protocol"
)

// Config configures a Client. URL and Token are required.
type Config struct {
	// URL of the realtime endpoint, such as ws://127.0.0.1:7701/ws: where
	// the client connects first. After a move (a Join answered with a seat
	// reservation) the client uses the new node's URL, and after a failed
	// dial the one Locate names.
	URL string
	// Locate, if set, returns the realtime URL to use now. The client asks
	// it before the next reconnect attempt when the node seems gone: after
	// an attempt whose dial failed, and after a node_draining or node_gone
	// close (or a `moved` close no Join of this client caused). It asks at
	// most once per second (or per backoff delay, when longer) during one
	// disconnection, uses the answer until it has to ask again, and keeps
	// the URL it had when Locate fails.
	//
	// While the player's session lives on a node, Locate must name that
	// node: the client resumes wherever Locate says, so an answer naming
	// another node means the session's node is gone (the client then starts
	// a new session there). Auth.RealtimeURLSource asks the web server,
	// which answers so: the node holding the session while it is
	// registered, otherwise a live, lightly loaded one. nil: always the URL
	// in use (Config.URL, or the node a move led to).
	Locate func(ctx context.Context) (string, error)
	// Token returns a fresh realtime token. It is called at every connect
	// and reconnect, with a context that ends when the client is closed.
	Token func(ctx context.Context) (string, error)
	// Codec picks the subprotocol: protocol.CodecJSON (the default) or
	// protocol.CodecBinary.
	Codec protocol.CodecID
	// NetDial, if set, opens the TCP connection (tests route it through a
	// fault proxy).
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MinBackoff and MaxBackoff bound the delay before each reconnect
	// attempt (full jitter; defaults 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
	// HeartbeatTimeout: a connection on which nothing is read for this long
	// is treated as lost. Default 2.5 × the server's heartbeat_ms. It also
	// bounds each write and the handshake.
	HeartbeatTimeout time.Duration
	// AckInterval: how often ack_frame reports the positions while frames
	// arrive (default 100ms).
	AckInterval time.Duration
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
	// SDK is sent in connect.sdk (default "tandem-go").
	SDK string
}

// JoinOptions describe a join request.
type JoinOptions struct {
	// Mode: JOIN (RoomID), CREATE (RoomType) or JOIN_OR_CREATE (RoomType).
	// UNSPECIFIED means JOIN when RoomID is set, JOIN_OR_CREATE otherwise.
	Mode     protocol.JoinMode
	RoomID   string
	RoomType string
	Options  []byte // creation options, given to the room's Init
	Metadata []byte // given to the room's JoinAttempt
}

const (
	defaultMinBackoff  = 100 * time.Millisecond
	defaultMaxBackoff  = 5 * time.Second
	defaultAckInterval = 100 * time.Millisecond
	defaultHeartbeat   = 10 * time.Second // until the server says heartbeat_ms
	defaultSDK         = "tandem-go"
	closeWait          = time.Second // Close waits this long for the server's close echo
	eventBuffer        = 64
)

var (
	errSeatHoldOver = errors.New("tandem: disconnected longer than the seat hold")
	errNotResumed   = errors.New("tandem: the server started a new session instead of resuming")
	errMoved        = errors.New("tandem: the session moved to another node")
	errTooManyMoves = errors.New("tandem: too many seat reservations for one join")
)

// maxMoves bounds how many seat reservations one Join follows: a cluster
// that keeps sending the client on is broken, not busy.
const maxMoves = 3

// Client is one player's connection to a realtime node, reconnecting and
// resuming as docs/protocol.md says. It is safe for concurrent use.
//
// Goroutines: run (started by Dial, ends when the client stops; it
// dispatches the frames of the connection, emits the events and reconnects);
// per connection, a reader (owned by whoever serves the connection: run,
// then a drain) and keepalive (owned by run's serve, which waits for it);
// after a move, drain (started by run, which waits for it before it
// returns), which serves the old connection until the server closes it;
// tasks a call leaves behind (Matchmake's cancel of its ticket), which end
// with the client. Close stops them all and waits.
type Client struct {
	cfg   Config
	codec protocol.Codec
	log   *slog.Logger
	start time.Time // monotonic base of ping time_us

	ctx       context.Context // ends at Close
	cancel    context.CancelFunc
	done      chan struct{} // closed when run returns
	events    chan Event    // sent to by run and drains, closed by run
	closeOnce sync.Once
	quiet     chan struct{} // closed when run ends the client: events but Closed are dropped
	quietOnce sync.Once
	drains    sync.WaitGroup

	// moves hands run the connection a Join opened to follow a seat
	// reservation; moveEnded wakes run when a move failed instead.
	// moveSlot (capacity 1) is held by the one Join moving the session:
	// two moves at once would race for the session.
	moves     chan *handoff
	moveEnded chan struct{}
	moveSlot  chan struct{}

	heartbeat atomic.Int64 // server heartbeat interval (ns)
	rtt       atomic.Int64 // own ping measurement (ns)
	serverRTT atomic.Int64 // the server's measurement from its ping (ns)

	// wmu: one writer at a time on the connection, and the order of reliable
	// frames on the wire is their seq order. Taken before mu.
	wmu sync.Mutex

	mu      sync.Mutex
	conn    *wsConn  // current connection; nil while (re)connecting
	stopErr error    // why the client stopped (ErrClosed, a final *CloseError)
	url     string   // where to connect now
	sess    *session // the current session
	nextCid uint64   // across sessions, so a reply never answers a request of another
	moving  bool     // a Join is connecting to another node; run may get its hand-off

	// tickets: the Matchmake calls waiting for their ticket's pushed
	// statuses, by queue (matchmaking.go). Guarded by mu.
	tickets map[string]*ticketWait
	// ticketResync: how often a waiting Matchmake asks for its ticket's
	// status (ticketResyncInterval; tests shorten it).
	ticketResync time.Duration
	// tasks: goroutines a call leaves behind (Matchmake's cancel), added
	// to under mu while the client has not stopped. Close waits for them.
	tasks sync.WaitGroup
}

// session is the client's state of one server session. The client has one
// current session; after a move the old one lives on, served by a drain,
// until the old node closes its connection. Guarded by Client.mu.
type session struct {
	id          string
	playerID    string
	node        string // the node holding the session (connected.node)
	resumeToken string
	seatHold    time.Duration
	maxFrame    int
	seq         uint64 // last client seq assigned
	resend      resendBuffer
	pending     map[uint64]*pending
	streams     tracker
	rooms       map[string]*Room
}

func newSession() *session {
	return &session{pending: map[uint64]*pending{}, streams: newTracker(), rooms: map[string]*Room{}}
}

type reply struct {
	env  *protocol.Envelope
	room *Room    // joined
	sess *session // the session the request was sent on
	err  error
}

// pending is a request waiting for its reply by cid in the pending map of
// sess, the session it was sent on (set by send).
type pending struct {
	ch   chan reply
	sess *session
	cid  uint64
}

func newPending() *pending { return &pending{ch: make(chan reply, 1)} }

func (p *pending) resolve(r reply) {
	select {
	case p.ch <- r:
	default:
	}
}

// Dial connects, sends connect and waits for connected. A refused connect
// returns a *CloseError (which wraps the *ServerError the server sent with
// it, such as unauthenticated for a bad token); a failed dial or handshake
// returns that error. On success the client reconnects by itself until
// Close or a final close.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("tandem: Config.URL is required")
	}
	if cfg.Token == nil {
		return nil, errors.New("tandem: Config.Token is required")
	}
	if cfg.Codec >= protocol.NumCodecs {
		return nil, fmt.Errorf("tandem: unknown codec %d", cfg.Codec)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = defaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.AckInterval <= 0 {
		cfg.AckInterval = defaultAckInterval
	}
	if cfg.SDK == "" {
		cfg.SDK = defaultSDK
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:       cfg,
		codec:     cfg.Codec.Codec(),
		log:       log,
		start:     time.Now(),
		done:      make(chan struct{}),
		events:    make(chan Event, eventBuffer),
		quiet:     make(chan struct{}),
		moves:     make(chan *handoff),
		moveEnded: make(chan struct{}, 1),
		moveSlot:  make(chan struct{}, 1),
		url:       cfg.URL,
		sess:      newSession(),
		tickets:   map[string]*ticketWait{},

		ticketResync: ticketResyncInterval,
	}
	c.heartbeat.Store(int64(defaultHeartbeat))
	c.ctx, c.cancel = context.WithCancel(context.Background())
	wc, env, err := c.handshake(ctx, cfg.URL, false, "")
	if err == nil {
		err = c.attach(wc, env)
	}
	if err != nil {
		c.cancel()
		return nil, err
	}
	go c.run(wc)
	return c, nil
}

// SessionID returns the id of the current session.
func (c *Client) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.id
}

// PlayerID returns the player id of the session (the token's subject).
func (c *Client) PlayerID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.playerID
}

// RTT returns the last round trip measured with the client's pings, or the
// server's measurement until the first pong; 0 before any.
func (c *Client) RTT() time.Duration {
	if d := c.rtt.Load(); d > 0 {
		return time.Duration(d)
	}
	return time.Duration(c.serverRTT.Load())
}

// Events returns the channel of everything the application sees, in stream
// order, exactly once. Read it continuously (see the package doc). It is
// closed when the client stops: after Close, or after a Closed event.
func (c *Client) Events() <-chan Event { return c.events }

// Join joins a room (see JoinOptions) and waits for the answer: the room,
// or a *ServerError (not_found, room_full, join_rejected, quota_exceeded…).
// A Joined event precedes the room's stream events on Events.
//
// When the room lives on another node, the server answers with a seat
// reservation and Join follows it: it connects to that node with the seat
// token (a new session there, with a fresh token from Config.Token) and
// joins the room on it. The client then uses the new connection; the old
// node ends the old session, whose rooms end with a Left event with
// LEAVE_REASON_MOVED, and closes the old connection with the silent
// `moved` (no Disconnected, no Closed). When the new node refuses the seat,
// Join returns its error (a *CloseError wrapping the *ServerError, such as
// not_found) and the old connection goes on as before.
//
// One Join moves the session at a time. A Join whose reservation arrives
// while another Join moves the session, or after it did, sends its join
// again on the session current once that move is over, instead of
// following a reservation made for a session that is gone. A Join answered
// with a reservation more than a few times fails.
func (c *Client) Join(ctx context.Context, o JoinOptions) (*Room, error) {
	env := joinFrame(o)
	for moves := 0; ; moves++ {
		rep, err := c.request(ctx, env)
		if errors.Is(err, errMoved) {
			// Sent on a session that another Join moved away, and ended
			// before it was answered: ask the session current now.
			if moves == maxMoves {
				return nil, errTooManyMoves
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if rep.room != nil {
			return rep.room, nil
		}
		sr := rep.env.GetSeatReservation()
		if sr == nil {
			return nil, unexpectedReply(rep.env)
		}
		if moves == maxMoves {
			return nil, errTooManyMoves
		}
		followed, err := c.follow(ctx, sr, rep.sess)
		if err != nil {
			return nil, err
		}
		if followed {
			env = joinFrame(JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomID: sr.GetRoomId(), Metadata: o.Metadata})
		}
	}
}

// RPC calls a server-side handler and waits for its reply data, or a
// *ServerError (unknown_rpc, or the handler's error).
func (c *Client) RPC(ctx context.Context, method string, data []byte) ([]byte, error) {
	rep, err := c.request(ctx, rpcFrame(method, data))
	if err != nil {
		return nil, err
	}
	r := rep.env.GetRpcReply()
	if r == nil {
		return nil, unexpectedReply(rep.env)
	}
	return r.GetData(), nil
}

// ListRooms returns the open rooms of a type ("" = every type).
func (c *Client) ListRooms(ctx context.Context, roomType string) ([]*protocol.RoomInfo, error) {
	rep, err := c.request(ctx, listRoomsFrame(roomType))
	if err != nil {
		return nil, err
	}
	l := rep.env.GetRoomList()
	if l == nil {
		return nil, unexpectedReply(rep.env)
	}
	return l.GetRooms(), nil
}

func unexpectedReply(env *protocol.Envelope) error {
	return fmt.Errorf("tandem: unexpected reply %T", env.GetBody())
}

// Close closes the connection normally (1000), stops every goroutine and
// waits for them, then closes Events. Pending requests fail with ErrClosed.
// It is idempotent and always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if c.stopErr == nil {
			c.stopErr = ErrClosed
		}
		if c.conn != nil {
			// A write stuck on a peer that does not read must not hold
			// Close up for a whole HeartbeatTimeout.
			_ = c.conn.nc.SetWriteDeadline(time.Now().Add(closeWait))
		}
		c.mu.Unlock()
		c.cancel()

		c.wmu.Lock()
		c.mu.Lock()
		wc := c.conn
		c.mu.Unlock()
		if wc != nil {
			_ = wc.writeControl(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""), closeWait)
		}
		c.wmu.Unlock()
		if wc != nil {
			// Let the reader see the server's close echo, so the server
			// gets a clean close, but not for long.
			t := time.NewTimer(closeWait)
			select {
			case <-c.done:
			case <-t.C:
				wc.nc.Close()
			}
			t.Stop()
		}
		<-c.done
		c.tasks.Wait()
	})
	return nil
}

// request sends a reliable frame and waits for its reply by cid. The request
// stays pending across a resume; it fails when the session is lost or the
// client stops.
func (c *Client) request(ctx context.Context, env *protocol.Envelope) (reply, error) {
	if err := ctx.Err(); err != nil {
		return reply{}, err
	}
	p := newPending()
	if _, err := c.send(env, p, nil); err != nil {
		return reply{}, err
	}
	select {
	case rep := <-p.ch:
		rep.sess = p.sess
		return rep, rep.err
	case <-ctx.Done():
		c.forget(p)
		return reply{}, ctx.Err()
	}
}

// forget stops waiting for the reply to p, in the session p was sent on
// (which a move may have made an old one).
func (c *Client) forget(p *pending) {
	c.mu.Lock()
	if p.sess != nil {
		delete(p.sess.pending, p.cid)
	}
	c.mu.Unlock()
}

// takePending removes and returns the request of s waiting for cid. The
// caller holds mu.
func (s *session) takePending(cid uint64) *pending {
	if cid == 0 {
		return nil
	}
	p := s.pending[cid]
	delete(s.pending, cid)
	return p
}

// send queues a reliable frame: it gets the next cid and client seq, goes to
// the resend buffer, and is written at once when connected (otherwise it is
// sent after the next connected). p, if set, waits for the reply by cid; r,
// if set, is the room the frame is for, which must still be joined.
func (c *Client) send(env *protocol.Envelope, p *pending, r *Room) (uint64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if err := c.stopErr; err != nil {
		c.mu.Unlock()
		return 0, err
	}
	if r != nil && r.err != nil {
		err := r.err
		c.mu.Unlock()
		return 0, err
	}
	s := c.sess
	if r != nil && r.sess != s {
		// The room is on the old node; the server is ending it there (a
		// Left with LEAVE_REASON_MOVED follows).
		c.mu.Unlock()
		return 0, fmt.Errorf("%w: %w", ErrRoomLeft, errMoved)
	}
	env.Cid = c.nextCid + 1
	env.Seq = s.seq + 1
	payload, err := c.codec.Marshal(nil, env)
	if err != nil {
		c.mu.Unlock()
		return 0, fmt.Errorf("tandem: encode: %w", err)
	}
	if s.maxFrame > 0 && len(payload) > s.maxFrame {
		c.mu.Unlock()
		return 0, ErrFrameTooLarge
	}
	c.nextCid, s.seq = env.Cid, env.Seq
	f := outFrame{seq: env.Seq, cid: env.Cid, payload: payload}
	if m := env.GetRoomMessage(); m != nil {
		f.room, f.topic = m.GetRoomId(), m.GetTopic()
	}
	s.resend.add(f)
	if p != nil {
		p.sess, p.cid = s, env.Cid
		s.pending[env.Cid] = p
	}
	wc := c.conn
	c.mu.Unlock()
	if wc != nil {
		c.writeLocked(wc, payload)
	}
	return env.Cid, nil
}

// writeLocked writes a frame on wc; the caller holds wmu. A failed write
// closes the connection: the reader notices, and the reconnect loop resends
// what is unacknowledged.
func (c *Client) writeLocked(wc *wsConn, payload []byte) {
	if err := wc.writeFrame(payload, c.hbTimeout()); err != nil && !wc.closeSent {
		c.log.Debug("tandem: write failed", "err", err)
		wc.nc.Close()
	}
}

// sendUnreliable writes a frame that is not numbered (ping, pong, ack_frame).
func (c *Client) sendUnreliable(wc *wsConn, env *protocol.Envelope) {
	payload, err := c.codec.Marshal(nil, env)
	if err != nil {
		c.log.Warn("tandem: encode", "err", err)
		return
	}
	c.wmu.Lock()
	c.writeLocked(wc, payload)
	c.wmu.Unlock()
}

// sendAck writes ack_frame with the current positions, if frames arrived
// since the last one.
func (c *Client) sendAck(wc *wsConn) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if !c.sess.streams.dirty || c.conn != wc {
		c.mu.Unlock()
		return
	}
	c.sess.streams.dirty = false
	env := ackFrame(c.sess.streams.positions())
	c.mu.Unlock()
	payload, err := c.codec.Marshal(nil, env)
	if err != nil {
		c.log.Warn("tandem: encode", "err", err)
		return
	}
	c.writeLocked(wc, payload)
}

// control returns the function that answers the server's control frames on
// wc.
func (c *Client) control(wc *wsConn) controlFunc {
	return func(op ws.OpCode, payload []byte) error {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return wc.writeControl(op, payload, c.hbTimeout())
	}
}

// hbTimeout is how long the connection may be silent (and a write may take).
func (c *Client) hbTimeout() time.Duration {
	if c.cfg.HeartbeatTimeout > 0 {
		return c.cfg.HeartbeatTimeout
	}
	return time.Duration(c.heartbeat.Load()) * 5 / 2
}

// nowUS is the time_us of the client's pings: microseconds on the monotonic
// clock since the client started (never 0).
func (c *Client) nowUS() int64 { return time.Since(c.start).Microseconds() + 1 }
