package gateway

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/session"
)

// conn is one WebSocket connection. Its reader goroutine lives as long as
// the connection; a writer goroutine runs only while frames are queued, so
// an idle connection holds one goroutine and no buffers.
type conn struct {
	g     *Gateway
	nc    net.Conn
	codec protocol.CodecID
	born  time.Time

	// Liveness, read by the sweeper.
	lastRead atomic.Int64 // unix nanoseconds
	framed   atomic.Bool  // a whole frame arrived: the connect timeout is met, however long auth takes
	sess     atomic.Pointer[session.Session]

	// Owned by the reader goroutine.
	confirmPending bool
	endSession     bool  // the client closed normally: end the session, hold nothing
	linger         bool  // read what the peer still sends before closing the socket
	unread         int64 // the payload of the frame readFrame refused unread; lingerRead drops it first
	nextAck        uint64
	rttUs          atomic.Uint32
	nextPing       atomic.Int64 // unix nanoseconds; owned by the sweeper

	mu        sync.Mutex
	queue     [][]byte // frames waiting for the writer
	spare     [][]byte // the writer's previous batch, reused
	writing   bool     // a writer goroutine is running
	closing   bool     // no more frames are accepted
	closed    bool     // the socket is closed
	closeCode protocol.CloseCode
	closeMsg  []byte      // close frame, written after the queue
	closeNow  bool        // abort right after the close frame: the peer is not listening
	readDone  bool        // the reader has ended; the last writer closes the socket
	flushFn   func()      // c.flush, made once so that starting a writer allocates nothing
	wbufs     net.Buffers // the writer's batch; a field, so a flush does not allocate it
}

func newConn(g *Gateway, nc net.Conn, codec protocol.CodecID, now time.Time) *conn {
	c := &conn{g: g, nc: nc, codec: codec, born: now}
	c.lastRead.Store(now.UnixNano())
	c.nextPing.Store(now.Add(g.cfg.Heartbeat).UnixNano())
	c.flushFn = c.flush
	return c
}

// Send queues a frame. Over the queue limit the client is a slow consumer:
// its queue is dropped (the frames stay in the replay buffers) and it is
// closed with the resume-class slow_consumer code.
func (c *conn) Send(frame []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if len(c.queue) >= c.g.cfg.SendQueue {
		dropped := len(c.queue)
		c.mu.Unlock()
		c.g.metrics.SendQueueDrops.Add(float64(dropped))
		c.g.metrics.SlowConsumers.Inc()
		c.closeWith(protocol.CloseSlowConsumer, "send queue overflow", true, false)
		return false
	}
	if c.queue == nil {
		c.queue = make([][]byte, 0, min(c.g.cfg.SendQueue, 16))
	}
	c.queue = append(c.queue, frame)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
	return true
}

// startWriter starts the writer goroutine; the caller set c.writing.
func (c *conn) startWriter() {
	c.g.wg.Add(1)
	go c.flushFn()
}

// Close stops accepting frames; the writer sends what is queued, then the
// close frame.
func (c *conn) Close(code protocol.CloseCode, reason string) {
	c.closeWith(code, reason, false, false)
}

// closeWith closes with a code. dropQueued drops the frames still queued
// (they stay in the replay buffers for a resume), so that a slow reader
// learns its close code without first reading the backlog. closeNow ends
// the socket right after the close frame instead of waiting for the peer's
// reply (a peer that missed its heartbeats will not send one).
func (c *conn) closeWith(code protocol.CloseCode, reason string, dropQueued, closeNow bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeCode = code
	c.closeNow = closeNow
	c.closeMsg = closeFrame(code, reason)
	if dropQueued {
		clear(c.queue)
		c.queue = c.queue[:0]
	}
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	c.g.metrics.Closes.WithLabelValues(code.String()).Inc()
	// A writer stuck on a peer that does not read gives up at the deadline.
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.g.cfg.CloseGrace))
	if start {
		c.startWriter()
	}
}

// flush is the writer: it writes the queued frames, several in one write,
// until the queue is empty, then exits.
func (c *conn) flush() {
	defer c.g.wg.Done()
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) == 0 {
			msg := c.closeMsg
			c.closeMsg = nil
			if msg == nil {
				c.writing = false
				last := c.readDone
				c.mu.Unlock()
				if last {
					c.abort()
				}
				return
			}
			c.mu.Unlock()
			c.writeClose(msg)
			continue
		}
		c.queue, c.spare = c.spare[:0], nil
		c.mu.Unlock()

		c.wbufs = batch
		n, err := c.wbufs.WriteTo(c.nc)
		c.wbufs = nil
		c.g.metrics.FramesOut.Add(float64(len(batch)))
		c.g.metrics.BytesOut.Add(float64(n))
		clear(batch)
		c.mu.Lock()
		c.spare = batch[:0]
		c.mu.Unlock()
		if err != nil {
			c.abort()
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			return
		}
	}
}

// writeClose writes the close frame, then gives the peer the close grace to
// answer before the reader gives up.
func (c *conn) writeClose(msg []byte) {
	c.mu.Lock()
	now := c.closeNow
	c.mu.Unlock()
	if _, err := c.nc.Write(msg); err != nil || now {
		c.abort()
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.g.cfg.CloseGrace))
}

// abort closes the socket at once; the reader then ends.
func (c *conn) abort() {
	c.mu.Lock()
	already := c.closed
	c.closed, c.closing = true, true
	c.mu.Unlock()
	if !already {
		_ = c.nc.Close()
	}
}

// closeCodeSent returns the code of the close the server started, or 0.
func (c *conn) closeCodeSent() protocol.CloseCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

// errFrameTooLarge ends a connection that sent a frame over the limit.
var errFrameTooLarge = errors.New("frame too large")

// peerClosed is the client's close frame.
type peerClosed struct{ code ws.StatusCode }

func (p peerClosed) Error() string { return "peer closed" }

// readFrame reads one data message that starts with header h (assembling
// fragments), answering pings and returning peerClosed on a close frame.
// buf is reused when large enough.
func (c *conn) readFrame(h ws.Header, buf []byte) ([]byte, ws.OpCode, error) {
	msg := buf[:0]
	var op ws.OpCode
	for first := true; ; first = false {
		if !first {
			var err error
			if h, err = ws.ReadHeader(c.nc); err != nil {
				return nil, 0, err
			}
		}
		if !h.Masked {
			c.unread = h.Length
			return nil, 0, ws.ErrProtocolMaskRequired
		}
		if h.Rsv != 0 {
			c.unread = h.Length
			return nil, 0, ws.ErrProtocolNonZeroRsv
		}
		if h.Length > int64(c.g.cfg.MaxFrameBytes) || int64(len(msg))+h.Length > int64(c.g.cfg.MaxFrameBytes) {
			c.unread = h.Length
			return nil, 0, errFrameTooLarge
		}
		start := len(msg)
		msg = grow(msg, int(h.Length))
		if _, err := io.ReadFull(c.nc, msg[start:]); err != nil {
			return nil, 0, err
		}
		ws.Cipher(msg[start:], h.Mask, 0)
		c.lastRead.Store(time.Now().UnixNano())
		c.g.metrics.BytesIn.Add(float64(h.Length))

		switch h.OpCode {
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(msg[start:])
			return nil, ws.OpClose, peerClosed{code: code}
		case ws.OpPing, ws.OpPong:
			// RFC 6455: control frames carry at most 125 bytes, unfragmented.
			if h.Length > 125 || !h.Fin {
				return nil, 0, ws.ErrProtocolControlPayloadOverflow
			}
			if h.OpCode == ws.OpPong {
				msg = msg[:start]
				continue
			}
			c.Send(controlFrame(ws.OpPong, msg[start:]))
			msg = msg[:start]
			continue
		case ws.OpText, ws.OpBinary:
			if start != 0 {
				return nil, 0, ws.ErrProtocolContinuationUnexpected
			}
			op = h.OpCode
		case ws.OpContinuation:
			if op == 0 && start == 0 {
				return nil, 0, ws.ErrProtocolContinuationUnexpected
			}
		default:
			return nil, 0, ws.ErrProtocolOpCodeReserved
		}
		if h.Fin {
			return msg, op, nil
		}
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	grown := make([]byte, len(b)+n, max(2*cap(b), len(b)+n))
	copy(grown, b)
	return grown
}
