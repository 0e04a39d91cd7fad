package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/faultproxy"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/internal/sdktest"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
	client "github.com/tandemhq/tandem/sdk/go"
)

// TestResumeDeliversEveryMessageExactlyOnceAcrossCuts runs many short
// sessions, each in its own recording room behind its own fault proxy (with
// a little latency each way): the room broadcasts 1,000 numbered messages
// while the client sends 200 numbered reliable inputs and 20 RPCs, and the
// proxy cuts the connection at random points — a reset at once, a FIN, a
// reset mid-frame after a random byte count in either direction, and a cut
// inside the reconnect's own resume handshake. Through every cut the client
// sees each message exactly once and in order, each RPC gets its reply, the
// room sees each input exactly once and in order, and nothing falls back to
// a gap or a new session.
//
// TANDEM_RESUME_SEED=N replays the cut plan of a failed run.
func TestResumeDeliversEveryMessageExactlyOnceAcrossCuts(t *testing.T) {
	const (
		runs        = 40 // sessions
		cutsPerRun  = 5  // planned cut points per session (a handshake cut adds the one it arms)
		messages    = 1000
		inputs      = 200
		concurrency = 4
	)
	seed := rand.Uint64()
	if s := os.Getenv("TANDEM_RESUME_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("TANDEM_RESUME_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with TANDEM_RESUME_SEED=%d)", seed, seed)

	rec := newRecorder()
	n := startNode(t, func(c *gateway.Config) {
		c.RoomTypes = []room.Type{recordingType("rec", rec, 200)}
		c.Heartbeat = 200 * time.Millisecond
		c.SeatHold = time.Minute
		c.ReplayCount = 4 * messages // no cut may turn into a gap
	})
	h := &cutHarness{
		n:        n,
		rec:      rec,
		messages: messages,
		inputs:   inputs,
		cuts:     cutsPerRun,
		respLen: map[protocol.CodecID]int{
			protocol.CodecJSON:   upgradeResponseLen(t, n, protocol.CodecJSON),
			protocol.CodecBinary: upgradeResponseLen(t, n, protocol.CodecBinary),
		},
	}

	var (
		wg                   sync.WaitGroup
		sem                  = make(chan struct{}, concurrency)
		cuts, handshakeCuts  atomic.Int64
		resumes, failedStats atomic.Int64
	)
	for i := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := h.run(i, rand.New(rand.NewPCG(seed, uint64(i))))
			if err != nil {
				failedStats.Add(1)
				t.Errorf("session %d (seed %d): %v", i, seed, err)
				return
			}
			cuts.Add(int64(st.cuts))
			handshakeCuts.Add(int64(st.handshakeCuts))
			resumes.Add(int64(st.resumes))
		}()
	}
	wg.Wait()
	if failedStats.Load() > 0 {
		return
	}
	t.Logf("%d connections cut, %d of them before their resume completed; %d resumes", cuts.Load(), handshakeCuts.Load(), resumes.Load())
	if cuts.Load() < runs*cutsPerRun {
		t.Errorf("only %d connections were cut, want at least %d", cuts.Load(), runs*cutsPerRun)
	}
	if handshakeCuts.Load() < 20 {
		t.Errorf("only %d cuts hit a connection inside its resume handshake, want at least 20", handshakeCuts.Load())
	}
}

// cutHarness runs one session of the exactly-once test.
type cutHarness struct {
	n                      *node
	rec                    *recorder
	messages, inputs, cuts int
	respLen                map[protocol.CodecID]int // bytes of the server's upgrade response
}

type cutStats struct {
	cuts          int // connections that ended while the session was in use
	handshakeCuts int // of them, connections cut before the client had resumed on them
	resumes       int
}

func (h *cutHarness) run(i int, rng *rand.Rand) (cutStats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Some latency each way, so that frames are in flight at a cut.
	base := faultproxy.Faults{
		Upstream:   faultproxy.DirectionFaults{Latency: time.Duration(rng.IntN(3000)) * time.Microsecond},
		Downstream: faultproxy.DirectionFaults{Latency: time.Duration(rng.IntN(3000)) * time.Microsecond},
	}
	proxy, err := faultproxy.New(faultproxy.Config{Target: h.n.srv.Listener.Addr().String(), Defaults: base})
	if err != nil {
		return cutStats{}, err
	}
	defer proxy.Close()
	codec := []protocol.CodecID{protocol.CodecJSON, protocol.CodecBinary}[i%2]
	player := fmt.Sprintf("cut-%d", i)
	c, err := client.Dial(ctx, sdkConfig(h.n, proxy, player, codec))
	if err != nil {
		return cutStats{}, err
	}
	defer c.Close()

	// The application: checks the stream as it arrives.
	var (
		received              progress
		resumed, disconnected atomic.Int64
		streamErr             firstError
		consumed              = make(chan struct{})
	)
	fail := func(err error) {
		streamErr.set(err)
		cancel()
	}
	// giveUp returns the stream's own error when there is one: it is what
	// made the session stop short.
	giveUp := func(err error) (cutStats, error) {
		if serr := streamErr.get(); serr != nil {
			return cutStats{}, serr
		}
		return cutStats{}, err
	}
	go func() {
		defer close(consumed)
		for ev := range c.Events() {
			switch e := ev.(type) {
			case *client.RoomMessage:
				got, _ := strconv.Atoi(strings.TrimSpace(string(e.Data)))
				if want := received.get() + 1; got != want {
					fail(fmt.Errorf("message %d arrived when %d was next (room seq %d)", got, want, e.Seq))
					continue
				}
				received.set(got)
			case *client.Resumed:
				resumed.Add(1)
			case *client.Disconnected:
				disconnected.Add(1)
			case *client.Joined:
			default:
				fail(fmt.Errorf("unexpected event %T %+v", ev, ev))
			}
		}
	}()

	r, err := c.Join(ctx, client.JoinOptions{
		Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "rec",
		Options: recOptions{Messages: h.messages, PerTick: 5}.bytes(),
	})
	if err != nil {
		return cutStats{}, fmt.Errorf("join: %w", err)
	}

	// The inputs go out spread over the stream, so cuts land among them.
	sent := make(chan error, 1)
	go func() {
		for k := 1; k <= h.inputs; k++ {
			if err := received.wait(ctx, (k-1)*h.messages/h.inputs); err != nil {
				sent <- err
				return
			}
			if err := r.Send(ctx, "in", []byte(strconv.Itoa(k)), client.HandlerOnly()); err != nil {
				sent <- fmt.Errorf("send input %d: %w", k, err)
				return
			}
		}
		sent <- nil
	}()

	// RPCs too, whose replies ride the session stream.
	const rpcs = 20
	called := make(chan error, 1)
	go func() {
		for k := 1; k <= rpcs; k++ {
			if err := received.wait(ctx, (k-1)*h.messages/rpcs); err != nil {
				called <- err
				return
			}
			got, err := c.RPC(ctx, "echo", []byte(strconv.Itoa(k)))
			if want := player + ":" + strconv.Itoa(k); err != nil || string(got) != want {
				called <- fmt.Errorf("rpc %d answered %q, %v; want %q", k, got, err, want)
				return
			}
		}
		called <- nil
	}()

	// The cuts, at random points of the stream. A cut is only armed while
	// at least a tenth of the stream is still to come, so a cut armed on a
	// byte count always finds the bytes to fire on.
	points := make([]int, h.cuts)
	for k := range points {
		points[k] = 1 + rng.IntN(h.messages*9/10)
	}
	slices.Sort(points)
	for _, at := range points {
		if err := received.wait(ctx, at); err != nil {
			return giveUp(err)
		}
		conn, err := currentConn(ctx, proxy)
		if err != nil {
			return giveUp(err)
		}
		switch rng.IntN(6) {
		case 0:
			conn.Reset()
		case 1:
			_ = conn.Close() // FIN both ways, without a WebSocket close
		case 2:
			conn.ResetAfter(faultproxy.Downstream, int64(1+rng.IntN(2000)))
		case 3:
			conn.ResetAfter(faultproxy.Upstream, int64(1+rng.IntN(300)))
		default:
			// Cut the connection, and the reconnect a few bytes into what
			// the server sends after its upgrade response (connected, then
			// the replay), or into the client's upgrade request and
			// connect frame.
			f := base
			if rng.IntN(3) > 0 {
				f.Downstream.ResetAfter = int64(h.respLen[codec] + 1 + rng.IntN(connectedBytes[codec]))
			} else {
				f.Upstream.ResetAfter = int64(1 + rng.IntN(600))
			}
			before := proxy.Accepted()
			proxy.SetDefaults(f)
			conn.Reset()
			_, err := proxy.WaitConns(ctx, before+1)
			proxy.SetDefaults(base)
			if err != nil {
				return giveUp(err)
			}
		}
		select {
		case <-conn.Done():
		case <-ctx.Done():
			return giveUp(errors.New("a cut never fired"))
		}
	}

	// Settle: every message and every input through, no fault pending.
	if err := received.wait(ctx, h.messages); err != nil {
		return giveUp(fmt.Errorf("waiting for message %d of %d: %w", received.get()+1, h.messages, err))
	}
	if err := <-sent; err != nil {
		return giveUp(err)
	}
	if err := <-called; err != nil {
		return giveUp(err)
	}
	if !poll(30*time.Second, func() bool { return len(h.rec.inputsOf(player)) >= h.inputs }) {
		return giveUp(fmt.Errorf("the room got %d of %d inputs", len(h.rec.inputsOf(player)), h.inputs))
	}
	for _, conn := range proxy.Conns() {
		conn.ResetAfter(faultproxy.Upstream, -1)
		conn.ResetAfter(faultproxy.Downstream, -1)
	}
	if !poll(30*time.Second, func() bool { return disconnected.Load() == resumed.Load() && len(proxy.Conns()) == 1 }) {
		return giveUp(fmt.Errorf("the client never settled on one connection (%d lost, %d resumed)", disconnected.Load(), resumed.Load()))
	}
	st := cutStats{cuts: proxy.Accepted() - 1, resumes: int(resumed.Load())}
	st.handshakeCuts = st.cuts - st.resumes

	if got, want := h.rec.inputsOf(player), numbered("", h.inputs); !slices.Equal(got, want) {
		return cutStats{}, fmt.Errorf("the room saw the inputs %v, want 1…%d exactly once, in order", summarize(got), h.inputs)
	}
	_ = c.Close()
	<-consumed
	return st, streamErr.get()
}

// firstError keeps the first error set.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// connectedBytes is about the size of a resumed connected frame: a
// handshake cut within it leaves the client without its new resume token.
var connectedBytes = map[protocol.CodecID]int{protocol.CodecJSON: 300, protocol.CodecBinary: 150}

// currentConn returns the newest connection the proxy holds open: the one
// the client uses, or is opening.
func currentConn(ctx context.Context, p *faultproxy.Proxy) (*faultproxy.Conn, error) {
	for {
		if cs := p.Conns(); len(cs) > 0 {
			return cs[len(cs)-1], nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("no open connection to cut")
		case <-time.After(time.Millisecond):
		}
	}
}

// progress is a counter that can be waited on.
type progress struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func (p *progress) get() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *progress) set(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// wait returns once the counter is at least n.
func (p *progress) wait(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		if p.n >= n {
			p.mu.Unlock()
			return nil
		}
		if p.changed == nil {
			p.changed = make(chan struct{})
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// upgradeResponseLen is the size of the node's WebSocket upgrade response
// for a codec: the first bytes of every connection, before connected.
func upgradeResponseLen(t *testing.T, n *node, codec protocol.CodecID) int {
	t.Helper()
	nc, err := net.Dial("tcp", n.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: " + codec.Codec().Name() + "\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	total := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read upgrade response: %v", err)
		}
		total += len(line)
		if total == len(line) && !strings.Contains(line, " 101 ") {
			t.Fatalf("upgrade refused: %q", line)
		}
		if line == "\r\n" {
			return total
		}
	}
}

// summarize shortens a long list for a failure message.
func summarize(s []string) string {
	if len(s) <= 20 {
		return fmt.Sprint(s)
	}
	return fmt.Sprintf("%v … %v (%d)", s[:10], s[len(s)-10:], len(s))
}

// TestResumeSurvivesManyHandshakesInARowBeingCut cuts every reconnect of a
// client right after the server has taken its resume — a few bytes into
// connected, so the client never learns its new resume token — a dozen
// times in a row. The token the client still holds must stay valid
// throughout: once the network lets a handshake through, the session
// resumes with nothing lost or doubled.
func TestResumeSurvivesManyHandshakesInARowBeingCut(t *testing.T) {
	const messages, cutsInARow = 300, 12
	rec := newRecorder()
	n := startNode(t, func(c *gateway.Config) {
		c.RoomTypes = []room.Type{recordingType("rec", rec, 100)}
		c.SeatHold = time.Minute
	})
	p := newProxy(t, n)
	c := dialSDK(t, sdkConfig(n, p, "p", protocol.CodecJSON))
	l := sdktest.LogEvents(t, c)
	ctx := context.Background()
	if _, err := c.Join(ctx, client.JoinOptions{
		Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "rec",
		Options: recOptions{Messages: messages, PerTick: 2}.bytes(),
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first messages", func() bool { return len(l.Messages("n")) >= 20 })

	before := p.Accepted()
	p.SetDefaults(faultproxy.Faults{Downstream: faultproxy.DirectionFaults{
		ResetAfter: int64(upgradeResponseLen(t, n, protocol.CodecJSON) + 5),
	}})
	p.Conns()[0].Reset()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := p.WaitConns(wctx, before+1+cutsInARow); err != nil {
		t.Fatalf("waiting for %d reconnects: %v", cutsInARow, err)
	}
	p.SetDefaults(faultproxy.Faults{})

	waitFor(t, 30*time.Second, "every message", func() bool {
		return len(l.Messages("n")) >= messages || len(sdktest.EventsOf[*client.SessionLost](l)) > 0
	})
	if lost := sdktest.EventsOf[*client.SessionLost](l); len(lost) > 0 {
		t.Fatalf("the session was lost after %d cut handshakes: %v", p.Accepted()-before-1, lost[0].Err)
	}
	if got := len(sdktest.EventsOf[*client.Resumed](l)); got != 1 {
		t.Errorf("%d resumes, want 1", got)
	}
	got := l.Messages("n")
	for i, m := range got {
		if strings.TrimSpace(m) != strconv.Itoa(i+1) {
			t.Fatalf("messages %v, want 1…%d exactly once, in order", summarize(got), messages)
		}
	}
}
