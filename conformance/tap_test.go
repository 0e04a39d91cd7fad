package conformance_test

import (
	"bufio"
	"io"
	"net"
	"sync"

	"github.com/gobwas/ws"
	"github.com/tandemhq/tandem/protocol"
)

// tap counts the bodies of the frames a client reads, by body name ("ping",
// "room_message"…): the driver's view of the wire, for what the SDK does
// not surface as an event (the server's heartbeat pings). It reads a copy
// of what the connection reads, so it never changes what the SDK sees.
type tap struct {
	codec protocol.Codec
	wg    sync.WaitGroup

	mu     sync.Mutex
	bodies map[string]int
}

func newTap(codec protocol.Codec) *tap { return &tap{codec: codec, bodies: map[string]int{}} }

// wrap returns nc with its reads copied to a parser, which ends when nc is
// closed or its reads fail.
func (tp *tap) wrap(nc net.Conn) net.Conn {
	pr, pw := io.Pipe()
	tp.wg.Go(func() {
		tp.parse(pr)
		_, _ = io.Copy(io.Discard, pr) // a frame it cannot parse: stop parsing, keep the pipe flowing
	})
	return &tapConn{Conn: nc, pw: pw}
}

// wait waits for the parsers of the connections closed by now.
func (tp *tap) wait() { tp.wg.Wait() }

func (tp *tap) count(body string) int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.bodies[body]
}

// parse reads the HTTP upgrade answer, then server frames (unmasked,
// unfragmented: docs/protocol.md §1.2).
func (tp *tap) parse(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	body := (&protocol.Envelope{}).ProtoReflect().Descriptor().Oneofs().ByName("body")
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		if h.OpCode != ws.OpText && h.OpCode != ws.OpBinary {
			continue
		}
		env := new(protocol.Envelope)
		if tp.codec.Unmarshal(payload, env) != nil {
			continue
		}
		name := "none"
		if f := env.ProtoReflect().WhichOneof(body); f != nil {
			name = string(f.Name())
		}
		tp.mu.Lock()
		tp.bodies[name]++
		tp.mu.Unlock()
	}
}

// tapConn copies what it reads to the tap's pipe.
type tapConn struct {
	net.Conn
	pw   *io.PipeWriter
	once sync.Once
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		_, _ = c.pw.Write(p[:n])
	}
	if err != nil {
		c.once.Do(func() { c.pw.CloseWithError(err) })
	}
	return n, err
}

func (c *tapConn) Close() error {
	c.once.Do(func() { c.pw.Close() })
	return c.Conn.Close()
}
