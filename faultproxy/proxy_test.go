package faultproxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/faultproxy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait so that a broken proxy fails a test instead
// of hanging it; it is generous so that a loaded machine does not flake.
const waitTimeout = 10 * time.Second

func TestPassThroughForwardsBothWaysAndHalfClose(t *testing.T) {
	p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
	client := dial(t, p.Addr())
	payload := pattern(1 << 20)

	written := make(chan error, 1)
	go func() {
		_, err := client.Write(payload)
		// The echo server only closes after seeing our FIN through the proxy.
		written <- errors.Join(err, client.CloseWrite())
	}()
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-written; err != nil {
		t.Fatalf("writing the payload: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo differs from payload: got %d bytes, want %d", len(got), len(payload))
	}

	conn := firstConn(t, p)
	for _, d := range []faultproxy.Direction{faultproxy.Upstream, faultproxy.Downstream} {
		if n := conn.BytesForwarded(d); n != int64(len(payload)) {
			t.Errorf("BytesForwarded(%v) = %d, want %d", d, n, len(payload))
		}
	}
}

func TestResetAfterDefaultCutsEveryConnectionAtExactlyN(t *testing.T) {
	stream := pattern(1 << 20)
	const n = 100_003 // not a multiple of any buffer size
	p := startProxy(t, startServer(t, sendAll(stream)), faultproxy.Faults{
		Downstream: faultproxy.DirectionFaults{ResetAfter: n},
	})

	for i := range 2 {
		client := dial(t, p.Addr())
		got, err := io.ReadAll(client)
		if len(got) != n || !bytes.Equal(got, stream[:n]) {
			t.Fatalf("connection %d: received %d bytes (err %v), want exactly the first %d of the stream", i, len(got), err, n)
		}
		conns, err := p.WaitConns(context.Background(), i+1)
		if err != nil {
			t.Fatal(err)
		}
		if forwarded := conns[i].BytesForwarded(faultproxy.Downstream); forwarded != n {
			t.Errorf("connection %d: BytesForwarded(Downstream) = %d, want %d", i, forwarded, n)
		}
	}
}

func TestResetAfterSetWhileDataFlows(t *testing.T) {
	t.Run("downstream", func(t *testing.T) {
		p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
		client := dial(t, p.Addr())
		roundTrip(t, client, "hello")

		firstConn(t, p).ResetAfter(faultproxy.Downstream, 3)
		write(t, client, "world!")
		got, err := io.ReadAll(client)
		if string(got) != "wor" {
			t.Fatalf("after ResetAfter(Downstream, 3) the client received %q (err %v), want %q", got, err, "wor")
		}
	})

	t.Run("upstream", func(t *testing.T) {
		received := make(chan []byte, 1)
		p := startProxy(t, startServer(t, func(c net.Conn) {
			data, _ := io.ReadAll(c)
			received <- data
		}), faultproxy.Faults{})
		client := dial(t, p.Addr())
		conn := firstConn(t, p)

		conn.ResetAfter(faultproxy.Upstream, 4)
		write(t, client, "abcdefgh")
		select {
		case got := <-received:
			if string(got) != "abcd" {
				t.Fatalf("after ResetAfter(Upstream, 4) the server received %q, want %q", got, "abcd")
			}
		case <-time.After(waitTimeout):
			t.Fatal("the server never saw the connection end")
		}
	})
}

func TestSilenceHoldsBytesUntilResume(t *testing.T) {
	p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
	client := dial(t, p.Addr())
	roundTrip(t, client, "warm-up")
	conn := firstConn(t, p)

	conn.Silence(faultproxy.Upstream)
	write(t, client, "ping")
	// Only a lower bound on silence: a broken Silence would usually be caught
	// here, and a slow machine can only make this pass, never fail.
	if err := client.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("while silenced, Read = %d bytes, %v; want nothing until the deadline", n, err)
	}
	if n := conn.BytesForwarded(faultproxy.Upstream); n != int64(len("warm-up")) {
		t.Fatalf("while silenced, BytesForwarded(Upstream) = %d, want only the warm-up's %d", n, len("warm-up"))
	}

	conn.Resume(faultproxy.Upstream)
	expectRead(t, client, "ping")
}

func TestSilenceLeavesBytesInTCPNotInTheProxy(t *testing.T) {
	stream := pattern(16 << 20)
	var serverWrote atomic.Int64
	p := startProxy(t, startServer(t, func(c net.Conn) {
		for piece := range slices.Chunk(stream, 64<<10) {
			if _, err := c.Write(piece); err != nil {
				return
			}
			serverWrote.Add(int64(len(piece)))
		}
	}), faultproxy.Faults{
		Downstream: faultproxy.DirectionFaults{Silenced: true},
	})
	client := dial(t, p.Addr())
	conn := firstConn(t, p)

	// Well past the proxy's one read buffer: the rest can only be sitting
	// in kernel buffers, pushed back on the server.
	const heldBack = 128 << 10
	eventually(t, "the server to have written what TCP buffers hold", func() bool {
		return serverWrote.Load() >= heldBack
	})
	if n := conn.QueuedBytes(faultproxy.Downstream); n > 32<<10 {
		t.Errorf("while silenced the proxy holds %d bytes itself, want at most one 32 KiB read", n)
	}
	if n := conn.BytesForwarded(faultproxy.Downstream); n != 0 {
		t.Errorf("while silenced, BytesForwarded(Downstream) = %d, want 0", n)
	}

	conn.Resume(faultproxy.Downstream)
	got := readN(t, client, len(stream))
	if !bytes.Equal(got, stream) {
		t.Fatal("after Resume the client received a different stream")
	}
}

func TestThrottleLimitsBandwidth(t *testing.T) {
	const rate = 256 << 10
	payload := pattern(64 << 10)
	// 64 KiB at 256 KiB/s needs 250 ms; assert well under that.
	const atLeast = 150 * time.Millisecond

	t.Run("default for new connections", func(t *testing.T) {
		p := startProxy(t, startServer(t, sendAll(payload)), faultproxy.Faults{
			Downstream: faultproxy.DirectionFaults{BytesPerSecond: rate},
		})
		start := time.Now()
		got := readN(t, dial(t, p.Addr()), len(payload))
		if elapsed := time.Since(start); elapsed < atLeast {
			t.Errorf("64 KiB at 256 KiB/s arrived in %v, want at least %v", elapsed, atLeast)
		}
		if !bytes.Equal(got, payload) {
			t.Error("throttled stream differs from what the server sent")
		}
	})

	t.Run("set on a live connection", func(t *testing.T) {
		p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
		client := dial(t, p.Addr())
		firstConn(t, p).SetThrottle(faultproxy.Upstream, rate)

		start := time.Now()
		write(t, client, string(payload))
		got := readN(t, client, len(payload))
		if elapsed := time.Since(start); elapsed < atLeast {
			t.Errorf("64 KiB echoed through a 256 KiB/s upstream in %v, want at least %v", elapsed, atLeast)
		}
		if !bytes.Equal(got, payload) {
			t.Error("throttled echo differs from what the client sent")
		}
	})
}

func TestLatencyDelaysEveryChunkInOrder(t *testing.T) {
	const latency = 200 * time.Millisecond
	p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
	client := dial(t, p.Addr())
	firstConn(t, p).SetLatency(faultproxy.Upstream, latency)

	start := time.Now()
	roundTrip(t, client, "ping")
	if elapsed := time.Since(start); elapsed < latency {
		t.Errorf("round trip took %v, want at least the %v latency", elapsed, latency)
	}

	var want bytes.Buffer
	for i := range 50 {
		msg := fmt.Sprintf("message %02d\n", i)
		want.WriteString(msg)
		write(t, client, msg)
	}
	if got := readN(t, client, want.Len()); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("delayed messages arrived as %q, want %q", got, want.Bytes())
	}
}

func TestResetAbortsBothSides(t *testing.T) {
	serverErr := make(chan error, 1)
	p := startProxy(t, startServer(t, func(c net.Conn) {
		_, err := io.Copy(io.Discard, c)
		serverErr <- err
	}), faultproxy.Faults{})
	client := dial(t, p.Addr())
	conn := firstConn(t, p)

	conn.Reset()
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client Read after Reset: %v, want connection reset", err)
	}
	select {
	case err := <-serverErr:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("server read after Reset: %v, want connection reset", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the server never saw the reset")
	}
	select {
	case <-conn.Done():
	default:
		t.Error("Done is not closed after Reset")
	}
	if live := p.Conns(); len(live) != 0 {
		t.Errorf("Conns() after Reset = %d connections, want none", len(live))
	}
}

func TestConnCloseSendsFIN(t *testing.T) {
	p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
	client := dial(t, p.Addr())
	roundTrip(t, client, "hello")

	if err := firstConn(t, p).Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client Read after Close = %d, %v; want EOF", n, err)
	}
}

func TestWaitConnsReturnsConnectionsInAcceptOrder(t *testing.T) {
	p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
	var clients []*net.TCPConn
	for range 3 {
		clients = append(clients, dial(t, p.Addr()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conns, err := p.WaitConns(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		if got, want := c.ClientAddr().String(), clients[i].LocalAddr().String(); got != want {
			t.Errorf("connection %d is from %s, want %s", i, got, want)
		}
	}
	if n := p.Accepted(); n != 3 {
		t.Errorf("Accepted() = %d, want 3", n)
	}
	if n := len(p.Conns()); n != 3 {
		t.Errorf("len(Conns()) = %d, want 3", n)
	}

	conns[1].Reset()
	live := p.Conns()
	if len(live) != 2 || live[0] != conns[0] || live[1] != conns[2] {
		t.Errorf("after resetting the second connection Conns() = %v, want the first and third", live)
	}
	if n := p.Accepted(); n != 3 {
		t.Errorf("Accepted() after a reset = %d, want still 3", n)
	}
}

func TestWaitConnsHonoursContext(t *testing.T) {
	p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.WaitConns(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConns with nobody dialling: %v, want deadline exceeded", err)
	}
}

func TestProxyCloseEndsEverything(t *testing.T) {
	p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
	var clients []*net.TCPConn
	for range 3 {
		client := dial(t, p.Addr())
		roundTrip(t, client, "hello")
		clients = append(clients, client)
	}
	// One connection mid-fault, to show Close does not wait for faults.
	firstConn(t, p).Silence(faultproxy.Downstream)

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, client := range clients {
		if err := client.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("client %d Read after proxy Close: %v, want EOF or reset", i, err)
		}
	}
	if live := p.Conns(); len(live) != 0 {
		t.Errorf("Conns() after Close = %d connections, want none", len(live))
	}
	if _, err := p.WaitConns(context.Background(), 4); !errors.Is(err, faultproxy.ErrClosed) {
		t.Errorf("WaitConns after Close: %v, want ErrClosed", err)
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Close()
		t.Error("the proxy still accepts connections after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}

func TestUnreachableTargetResetsTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()

	p := startProxy(t, closedPort, faultproxy.Faults{})
	// The reset can beat the end of the client's own connect, so the dial
	// itself may fail.
	if client, err := net.Dial("tcp", p.Addr()); err == nil {
		defer client.Close()
		if err := client.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
			t.Fatal(err)
		}
		if n, err := client.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("client Read with no server behind the proxy = %d, %v; want the connection ended", n, err)
		}
	}
	if n := p.Accepted(); n != 0 {
		t.Errorf("Accepted() = %d, want 0: nothing was proxied", n)
	}
}

func TestFaultsChangeWhileDataFlows(t *testing.T) {
	p := startProxy(t, startServer(t, echo), faultproxy.Faults{})
	client := dial(t, p.Addr())
	conn := firstConn(t, p)
	payload := pattern(1 << 20)

	stopFiddling := make(chan struct{})
	fiddled := make(chan struct{})
	go func() {
		defer close(fiddled)
		// The ticker only paces the changes; correctness does not depend on it.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			d := faultproxy.Direction(i % 2)
			switch i % 6 {
			case 0:
				conn.Silence(d)
			case 1:
				conn.Resume(d)
			case 2:
				conn.SetLatency(d, time.Millisecond)
			case 3:
				conn.SetThrottle(d, 8<<20)
			case 4, 5:
				conn.SetLatency(d, 0)
				conn.SetThrottle(d, 0)
				conn.Resume(d)
			}
			select {
			case <-stopFiddling:
				for _, d := range []faultproxy.Direction{faultproxy.Upstream, faultproxy.Downstream} {
					conn.Resume(d)
					conn.SetLatency(d, 0)
					conn.SetThrottle(d, 0)
				}
				return
			case <-tick.C:
			}
		}
	}()

	written := make(chan error, 1)
	go func() {
		_, err := client.Write(payload)
		written <- err
	}()
	got := readN(t, client, len(payload)/2)
	close(stopFiddling)
	<-fiddled
	got = append(got, readN(t, client, len(payload)-len(got))...)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("echo differs from payload after changing faults mid-stream")
	}
}

// startServer runs handle for every connection to a new server on
// 127.0.0.1, and returns its address. Cleanup closes everything it opened
// and waits for its goroutines.
func startServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// sendAll returns a handler that sends data and then closes.
func sendAll(data []byte) func(net.Conn) {
	return func(c net.Conn) { _, _ = c.Write(data) }
}

func startProxy(t *testing.T, target string, defaults faultproxy.Faults) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(faultproxy.Config{Target: target, Defaults: defaults})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing the proxy: %v", err)
		}
	})
	return p
}

// dial connects to addr; reads on the connection fail after waitTimeout
// rather than hang.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

func firstConn(t *testing.T, p *faultproxy.Proxy) *faultproxy.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conns, err := p.WaitConns(ctx, 1)
	if err != nil {
		t.Fatalf("waiting for the proxy to accept a connection: %v", err)
	}
	return conns[0]
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if got, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d of %d bytes: %v", got, n, err)
	}
	return buf
}

func expectRead(t *testing.T, c net.Conn, want string) {
	t.Helper()
	if got := readN(t, c, len(want)); string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// roundTrip sends msg through an echo server and waits for it to come back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	write(t, c, msg)
	expectRead(t, c, msg)
}

// eventually polls cond until it holds, failing the test after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pattern is n bytes in which every offset is easy to tell apart.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestEndWithDeliversItsBytesLastAndClosesBothSides(t *testing.T) {
	serverEnd := make(chan error, 1)
	p := startProxy(t, startServer(t, func(c net.Conn) {
		_, err := io.Copy(c, c) // nil once the proxy's FIN arrives
		serverEnd <- err
	}), faultproxy.Faults{})
	client := dial(t, p.Addr())
	roundTrip(t, client, "hello")

	conn := firstConn(t, p)
	conn.EndWith(faultproxy.Downstream, []byte("bye"))
	// Bytes the client sends after that are not echoed back to it.
	write(t, client, "late")
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("client read after EndWith: %v", err)
	}
	if string(got) != "bye" {
		t.Fatalf("client read %q after EndWith, want %q then EOF", got, "bye")
	}
	select {
	case err := <-serverEnd:
		if err != nil {
			t.Fatalf("server side after EndWith: %v, want EOF", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the server side saw no EOF after EndWith")
	}
	select {
	case <-conn.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the connection is not done after EndWith")
	}
	conn.EndWith(faultproxy.Downstream, []byte("again")) // no effect once ended
}
