package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

const (
	// copyBufferSize is the read size per direction when no throttle applies.
	copyBufferSize = 32 << 10
	// throttledReadSize keeps the proxy from pulling far more from the sender
	// than a throttle lets through, so backpressure stays with TCP.
	throttledReadSize = 1 << 10
	// maxQueuedBytes bounds what one direction holds while latency delays it;
	// past it the proxy stops reading and TCP backpressure takes over.
	maxQueuedBytes = 4 << 20
	// maxThrottledQueue is that bound under a throttle: a throttled reader
	// must look slow to the sender at once, not after megabytes.
	maxThrottledQueue = 8 << 10
	// drainTimeout bounds how long a ResetAfter waits for the peer to
	// acknowledge the last forwarded bytes before aborting.
	drainTimeout = time.Second
)

// Conn is one proxied connection: a client accepted by the proxy and the
// connection the proxy dialled to the target for it. Its methods may be
// called from any goroutine at any time, including while data flows and
// after the connection has ended (when they do nothing).
type Conn struct {
	client *net.TCPConn
	server *net.TCPConn
	done   chan struct{} // closed once the connection is closed or reset

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever state under mu changes
	shutDown bool
	pipes    [2]pipe // indexed by Direction
}

// pipe is the state of one direction. Bytes read from the sender wait in
// queue until the writer may forward them, so latency does not limit
// throughput to one chunk per delay.
type pipe struct {
	silenced       bool
	latency        time.Duration
	bytesPerSecond int
	resetBudget    int64 // bytes left before a reset; negative when none is pending
	tokens         float64
	refilledAt     time.Time
	queue          []chunk
	queuedBytes    int
	forwarded      int64
	ended          bool // EndWith: nothing read from the sender is forwarded any more
}

type chunk struct {
	data      []byte
	deliverAt time.Time
	eof       bool // the sender half-closed; pass the FIN on after the bytes before it
	last      bool // EndWith's bytes: once they are written, close the connection
}

func newConn(client, server *net.TCPConn, defaults Faults) *Conn {
	c := &Conn{
		client:  client,
		server:  server,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	now := time.Now()
	for d, f := range [2]DirectionFaults{defaults.Upstream, defaults.Downstream} {
		p := &c.pipes[d]
		p.silenced = f.Silenced
		p.latency = max(f.Latency, 0)
		p.bytesPerSecond = max(f.BytesPerSecond, 0)
		p.resetBudget = -1
		if f.ResetAfter > 0 {
			p.resetBudget = f.ResetAfter
		}
		p.refilledAt = now
	}
	return c
}

// run forwards both directions until they have ended, then releases the
// sockets.
func (c *Conn) run() {
	var wg sync.WaitGroup
	wg.Go(func() { c.readLoop(Upstream, c.client) })
	wg.Go(func() { c.writeLoop(Upstream, c.server) })
	wg.Go(func() { c.readLoop(Downstream, c.server) })
	wg.Go(func() { c.writeLoop(Downstream, c.client) })
	wg.Wait()
	_ = c.shutdown(false)
}

// ClientAddr is the client's address, to tell connections apart.
func (c *Conn) ClientAddr() net.Addr { return c.client.RemoteAddr() }

// Done is closed once the connection has been closed or reset, by a fault, by
// either peer, or by the proxy.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes both sides cleanly (FIN), dropping any bytes still held.
func (c *Conn) Close() error { return c.shutdown(false) }

// Reset aborts both sides at once with a TCP RST.
func (c *Conn) Reset() { _ = c.shutdown(true) }

// ResetAfter resets the connection once exactly n more bytes have been
// forwarded in direction d: the receiver gets those n bytes, never more, then
// the reset. Bytes being written at the moment of the call do not count.
// n == 0 resets now; a negative n cancels a pending ResetAfter.
func (c *Conn) ResetAfter(d Direction, n int64) {
	if n == 0 {
		c.Reset()
		return
	}
	c.update(d, func(p *pipe) { p.resetBudget = max(n, -1) })
}

// EndWith makes b the last bytes forwarded in direction d: they follow what
// that direction has queued already (under its latency and throttle; a
// silence on d is lifted, and a FIN queued there is dropped), nothing read
// from the sender after the call is forwarded, and once b is written the
// other direction stops too and the connection closes on both sides (FIN).
// A proxy in front of a WebSocket server uses it to hand the client a close
// frame the server never sent: the server sees the connection end without
// a close frame, not even the client's answer. Write b when the stream is
// between frames (an idle connection), or the receiver sees a broken frame.
func (c *Conn) EndWith(d Direction, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &c.pipes[d]
	if c.shutDown || p.ended {
		return
	}
	p.ended, p.silenced = true, false
	p.queue = slices.DeleteFunc(p.queue, func(ch chunk) bool { return ch.eof })
	p.queue = append(p.queue, chunk{data: bytes.Clone(b), deliverAt: time.Now().Add(p.latency), last: true})
	p.queuedBytes += len(b)
	c.broadcastLocked()
}

// Silence stops forwarding in direction d: the proxy stops reading from the
// sender, so TCP backpressure builds, and holds what it has already read.
// The connection stays open.
func (c *Conn) Silence(d Direction) { c.update(d, func(p *pipe) { p.silenced = true }) }

// Resume undoes Silence.
func (c *Conn) Resume(d Direction) { c.update(d, func(p *pipe) { p.silenced = false }) }

// SetLatency delays each chunk read from now on in direction d by latency,
// keeping order; 0 removes the delay for later chunks.
func (c *Conn) SetLatency(d Direction, latency time.Duration) {
	c.update(d, func(p *pipe) { p.latency = max(latency, 0) })
}

// SetThrottle limits direction d to bytesPerSecond; 0 means unlimited.
func (c *Conn) SetThrottle(d Direction, bytesPerSecond int) {
	c.update(d, func(p *pipe) {
		p.bytesPerSecond = max(bytesPerSecond, 0)
		// Start with an empty bucket so the limit holds from the first byte.
		p.tokens = 0
		p.refilledAt = time.Now()
	})
}

// BytesForwarded is how many bytes the proxy has written to the receiver in
// direction d.
func (c *Conn) BytesForwarded(d Direction) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pipes[d].forwarded
}

func (c *Conn) live() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.shutDown
}

func (c *Conn) update(d Direction, change func(*pipe)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	change(&c.pipes[d])
	c.broadcastLocked()
}

// shutdown closes both sockets, abortively (RST) if abort is set. Only the
// first call does anything.
func (c *Conn) shutdown(abort bool) error {
	c.mu.Lock()
	if c.shutDown {
		c.mu.Unlock()
		return nil
	}
	c.shutDown = true
	close(c.done)
	c.broadcastLocked()
	c.mu.Unlock()

	var errs []error
	for _, conn := range []*net.TCPConn{c.client, c.server} {
		if abort {
			// Linger 0 makes Close send RST instead of FIN.
			errs = append(errs, conn.SetLinger(0))
		}
		errs = append(errs, conn.Close())
	}
	return errors.Join(errs...)
}

// broadcastLocked wakes every goroutine in waitLocked.
func (c *Conn) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitLocked releases c.mu until the connection's state changes or timeout
// elapses (a negative timeout waits for a change only), then reacquires it.
func (c *Conn) waitLocked(timeout time.Duration) {
	changed := c.changed
	c.mu.Unlock()
	defer c.mu.Lock()
	if timeout < 0 {
		<-changed
		return
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-changed:
	case <-timer.C:
	}
}

// readLoop moves bytes from src into direction d's queue until src ends or
// the connection shuts down.
func (c *Conn) readLoop(d Direction, src *net.TCPConn) {
	buf := make([]byte, copyBufferSize)
	for {
		size, ok := c.readSize(d)
		if !ok {
			return
		}
		n, err := src.Read(buf[:size])
		if n > 0 {
			c.enqueue(d, chunk{data: bytes.Clone(buf[:n])})
		}
		if errors.Is(err, io.EOF) {
			c.enqueue(d, chunk{eof: true})
			return
		}
		if err != nil {
			// The sender aborted (or we shut down, and this is a no-op):
			// pass the abort on rather than leaving the other peer hanging.
			c.Reset()
			return
		}
	}
}

// readSize waits until direction d may read from its sender and says how
// much to read; ok is false once the connection has shut down.
func (c *Conn) readSize(d Direction) (size int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &c.pipes[d]
	for !c.shutDown {
		limit := maxQueuedBytes
		if p.bytesPerSecond > 0 {
			limit = maxThrottledQueue
		}
		if p.silenced || p.queuedBytes >= limit {
			c.waitLocked(-1)
			continue
		}
		if p.bytesPerSecond > 0 {
			return throttledReadSize, true
		}
		return copyBufferSize, true
	}
	return 0, false
}

func (c *Conn) enqueue(d Direction, ch chunk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &c.pipes[d]
	if p.ended {
		return
	}
	ch.deliverAt = time.Now().Add(p.latency)
	p.queue = append(p.queue, ch)
	p.queuedBytes += len(ch.data)
	c.broadcastLocked()
}

// writeLoop forwards direction d's queue to dst until the sender's FIN has
// been passed on or the connection shuts down.
func (c *Conn) writeLoop(d Direction, dst *net.TCPConn) {
	for {
		piece, eof, last, ok := c.nextPiece(d)
		if !ok {
			return
		}
		if eof {
			_ = dst.CloseWrite()
			return
		}
		if last {
			// Nothing more goes the other way either: the receiver's
			// answer to EndWith's bytes must not reach the sender.
			c.update(1-d, func(o *pipe) { o.ended, o.queue, o.queuedBytes = true, nil, 0 })
		}
		n, err := dst.Write(piece)
		resetNow := c.recordForwarded(d, n)
		if err != nil {
			c.Reset()
			return
		}
		if last {
			waitSent(dst, drainTimeout, c.done)
			_ = c.Close()
			return
		}
		if resetNow {
			// A reset discards whatever the kernel has not sent yet, and
			// the receiver must get every byte counted as forwarded.
			waitSent(dst, drainTimeout, c.done)
			c.Reset()
			return
		}
	}
}

// nextPiece waits until direction d may forward something and takes it off
// the queue: bytes that are due, not silenced, within the throttle and the
// reset budget. eof reports the sender's FIN instead, last that piece ends
// EndWith's bytes; ok is false once the connection has shut down.
func (c *Conn) nextPiece(d Direction) (piece []byte, eof, last, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &c.pipes[d]
	for !c.shutDown {
		// Budget 0 means a reset is about to happen; forward nothing more.
		if p.silenced || len(p.queue) == 0 || p.resetBudget == 0 {
			c.waitLocked(-1)
			continue
		}
		head := &p.queue[0]
		if wait := time.Until(head.deliverAt); wait > 0 {
			c.waitLocked(wait)
			continue
		}
		if head.eof {
			p.queue = p.queue[1:]
			return nil, true, false, true
		}
		size := len(head.data)
		if p.resetBudget > 0 {
			size = int(min(int64(size), p.resetBudget))
		}
		if p.bytesPerSecond > 0 {
			size = min(size, throttledPieceSize(p.bytesPerSecond))
			if wait := p.takeTokens(size, time.Now()); wait > 0 {
				c.waitLocked(wait)
				continue
			}
		}
		piece = head.data[:size]
		head.data = head.data[size:]
		if len(head.data) == 0 {
			last = head.last
			p.queue = p.queue[1:]
		}
		p.queuedBytes -= size
		if p.resetBudget > 0 {
			p.resetBudget -= int64(size)
		}
		c.broadcastLocked() // the reader may be waiting for queue space
		return piece, false, last, true
	}
	return nil, false, false, false
}

// recordForwarded counts n bytes written in direction d and reports whether
// they exhausted a ResetAfter budget.
func (c *Conn) recordForwarded(d Direction, n int) (resetNow bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &c.pipes[d]
	p.forwarded += int64(n)
	return p.resetBudget == 0
}

// throttledPieceSize keeps each throttled write to at most 1 KiB and 50 ms
// worth of bytes, so the limit reads as a steady trickle, not bursts.
func throttledPieceSize(bytesPerSecond int) int {
	return min(1<<10, max(1, bytesPerSecond/20))
}

// takeTokens takes n bytes' worth from the token bucket, or says how long to
// wait until it holds that many.
func (p *pipe) takeTokens(n int, now time.Time) (wait time.Duration) {
	rate := float64(p.bytesPerSecond)
	burst := max(float64(throttledPieceSize(p.bytesPerSecond)), rate/20)
	p.tokens = min(burst, p.tokens+now.Sub(p.refilledAt).Seconds()*rate)
	p.refilledAt = now
	if p.tokens >= float64(n) {
		p.tokens -= float64(n)
		return 0
	}
	// At least a microsecond, so a rounding-to-zero deficit still waits.
	return max(time.Duration((float64(n)-p.tokens)/rate*float64(time.Second)), time.Microsecond)
}
