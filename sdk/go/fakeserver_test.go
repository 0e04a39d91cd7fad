package client

import (
	"cmp"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/tandemhq/tandem/protocol"
)

// fakeServer is a scripted WebSocket peer for the SDK's unit tests: the test
// plays the server's side of each connection frame by frame. It is not the
// gateway; integration tests against the real server live elsewhere.
type fakeServer struct {
	t     *testing.T
	ln    net.Listener
	codec protocol.Codec
	conns chan *peer
	wg    sync.WaitGroup

	mu    sync.Mutex
	peers []*peer
}

func newFakeServer(t *testing.T, id protocol.CodecID) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, codec: id.Codec(), conns: make(chan *peer, 16)}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) url() string { return "ws://" + s.ln.Addr().String() + "/ws" }

func (s *fakeServer) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		up := ws.Upgrader{Protocol: func(p []byte) bool { return string(p) == s.codec.Name() }}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := up.Upgrade(nc); err != nil {
			nc.Close()
			continue
		}
		nc.SetDeadline(time.Time{})
		p := &peer{t: s.t, nc: nc, codec: s.codec}
		s.mu.Lock()
		s.peers = append(s.peers, p)
		s.mu.Unlock()
		s.conns <- p
	}
}

func (s *fakeServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, p := range s.peers {
		p.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// drain reads every connection until it ends, answering control frames,
// once the test is done with them.
func (s *fakeServer) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				if _, err := p.read(); err != nil {
					return
				}
			}
		}()
	}
}

// next returns the next connection the client opened.
func (s *fakeServer) next() *peer {
	s.t.Helper()
	select {
	case p := <-s.conns:
		return p
	case <-time.After(10 * time.Second):
		s.t.Fatal("no connection from the client")
		return nil
	}
}

// peer is the server's side of one connection.
type peer struct {
	t           *testing.T
	nc          net.Conn
	codec       protocol.Codec
	heartbeatMs uint32 // sent in connected; 0 = 60 s, so the client does not ping during a test
}

// read returns the next envelope the client sent, or the error (such as a
// wsutil.ClosedError) that ended the connection.
func (p *peer) read() (*protocol.Envelope, error) {
	p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _, err := wsutil.ReadClientData(p.nc)
	if err != nil {
		return nil, err
	}
	env := new(protocol.Envelope)
	if err := p.codec.Unmarshal(b, env); err != nil {
		return nil, err
	}
	return env, nil
}

// expect returns the next envelope that is not ping, pong or ack_frame
// (unless the test asks for one of those).
func (p *peer) expect(keep func(*protocol.Envelope) bool) *protocol.Envelope {
	p.t.Helper()
	for {
		env, err := p.read()
		if err != nil {
			p.t.Fatalf(
				"reading the client: %v",
				err)
		}
		if keep != nil {
			if keep(env) {
				return env
			}
			continue
		}
		switch env.GetBody().(type) {
		case *protocol.Envelope_Ping, *protocol.Envelope_Pong, *protocol.Envelope_AckFrame:
			continue
		}
		return env
	}
}

func isAck(env *protocol.Envelope) bool { return env.GetAckFrame() != nil }

func (p *peer) send(envs ...*protocol.Envelope) {
	p.t.Helper()
	op := ws.OpText
	if p.codec.Binary() {
		op = ws.OpBinary
	}
	for _, env := range envs {
		b, err := p.codec.Marshal(nil, env)
		if err != nil {
			p.t.Fatal(err)
		}
		p.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := wsutil.WriteServerMessage(p.nc, op, b); err != nil {
			p.t.Fatalf(
				"writing to the client: %v",
				err)
		}
	}
}

// closeWith sends a close frame with code and closes the connection.
func (p *peer) closeWith(code protocol.CloseCode, reason string) {
	body := ws.NewCloseFrameBody(ws.StatusCode(code), reason)
	_ = wsutil.WriteServerMessage(p.nc, ws.OpClose, body)
	p.nc.Close()
}

// closeCleanly sends a close frame with code and closes the connection once
// the client has answered it, as the gateway does. closeWith closes at once:
// a frame the client writes meanwhile (an ack) meets a reset, the failed
// write closes the client's socket, and the close frame can be lost unread.
func (p *peer) closeCleanly(code protocol.CloseCode, reason string) {
	body := ws.NewCloseFrameBody(ws.StatusCode(code), reason)
	_ = wsutil.WriteServerMessage(p.nc, ws.OpClose, body)
	for {
		if _, err := p.read(); err != nil { // the echo (or the end)
			break
		}
	}
	p.nc.Close()
}

// connected answers connect.
func (p *peer) connected(session, resumeToken string, resumed bool, ack uint64) {
	p.t.Helper()
	p.send(&protocol.Envelope{Ack: ack, Body: &protocol.Envelope_Connected{Connected: &protocol.Connected{
		SessionId: session, PlayerId: "p1", ResumeToken: resumeToken, Resumed: resumed,
		HeartbeatMs: cmp.Or(p.heartbeatMs, 60_000), SeatHoldMs: 20_000, Node: "n1", MaxFrameBytes: 64 << 10,
	}}})
}

// handshake reads connect and answers connected; it returns the connect.
func (p *peer) handshake(session, resumeToken string, resumed bool, ack uint64) *protocol.Connect {
	p.t.Helper()
	env := p.expect(nil)
	c := env.GetConnect()
	if c == nil {
		p.t.Fatalf(
			"first frame %v, want connect",
			env)
	}
	p.connected(session, resumeToken, resumed, ack)
	return c
}

// dial starts Dial against s while the test plays the server; it returns
// the client's peer and a function that waits for Dial's result.
func dial(t *testing.T, s *fakeServer, cfg Config) (*peer, func() (*Client, error)) {
	t.Helper()
	cfg.URL = s.url()
	if cfg.Token == nil {
		cfg.Token = func(context.Context) (string, error) { return "tok", nil }
	}
	cfg.Codec = protocol.CodecID(0)
	if s.codec.Binary() {
		cfg.Codec = protocol.CodecBinary
	}
	type result struct {
		c   *Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := Dial(ctx, cfg)
		ch <- result{c, err}
	}()
	p := s.next()
	return p, func() (*Client, error) {
		r := <-ch
		if r.c != nil {
			t.Cleanup(func() {
				s.drain() // so the client's close gets its echo
				r.c.Close()
			})
		}
		return r.c, r.err
	}
}

// connect dials and completes the handshake of a new session.
func connect(t *testing.T, s *fakeServer, cfg Config) (*Client, *peer) {
	t.Helper()
	p, wait := dial(t, s, cfg)
	p.handshake("s1", "rt1", false, 0)
	c, err := wait()
	if err != nil {
		t.Fatalf(
			"Dial: %v",
			err)
	}
	return c, p
}

// nextEvent returns the next event that is not filtered out.
func nextEvent(t *testing.T, c *Client) Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatal("Events closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return nil
	}
}

func eventAs[T Event](t *testing.T, c *Client) T {
	t.Helper()
	ev := nextEvent(t, c)
	e, ok := ev.(T)
	if !ok {
		var want T
		t.Fatalf(
			"event %#v, want %T",
			ev, want)
	}
	return e
}

// async runs f in a goroutine and returns a function waiting for its error.
func async(f func() error) func() error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return func() error {
		select {
		case err := <-ch:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("timed out")
		}
	}
}
