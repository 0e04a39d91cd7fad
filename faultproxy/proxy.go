// Package faultproxy owns a real TCP proxy that sits between a client and a
// server and injects network faults into the connections it forwards:
// resets (at once, or after an exact byte count), silences that hold bytes
// back with genuine TCP backpressure, latency and bandwidth limits, each per
// connection and per direction, settable while data flows.
//
// A test points its client at Proxy.Addr instead of the server, then steers
// the connections the proxy accepted through their *Conn, or sets faults
// every new connection starts with through Proxy.SetDefaults.
//
// Each direction of a connection is a reader goroutine, which reads up to
// 32 KiB at a time from the sender into a queue, and a writer goroutine,
// which forwards that queue to the receiver as the faults allow. Every
// goroutine is owned by the Proxy and has ended when Proxy.Close returns.
package faultproxy

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// ErrClosed is returned by Proxy.WaitConns once the proxy is closed.
var ErrClosed = errors.New("faultproxy: proxy closed")

const (
	defaultListen = "127.0.0.1:0"
	dialTimeout   = 5 * time.Second
	// acceptBackoff paces retries after a failed Accept, such as when the
	// process runs out of file descriptors under load.
	acceptBackoff = 10 * time.Millisecond
)

// Config configures a Proxy.
type Config struct {
	// Target is the server's address, e.g. "127.0.0.1:8080". Required.
	Target string
	// Listen is the address to accept clients on; empty means "127.0.0.1:0".
	Listen string
	// Defaults are the faults every new connection starts with.
	Defaults Faults
}

// Proxy accepts clients and forwards each to a new connection to the target.
// It remembers every connection it accepted until it is closed, so WaitConns
// can hand out connections that have already ended.
type Proxy struct {
	target    string
	listener  *net.TCPListener
	dialer    net.Dialer
	stop      context.CancelFunc // aborts a dial in progress on Close
	stopped   context.Context
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	defaults Faults
	accepted []*Conn       // every connection proxied, in accept order
	changed  chan struct{} // closed and replaced when accepted grows or the proxy closes
	closed   bool
}

// New starts a proxy that forwards every client it accepts to cfg.Target.
func New(cfg Config) (*Proxy, error) {
	if cfg.Target == "" {
		return nil, errors.New("faultproxy: Config.Target is required")
	}
	listen := cfg.Listen
	if listen == "" {
		listen = defaultListen
	}
	addr, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return nil, err
	}
	listener, err := net.ListenTCP("tcp", addr)
	if err != nil {
		return nil, err
	}
	stopped, stop := context.WithCancel(context.Background())
	p := &Proxy{
		target:   cfg.Target,
		listener: listener,
		dialer:   net.Dialer{Timeout: dialTimeout},
		stop:     stop,
		stopped:  stopped,
		defaults: cfg.Defaults,
		changed:  make(chan struct{}),
	}
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr is the address clients should dial instead of the target.
func (p *Proxy) Addr() string { return p.listener.Addr().String() }

// SetDefaults sets the faults that connections accepted from now on start
// with; connections already accepted keep theirs.
func (p *Proxy) SetDefaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.defaults = f
}

// Conns returns the connections still open, in accept order.
func (p *Proxy) Conns() []*Conn {
	p.mu.Lock()
	accepted := slices.Clone(p.accepted)
	p.mu.Unlock()
	return slices.DeleteFunc(accepted, func(c *Conn) bool { return !c.live() })
}

// Accepted is how many connections the proxy has accepted and connected to
// the target, open or not.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepted)
}

// WaitConns waits until at least n connections have been accepted, open or
// not, and returns every connection accepted so far, in accept order. It
// fails with ctx's error, or with ErrClosed once the proxy is closed.
func (p *Proxy) WaitConns(ctx context.Context, n int) ([]*Conn, error) {
	for {
		p.mu.Lock()
		accepted, closed, changed := p.accepted, p.closed, p.changed
		p.mu.Unlock()
		if len(accepted) >= n {
			return slices.Clone(accepted), nil
		}
		if closed {
			return nil, ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close stops accepting, closes every proxied connection and waits for all
// the proxy's goroutines to end. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		accepted := p.accepted
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()

		p.stop()
		p.closeErr = p.listener.Close()
		for _, c := range accepted {
			_ = c.Close()
		}
	})
	p.wg.Wait()
	return p.closeErr
}

func (p *Proxy) acceptLoop() {
	for {
		client, err := p.listener.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			select {
			case <-p.stopped.Done():
				return
			case <-time.After(acceptBackoff):
				continue
			}
		}
		p.connect(client)
	}
}

// connect dials the target for client and starts forwarding between them.
// Dialling here rather than in a goroutine keeps Conns in accept order.
func (p *Proxy) connect(client *net.TCPConn) {
	server, err := p.dialer.DialContext(p.stopped, "tcp", p.target)
	if err != nil {
		// Mirror the refused connection to the client as a reset.
		_ = client.SetLinger(0)
		_ = client.Close()
		return
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = client.Close()
		_ = server.Close()
		return
	}
	c := newConn(client, server.(*net.TCPConn), p.defaults)
	p.accepted = append(p.accepted, c)
	close(p.changed)
	p.changed = make(chan struct{})
	p.wg.Go(c.run)
}
