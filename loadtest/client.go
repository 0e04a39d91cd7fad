package loadtest

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// ioTimeout bounds every wait of the client for one reply, so that a
// server that stops answering ends the scenario with an error instead of
// hanging it.
const ioTimeout = 10 * time.Second

// client is one load connection: a player's session over raw frames. A
// client is used by one goroutine at a time for reading; writes may come
// from another goroutine (pongs from the reader, room messages from a
// sender) and are serialised by wmu.
type client struct {
	r      *runner
	idx    int
	player string
	codec  protocol.CodecID
	op     ws.OpCode // data frame opcode of the codec

	nc  net.Conn
	rd  *frameReader
	v   view
	env protocol.Envelope // scratch for peeks at JSON frames

	wmu  sync.Mutex
	wbuf []byte
	mask [4]byte

	frameCounts

	// Owned by the goroutine that sends reliable frames.
	seq uint64 // last client seq sent
	cid uint64

	// Stream positions, owned by the reading goroutine.
	sessSeq     uint64
	roomID      string
	epoch       uint32
	roomSeq     uint64
	resumeToken string
	node        string // the node the connection reached (connected.node)
}

func (r *runner) newClient(idx int) *client {
	c := &client{r: r, idx: idx, player: r.playerID(idx), codec: r.cfg.codec, op: ws.OpText}
	if r.cfg.codec.Codec().Binary() {
		c.op = ws.OpBinary
	}
	m := rand.Uint32()
	c.mask = [4]byte{byte(m), byte(m >> 8), byte(m >> 16), byte(m >> 24)}
	r.addBot(&c.frameCounts)
	return c
}

// frameCounts are a bot's frames read and written, for the progress line
// (an SDK bot counts the events it reads and the messages it sends).
type frameCounts struct{ in, out atomic.Uint64 }

func (r *runner) addBot(f *frameCounts) {
	r.botsMu.Lock()
	r.bots = append(r.bots, f)
	r.botsMu.Unlock()
}

// newRunID names a run: its players, devices and accounts carry it.
func newRunID() string { return strings.ToLower(cryptorand.Text()[:10]) }

// playerID is the player id of client i: loadtest-RUN-0, loadtest-RUN-1, …,
// RUN telling this run's players from an earlier run's, whose sessions
// (and tickets) the node may still be ending.
func (r *runner) playerID(i int) string { return fmt.Sprintf("loadtest-%s-%d", r.run, i) }

// dial opens the WebSocket connection.
func (c *client) dial(ctx context.Context) error {
	name := c.codec.Codec().Name()
	d := ws.Dialer{Protocols: []string{name}, Timeout: ioTimeout}
	nc, br, hs, err := d.Dial(ctx, c.r.url)
	if err != nil {
		return fmt.Errorf("dial %s: %w", c.r.url, err)
	}
	if hs.Protocol != name {
		nc.Close()
		return fmt.Errorf("the server picked subprotocol %q, want %q", hs.Protocol, name)
	}
	var rd io.Reader = nc
	if br != nil {
		rd = br // the server sent bytes right after the handshake: read them first
	}
	c.nc, c.rd = nc, newFrameReader(rd, 2048)
	if c.wbuf == nil {
		c.wbuf = make([]byte, 0, 256)
	}
	return nil
}

// send writes one envelope as a frame.
func (c *client) send(env *protocol.Envelope) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	buf, err := c.codec.Codec().Marshal(c.wbuf[:maxClientHeader], env)
	if err != nil {
		return err
	}
	_, err = c.nc.Write(maskInPlace(buf, c.op, c.mask))
	c.wbuf = buf[:0]
	c.out.Add(1)
	return err
}

// reliable sends env with the next client seq.
func (c *client) reliable(env *protocol.Envelope) error {
	c.seq++
	env.Seq = c.seq
	return c.send(env)
}

func (c *client) pong(timeUs int64) error {
	return c.send(&protocol.Envelope{Body: &protocol.Envelope_Pong{Pong: &protocol.Pong{TimeUs: timeUs}}})
}

// ack confirms the newest resume token and frees the session stream up to
// the client's position.
func (c *client) ack() error {
	return c.send(&protocol.Envelope{Body: &protocol.Envelope_AckFrame{AckFrame: &protocol.Ack{
		Positions: []*protocol.StreamPos{{Seq: c.sessSeq}},
	}}})
}

// next returns the next envelope frame, answering the server's pings on the
// way. A close frame is returned as a closedError. Error frames and close
// frames are counted for the report.
func (c *client) next() (*view, error) {
	for {
		op, p, err := c.rd.next()
		if err != nil {
			return nil, err
		}
		switch op {
		case ws.OpBinary, ws.OpText:
			c.in.Add(1)
		case ws.OpClose:
			ce := closeFrameInfo(p)
			c.r.countClose(ce)
			return nil, ce
		case ws.OpPing:
			if err := c.control(ws.OpPong, p); err != nil {
				return nil, err
			}
			continue
		case ws.OpPong:
			continue
		default:
			return nil, fmt.Errorf("loadtest: unexpected opcode %d", op)
		}
		if err := peek(c.codec, p, &c.v, &c.env); err != nil {
			return nil, fmt.Errorf("loadtest: bad frame from the server: %w", err)
		}
		switch c.v.kind {
		case kindPing:
			if err := c.pong(c.v.timeUs()); err != nil {
				return nil, err
			}
			continue
		case kindError:
			c.r.countError(&c.v)
		}
		return &c.v, nil
	}
}

// nextBefore is next with a read deadline.
func (c *client) nextBefore(deadline time.Time) (*view, error) {
	_ = c.nc.SetReadDeadline(deadline)
	v, err := c.next()
	_ = c.nc.SetReadDeadline(time.Time{})
	return v, err
}

func (c *client) control(op ws.OpCode, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = appendClientFrame(c.wbuf[:0], op, c.mask, payload)
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return err
}

// track records the stream position of a frame and reports whether it is
// new: above the last position held for its stream. (A frame at or below it
// can arrive only around a resume and is dropped by a real client.)
func (c *client) track(v *view) bool {
	if v.seq == 0 {
		return true
	}
	if len(v.room) == 0 {
		if v.seq <= c.sessSeq {
			return false
		}
		c.sessSeq = v.seq
		return true
	}
	if string(v.room) != c.roomID {
		return true
	}
	if v.seq <= c.roomSeq {
		return false
	}
	c.roomSeq = v.seq
	return true
}

// positions returns the client's stream positions, for a resume.
func (c *client) positions() []*protocol.StreamPos {
	ps := []*protocol.StreamPos{{Seq: c.sessSeq}}
	if c.roomID != "" {
		ps = append(ps, &protocol.StreamPos{Room: c.roomID, Epoch: c.epoch, Seq: c.roomSeq})
	}
	return ps
}

// replyError turns an error frame into an error.
func replyError(v *view, codec protocol.CodecID) error {
	env, err := v.decode(codec)
	if err != nil {
		return err
	}
	e := env.GetError()
	return &serverError{code: tandem.ErrorCode(e.GetCode()), msg: e.GetMessage()}
}

// serverError is an error frame from the server.
type serverError struct {
	code tandem.ErrorCode
	msg  string
}

func (e *serverError) Error() string {
	return fmt.Sprintf("server error %d (%s): %s", e.code, e.code, e.msg)
}

// connect sends connect (a resume when resumeToken is set) and waits for
// connected, then confirms the new resume token with an ack at once.
func (c *client) connect(token, resumeToken string, positions []*protocol.StreamPos) (*protocol.Connected, error) {
	err := c.send(&protocol.Envelope{Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{
		Token: token, ResumeToken: resumeToken, Positions: positions, Sdk: "tandem-loadtest",
	}}})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(ioTimeout)
	for {
		v, err := c.nextBefore(deadline)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		switch v.kind {
		case kindConnected:
			env, err := v.decode(c.codec)
			if err != nil {
				return nil, err
			}
			conn := env.GetConnected()
			c.resumeToken, c.node = conn.GetResumeToken(), conn.GetNode()
			return conn, c.ack()
		case kindError:
			return nil, fmt.Errorf("connect refused: %w", replyError(v, c.codec))
		}
	}
}

// join joins a relay room (mode CREATE or JOIN) and waits for joined.
func (c *client) join(mode protocol.JoinMode, roomID string) (*protocol.Joined, error) {
	c.cid++
	cid := c.cid
	err := c.reliable(&protocol.Envelope{Cid: cid, Body: &protocol.Envelope_Join{Join: &protocol.Join{
		Mode: mode, RoomId: roomID, RoomType: "relay",
	}}})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(ioTimeout)
	for {
		v, err := c.nextBefore(deadline)
		if err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		c.track(v)
		if v.cid != cid {
			continue
		}
		switch v.kind {
		case kindJoined:
			env, err := v.decode(c.codec)
			if err != nil {
				return nil, err
			}
			j := env.GetJoined()
			c.roomID, c.epoch, c.roomSeq = j.GetRoomId(), j.GetEpoch(), j.GetSeq()
			return j, nil
		case kindError:
			return nil, fmt.Errorf("join refused: %w", replyError(v, c.codec))
		}
	}
}

// open dials, connects and joins: as creator of a new relay room when
// roomID is empty, otherwise into roomID.
func (c *client) open(ctx context.Context, token, roomID string) error {
	if err := c.dial(ctx); err != nil {
		return err
	}
	if _, err := c.connect(token, "", nil); err != nil {
		c.nc.Close()
		return err
	}
	mode := protocol.JoinMode_JOIN_MODE_JOIN
	if roomID == "" {
		mode = protocol.JoinMode_JOIN_MODE_CREATE
	}
	if _, err := c.join(mode, roomID); err != nil {
		c.nc.Close()
		return err
	}
	return nil
}

// sendClose starts a normal closure: the server ends the session at once
// instead of holding it for a resume.
func (c *client) sendClose() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.control(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
}

// drain reads until the server closes or the deadline passes.
func (c *client) drain(deadline time.Time) {
	_ = c.nc.SetReadDeadline(deadline)
	for {
		if _, err := c.next(); err != nil {
			return
		}
	}
}

// cut ends the TCP connection abruptly with a reset, as a lost network
// does: the server holds the session for a resume.
func (c *client) cut() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.nc.Close()
}

// hint adds advice to the errors a misconfigured server causes.
func hint(err error) error {
	var ce closedError
	var se *serverError
	switch {
	case errors.As(err, &ce) && ce.code == protocol.CloseBadToken,
		errors.As(err, &se) && (se.code == tandem.EUnauthenticated || se.code == tandem.ETokenExpired):
		return fmt.Errorf("%w\nThe node refused the load tool's token: start it with the same --data-dir and --dev-tokens (tandem dev --dev-tokens --data-dir DIR), or give tandem realtime --token-keys with the public key of DIR/dev-signing-key.pem", err)
	case errors.As(err, &ce) && ce.code == protocol.ClosePolicyViolation,
		errors.As(err, &se) && (se.code == tandem.ERateLimited || se.code == tandem.EQuotaExceeded):
		return fmt.Errorf("%w\nThe node's per-session limits throttle the load: start it with higher --msg-rate, --msg-burst, --byte-rate and --room-create-per-minute (scripts/bench does)", err)
	}
	return err
}
