package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/tandemhq/tandem/protocol"
)

func seatReservation(room, nodeURL, seatToken string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_SeatReservation{SeatReservation: &protocol.SeatReservation{
		RoomId: room, NodeUrl: nodeURL, SeatToken: seatToken, ExpiresAtMs: 1_900_000_000_000,
	}}}
}

func errorFrame(code uint32, msg string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Error{Error: &protocol.Error{Code: code, Message: msg}}}
}

func leaveFrom(room string, reason protocol.LeaveReason) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{RoomId: room, Reason: reason}}}
}

// joinElsewhere starts Join{room} on c and answers it on p with a seat
// reservation on s2; it returns the new node's connection (connect read,
// not answered) and a function waiting for Join.
func joinElsewhere(t *testing.T, c *Client, p *peer, sessionSeq uint64, room string, s2 *fakeServer) (*peer, *protocol.Connect, func() (*Room, error)) {
	t.Helper()
	var r *Room
	wait := async(func() (err error) {
		r, err = c.Join(bg(), JoinOptions{RoomID: room, Metadata: []byte("m")})
		return err
	})
	j := p.expect(nil)
	if j.GetJoin().GetRoomId() != room {
		t.Fatalf("got %v, want join %s", j, room)
	}
	p.send(sessionFrame(sessionSeq, j.GetCid(), seatReservation(room, s2.url(), "seat.abc")))
	p2 := s2.next()
	hello := p2.expect(nil).GetConnect()
	if hello == nil {
		t.Fatal("first frame on the new node is not connect")
	}
	return p2, hello, func() (*Room, error) { err := wait(); return r, err }
}

// joinedThere answers the connect on p2 with a new session and the Join
// that follows with joined.
func joinedThere(t *testing.T, p2 *peer, room string) {
	t.Helper()
	p2.connected("s2", "rt2", false, 0)
	j := p2.expect(nil)
	want := &protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomId: room, Metadata: []byte("m")}
	if diff := cmp.Diff(want, j.GetJoin(), protocmp.Transform()); diff != "" || j.GetSeq() != 1 {
		t.Fatalf("join on the new node (seq %d, -want +got):\n%s", j.GetSeq(), diff)
	}
	p2.send(sessionFrame(1, j.GetCid(), joined(room, 1, 0, "there")))
}

// settle proves the client is idle and connected to p2: an RPC round trip
// on the new node, and then nothing else on Events.
func settle(t *testing.T, c *Client, p2 *peer) {
	t.Helper()
	wait := async(func() error { _, err := c.RPC(bg(), "ping", nil); return err })
	rpc := p2.expect(nil)
	p2.send(sessionFrame(2, rpc.GetCid(), &protocol.Envelope{Body: &protocol.Envelope_RpcReply{RpcReply: &protocol.RpcReply{}}}))
	if err := wait(); err != nil {
		t.Fatalf("RPC on the new node: %v", err)
	}
}

// remaining closes c and returns the events it had not delivered.
func remaining(c *Client, servers ...*fakeServer) []Event {
	for _, s := range servers {
		s.drain()
	}
	c.Close()
	var evs []Event
	for ev := range c.Events() {
		evs = append(evs, ev)
	}
	return evs
}

func TestJoinFollowsASeatReservationToAnotherNode(t *testing.T) {
	for _, id := range bothCodecs {
		t.Run(codecName(id), func(t *testing.T) {
			s1, s2 := newFakeServer(t, id), newFakeServer(t, id)
			c, p1 := connect(t, s1, fast)
			old := join(t, c, p1, 1, 0)

			p2, hello, wait := joinElsewhere(t, c, p1, 2, "r9", s2)
			if hello.GetSeatToken() != "seat.abc" || hello.GetResumeToken() != "" || hello.GetToken() != "tok" {
				t.Errorf("connect on the new node: %v, want the seat token, a token and no resume token", hello)
			}
			joinedThere(t, p2, "r9")
			r, err := wait()
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			if r.ID() != "r9" || string(r.State()) != "there" || c.SessionID() != "s2" {
				t.Errorf("room %q state %q session %q", r.ID(), r.State(), c.SessionID())
			}

			// The old node ends the old session.
			p1.send(sessionFrame(3, 0, leaveFrom("r1", protocol.LeaveReason_LEAVE_REASON_MOVED)))
			p1.closeCleanly(protocol.CloseMoved, "moved")

			var got []Event
			for range 2 {
				got = append(got, nextEvent(t, c))
			}
			slices.SortFunc(got, func(a, b Event) int { // the two connections interleave
				_, aJoined := a.(*Joined)
				_, bJoined := b.(*Joined)
				switch {
				case aJoined == bJoined:
					return 0
				case aJoined:
					return -1
				}
				return 1
			})
			want := []Event{
				&Joined{Room: r, Players: []string{"p1"}},
				&Left{Room: old, Reason: protocol.LeaveReason_LEAVE_REASON_MOVED},
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b *Room) bool { return a == b })); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if err := old.Send(bg(), "x", nil); !errors.Is(err, ErrRoomLeft) {
				t.Errorf("Send to the old room: %v, want ErrRoomLeft", err)
			}
			if err := r.Send(bg(), "hi", nil); err != nil {
				t.Fatal(err)
			}
			if m := p2.expect(nil); m.GetRoomMessage().GetRoomId() != "r9" || m.GetSeq() != 2 {
				t.Errorf("got %v, want the room message on the new node with seq 2", m)
			}
			settle(t, c, p2)

			if evs := remaining(c, s1, s2); len(evs) != 0 {
				t.Errorf("events after the move: %#v, want none (moved is silent)", evs)
			}
			select {
			case p := <-s1.conns:
				t.Errorf("the client connected to the old node again: %v", p.nc.RemoteAddr())
			default:
			}
		})
	}
}

// The old node may close with moved before the Join has handed the new
// connection over: the client waits for it instead of stopping.
func TestMovedCloseBeforeTheNewNodeAnswers(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	old := join(t, c, p1, 1, 0)
	p2, _, wait := joinElsewhere(t, c, p1, 2, "r9", s2)

	p1.send(sessionFrame(3, 0, leaveFrom("r1", protocol.LeaveReason_LEAVE_REASON_MOVED)))
	p1.closeCleanly(protocol.CloseMoved, "moved")
	if l := eventAs[*Left](t, c); l.Room != old || l.Reason != protocol.LeaveReason_LEAVE_REASON_MOVED {
		t.Errorf("Left %+v", l)
	}
	joinedThere(t, p2, "r9")
	r, err := wait()
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if j := eventAs[*Joined](t, c); j.Room != r {
		t.Errorf("Joined %+v", j)
	}
	settle(t, c, p2)
	if evs := remaining(c, s1, s2); len(evs) != 0 {
		t.Errorf("events after the move: %#v, want none", evs)
	}
}

func TestRefusedSeatFailsTheJoinAndKeepsTheConnection(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	p2, _, wait := joinElsewhere(t, c, p1, 1, "r9", s2)
	p2.send(errorFrame(CodeNotFound, "no such seat"))
	p2.closeWith(protocol.CloseSessionExpired, "")

	_, err := wait()
	var ce *CloseError
	if !errors.Is(err, &ServerError{Code: CodeNotFound}) || !errors.As(err, &ce) || ce.Code != protocol.CloseSessionExpired {
		t.Fatalf("Join: %v, want not_found with session_expired", err)
	}
	// The old connection goes on, and nothing happened to it.
	p1.send(sessionFrame(2, 0, &protocol.Envelope{Body: &protocol.Envelope_Notice{Notice: &protocol.Notice{Kind: "system", Text: "still here"}}}))
	if n := eventAs[*Notice](t, c); n.Text != "still here" {
		t.Errorf("Notice %+v", n)
	}
	r := join(t, c, p1, 3, 0)
	if r.ID() != "r1" || c.SessionID() != "s1" {
		t.Errorf("room %q session %q", r.ID(), c.SessionID())
	}
	if evs := remaining(c, s1, s2); len(evs) != 0 {
		t.Errorf("events: %#v, want none", evs)
	}
}

// Close while the old node has not closed the moved session yet: the drain
// of the old connection ends with the client.
func TestCloseDuringAMoveEndsBothConnections(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecBinary), newFakeServer(t, protocol.CodecBinary)
	c, p1 := connect(t, s1, fast)
	join(t, c, p1, 1, 0)
	p2, _, wait := joinElsewhere(t, c, p1, 2, "r9", s2)
	joinedThere(t, p2, "r9")
	if _, err := wait(); err != nil {
		t.Fatalf("Join: %v", err)
	}
	eventAs[*Joined](t, c)
	remaining(c, s1, s2) // goleak (TestMain) checks that every goroutine ended
}

func TestDeadNodeIsReplacedByTheOneLocateNames(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	var located atomic.Int32
	cfg := fast
	cfg.Locate = func(ctx context.Context) (string, error) {
		located.Add(1)
		return s2.url(), nil
	}
	c, p1 := connect(t, s1, cfg)
	join(t, c, p1, 1, 0)
	if located.Load() != 0 {
		t.Errorf("Locate called %d times before any dial failed", located.Load())
	}

	s1.close() // the node dies: its connections drop, its listener is gone
	eventAs[*Disconnected](t, c)

	// The client resumes where Locate says; that node does not hold the
	// session.
	p2 := s2.next()
	resume := p2.expect(nil).GetConnect()
	if resume.GetResumeToken() != "rt1" {
		t.Fatalf("connect %v, want a resume with rt1", resume)
	}
	p2.send(errorFrame(CodeNotFound, "resume token of another node"))
	p2.closeWith(protocol.CloseNodeGone, "")

	p3 := s2.next()
	if hello := p3.handshake("s2", "rt2", false, 0); hello.GetResumeToken() != "" {
		t.Fatalf("connect %v, want a new session", hello)
	}
	lost := eventAs[*SessionLost](t, c)
	var ce *CloseError
	if !cmp.Equal(lost.Rooms, []string{"r1"}) || !errors.As(lost.Err, &ce) || ce.Code != protocol.CloseNodeGone {
		t.Errorf("SessionLost %+v, want r1 and node_gone", lost)
	}
	if c.SessionID() != "s2" || located.Load() == 0 {
		t.Errorf("session %q, Locate called %d times", c.SessionID(), located.Load())
	}
	r := join(t, c, p3, 1, 0)
	if r.ID() != "r1" {
		t.Errorf("room %q", r.ID())
	}
	if evs := remaining(c, s2); len(evs) != 0 {
		t.Errorf("events: %#v, want none", evs)
	}
}

// One request to the web server serves both the URL and the next token.
func TestRealtimeURLSourceAsksTheWebServerAndKeepsTheToken(t *testing.T) {
	clock := newFakeClock(t0)
	authSrv := newFakeAuthServer(t, clock)
	a := loginGuest(t, authSrv, clock)
	locate := a.RealtimeURLSource()

	url, err := locate(bg())
	if err != nil || url != fakeRealtimeURL {
		t.Fatalf("locate: %q %v, want %q", url, err, fakeRealtimeURL)
	}
	if got := authSrv.realtimeRequests(); len(got) != 1 {
		t.Fatalf("realtime-token requests %v, want one: locate asks even while the token is fresh", got)
	}
	if tok := realtimeToken(t, a); tok != "rt_2" {
		t.Errorf("token %q, want rt_2, the one locate got", tok)
	}
	if got := authSrv.realtimeRequests(); len(got) != 1 {
		t.Errorf("realtime-token requests %v, want still one", got)
	}

	// With a stale access token, locate refreshes.
	clock.advance(20 * time.Minute)
	if url, err := locate(bg()); err != nil || url != fakeRealtimeURL {
		t.Fatalf("locate: %q %v", url, err)
	}
	if got := authSrv.refreshes(); len(got) != 1 {
		t.Errorf("refreshes %v, want one", got)
	}

	authSrv.setRealtimeProblem(func(w http.ResponseWriter) {
		writeTestProblem(w, 403, CodeBanned, "banned", nil)
	})
	if _, err := locate(bg()); !errors.Is(err, ErrLoggedOut) {
		t.Errorf("locate after a ban: %v, want ErrLoggedOut", err)
	}
}

// pinging makes p send a ping frame every interval, as a live node does,
// until the returned function is called; the test must not write to p
// meanwhile.
func pinging(p *peer, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		op := ws.OpText
		if p.codec.Binary() {
			op = ws.OpBinary
		}
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b, err := p.codec.Marshal(nil, pingFrame(1))
				if err != nil {
					return
				}
				p.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if wsutil.WriteServerMessage(p.nc, op, b) != nil {
					return
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// closeCodeFrom reads p's frames raw (answering nothing, so that only
// pinging writes to p) until the client's close frame, and returns its
// code.
func closeCodeFrom(t *testing.T, p *peer) ws.StatusCode {
	t.Helper()
	for {
		p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		h, err := ws.ReadHeader(p.nc)
		if err != nil {
			t.Fatalf("reading the client: %v", err)
		}
		if h.Length > 1<<16 {
			t.Fatalf("a client frame of %d bytes", h.Length)
		}
		f := ws.Frame{Header: h, Payload: make([]byte, h.Length)}
		if _, err := io.ReadFull(p.nc, f.Payload); err != nil {
			t.Fatalf("reading the client: %v", err)
		}
		if f.Header.OpCode != ws.OpClose {
			continue
		}
		if f.Header.Masked {
			ws.Cipher(f.Payload, f.Header.Mask, 0)
		}
		code, _ := ws.ParseCloseFrameData(f.Payload)
		return code
	}
}

// deadURL is a realtime URL nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ws://" + addr + "/ws"
}

func notice(text string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Notice{Notice: &protocol.Notice{Kind: "system", Text: text}}}
}

var sameRoom = cmp.Comparer(func(a, b *Room) bool { return a == b })

// Finding: a node that drains, or a resume answered with node_gone, means
// the node is gone: the client asks Locate before the next attempt instead
// of trying the same node again.
func TestNodeDrainingOrGoneAsksLocateBeforeTheNextAttempt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     protocol.CloseCode
		onResume bool // the close answers the resume; the connection just dropped
	}{
		{"node_draining close", protocol.CloseNodeDraining, false},
		{"node_gone close", protocol.CloseNodeGone, false},
		{"node_gone answer to the resume", protocol.CloseNodeGone, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
			var located atomic.Int32
			cfg := fast
			cfg.Locate = func(context.Context) (string, error) {
				located.Add(1)
				return s2.url(), nil
			}
			c, p1 := connect(t, s1, cfg)
			join(t, c, p1, 1, 0)
			if tc.onResume {
				p1.nc.Close()
				eventAs[*Disconnected](t, c)
				p := s1.next()
				if hello := p.expect(nil).GetConnect(); hello.GetResumeToken() != "rt1" {
					t.Fatalf("connect %v, want a resume with rt1", hello)
				}
				p.closeWith(tc.code, "")
			} else {
				p1.closeWith(tc.code, "")
				eventAs[*Disconnected](t, c)
			}

			p2 := s2.next()
			if hello := p2.handshake("s2", "rt2", false, 0); hello.GetResumeToken() != "" {
				t.Fatalf("connect %v, want a new session", hello)
			}
			lost := eventAs[*SessionLost](t, c)
			var ce *CloseError
			if !cmp.Equal(lost.Rooms, []string{"r1"}) || !errors.As(lost.Err, &ce) || ce.Code != tc.code {
				t.Errorf("SessionLost %+v, want r1 and %s", lost, tc.code)
			}
			if n := located.Load(); n != 1 {
				t.Errorf("Locate called %d times, want once", n)
			}
			if evs := remaining(c, s1, s2); len(evs) != 0 {
				t.Errorf("events: %#v, want none", evs)
			}
		})
	}
}

// Finding: while dials fail fast, Locate (a request to the web server) is
// not asked at the rate of the dials.
func TestLocateIsAskedAtMostOncePerSecondWhileDialsFail(t *testing.T) {
	s1 := newFakeServer(t, protocol.CodecJSON)
	dead := deadURL(t)
	var located, dials atomic.Int32
	cfg := fast
	cfg.NetDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	cfg.Locate = func(context.Context) (string, error) {
		located.Add(1)
		return dead, nil
	}
	c, _ := connect(t, s1, cfg)
	start := time.Now()
	s1.close()
	eventAs[*Disconnected](t, c)

	deadline := time.Now().Add(10 * time.Second)
	for dials.Load() < 30 {
		if time.Now().After(deadline) {
			t.Fatalf("%d dials, want 30", dials.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	n := located.Load()
	elapsed := time.Since(start)
	if n < 1 || n > 1+int32(elapsed/time.Second) {
		t.Errorf("Locate called %d times in %v (%d dials), want once, and at most once a second", n, elapsed, dials.Load())
	}
	if evs := remaining(c); len(evs) != 0 {
		t.Errorf("events: %#v, want none", evs)
	}
}

// Finding: two Joins answered with seat reservations do not move the
// session twice; the second asks again on the session the first moved to.
func TestSecondJoinsReservationDuringAMoveIsAskedAgainOnTheNewSession(t *testing.T) {
	s1, s2, s3 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	var ra, rb *Room
	waitA := async(func() (err error) {
		ra, err = c.Join(bg(), JoinOptions{RoomID: "r9", Metadata: []byte("m")})
		return err
	})
	ja := p1.expect(nil)
	waitB := async(func() (err error) {
		rb, err = c.Join(bg(), JoinOptions{RoomID: "r8"})
		return err
	})
	jb := p1.expect(nil)
	if ja.GetJoin().GetRoomId() != "r9" || jb.GetJoin().GetRoomId() != "r8" {
		t.Fatalf("joins %v and %v", ja, jb)
	}
	p1.send(sessionFrame(1, ja.GetCid(), seatReservation("r9", s2.url(), "seat.a")))
	p2 := s2.next()
	if hello := p2.expect(nil).GetConnect(); hello.GetSeatToken() != "seat.a" {
		t.Fatalf("connect %v, want seat.a", hello)
	}
	// The first Join is moving the session: the second's reservation is
	// for a session about to end.
	p1.send(sessionFrame(2, jb.GetCid(), seatReservation("r8", s3.url(), "seat.b")))
	p2.connected("s2", "rt2", false, 0)

	asked := map[string]bool{}
	for i := range 2 { // the two Joins on the new session, in either order
		j := p2.expect(nil)
		room := j.GetJoin().GetRoomId()
		asked[room] = true
		p2.send(sessionFrame(uint64(i+1), j.GetCid(), joined(room, 1, 0, "")))
	}
	if !asked["r9"] || !asked["r8"] {
		t.Errorf("joins on the new node: %v, want r9 and r8", asked)
	}
	if err := waitA(); err != nil {
		t.Fatalf("first Join: %v", err)
	}
	if err := waitB(); err != nil {
		t.Fatalf("second Join: %v", err)
	}
	if ra.ID() != "r9" || rb.ID() != "r8" || c.SessionID() != "s2" {
		t.Errorf("rooms %q %q, session %q", ra.ID(), rb.ID(), c.SessionID())
	}
	select {
	case p := <-s3.conns:
		t.Errorf("the second Join followed its stale reservation: %v", p.nc.RemoteAddr())
	default:
	}
	remaining(c, s1, s2, s3)
}

// Finding: an old node that never ends the moved session does not keep it
// (and its connection) forever: the client closes it normally.
func TestOldNodeThatKeepsTheMovedSessionIsClosedNormally(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecBinary), newFakeServer(t, protocol.CodecBinary)
	cfg := fast
	cfg.HeartbeatTimeout = time.Second
	c, p1 := connect(t, s1, cfg)
	old := join(t, c, p1, 1, 0)
	p2, _, wait := joinElsewhere(t, c, p1, 2, "r9", s2)
	stop1 := pinging(p1, 50*time.Millisecond) // alive, but never closing with moved
	joinedThere(t, p2, "r9")
	stop2 := pinging(p2, 50*time.Millisecond)
	r, err := wait()
	if err != nil {
		t.Fatalf("Join: %v", err)
	}

	if code := closeCodeFrom(t, p1); code != ws.StatusNormalClosure {
		t.Errorf("close %d on the old connection, want 1000", code)
	}
	stop1()
	p1.closeWith(protocol.CloseCode(ws.StatusNormalClosure), "") // the echo

	got := []Event{nextEvent(t, c), nextEvent(t, c)}
	slices.SortFunc(got, func(a, b Event) int { // Joined by run, Left by the drain
		_, aLeft := a.(*Left)
		_, bLeft := b.(*Left)
		switch {
		case aLeft == bLeft:
			return 0
		case aLeft:
			return 1
		}
		return -1
	})
	want := []Event{
		&Joined{Room: r, Players: []string{"p1"}},
		&Left{Room: old, Reason: protocol.LeaveReason_LEAVE_REASON_MOVED, Missed: true, State: []byte("s0")},
	}
	if diff := cmp.Diff(want, got, sameRoom); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	stop2()
	if evs := remaining(c, s1, s2); len(evs) != 0 {
		t.Errorf("events: %#v, want none", evs)
	}
}

// Finding: a `moved` close that no Join of this client caused is not a
// silent end: the session is lost, and a new one starts where Locate says.
func TestMovedCloseWithoutAMoveStartsANewSession(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	var located atomic.Int32
	cfg := fast
	cfg.Locate = func(context.Context) (string, error) {
		located.Add(1)
		return s2.url(), nil
	}
	c, p1 := connect(t, s1, cfg)
	join(t, c, p1, 1, 0)
	p1.closeCleanly(protocol.CloseMoved, "moved")

	if d := eventAs[*Disconnected](t, c); !isMoved(d.Err) {
		t.Errorf("Disconnected %v, want moved", d.Err)
	}
	p2 := s2.next()
	if hello := p2.handshake("s2", "rt2", false, 0); hello.GetResumeToken() != "" || hello.GetSeatToken() != "" {
		t.Fatalf("connect %v, want a new session", hello)
	}
	lost := eventAs[*SessionLost](t, c)
	if !cmp.Equal(lost.Rooms, []string{"r1"}) || !isMoved(lost.Err) {
		t.Errorf("SessionLost %+v, want r1 and moved", lost)
	}
	if c.SessionID() != "s2" || located.Load() != 1 {
		t.Errorf("session %q, Locate called %d times", c.SessionID(), located.Load())
	}
	if evs := remaining(c, s1, s2); len(evs) != 0 {
		t.Errorf("events: %#v, want none", evs)
	}
}

// Finding: the Join is answered before the old session's Left events,
// which wait for the application to read Events.
func TestMoveIsNotHeldUpByAnApplicationNotReadingEvents(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	old := join(t, c, p1, 1, 0)
	p2, _, wait := joinElsewhere(t, c, p1, 2, "r9", s2)
	for i := range eventBuffer { // Events is full: the application reads nothing
		p1.send(sessionFrame(uint64(3+i), 0, notice(fmt.Sprint(i))))
	}
	// Old r1 not left: run ends it itself. A clean close: an abortive one
	// could lose the close frame, and a plain Disconnected would wait for
	// the application.
	p1.closeCleanly(protocol.CloseMoved, "moved")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		ended := c.conn == nil
		c.mu.Unlock()
		if ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old connection did not end")
		}
		time.Sleep(5 * time.Millisecond)
	}

	joinedThere(t, p2, "r9") // the Join went on while nobody read Events
	for i := range eventBuffer {
		if n := eventAs[*Notice](t, c); n.Text != fmt.Sprint(i) {
			t.Fatalf("Notice %q, want %d", n.Text, i)
		}
	}
	want := &Left{Room: old, Reason: protocol.LeaveReason_LEAVE_REASON_MOVED, Missed: true, State: []byte("s0")}
	if diff := cmp.Diff(want, eventAs[*Left](t, c), sameRoom); diff != "" {
		t.Errorf("Left (-want +got):\n%s", diff)
	}
	r, err := wait()
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if j := eventAs[*Joined](t, c); j.Room != r {
		t.Errorf("Joined %+v", j)
	}
	if evs := remaining(c, s1, s2); len(evs) != 0 {
		t.Errorf("events: %#v, want none", evs)
	}
}

// Finding: a move adopted while the connection was down ends the
// disconnection with Resumed, as every Disconnected is followed.
func TestMoveWhileDisconnectedIsFollowedByResumed(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	cfg := fast
	cfg.MinBackoff, cfg.MaxBackoff = time.Minute, time.Minute // only the move reconnects
	c, p1 := connect(t, s1, cfg)
	old := join(t, c, p1, 1, 0)
	p2, _, wait := joinElsewhere(t, c, p1, 2, "r9", s2)
	p1.nc.Close()
	eventAs[*Disconnected](t, c)

	joinedThere(t, p2, "r9")
	r, err := wait()
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	got := []Event{nextEvent(t, c), nextEvent(t, c), nextEvent(t, c)}
	want := []Event{
		&Left{Room: old, Reason: protocol.LeaveReason_LEAVE_REASON_MOVED, Missed: true, State: []byte("s0")},
		&Resumed{},
		&Joined{Room: r, Players: []string{"p1"}},
	}
	if diff := cmp.Diff(want, got, sameRoom); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if evs := remaining(c, s1, s2); len(evs) != 0 {
		t.Errorf("events: %#v, want none", evs)
	}
}

// Finding: a request given up after a move is forgotten by the session it
// was sent on, not by the current one.
func TestRequestGivenUpAfterAMoveIsForgottenByItsSession(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	ctx, cancel := context.WithCancel(bg())
	defer cancel()
	waitRPC := async(func() error { _, err := c.RPC(ctx, "slow", nil); return err })
	if rpc := p1.expect(nil); rpc.GetRpc() == nil {
		t.Fatalf("got %v, want rpc", rpc)
	}
	c.mu.Lock()
	old := c.sess
	c.mu.Unlock()

	p2, _, wait := joinElsewhere(t, c, p1, 1, "r9", s2)
	joinedThere(t, p2, "r9")
	if _, err := wait(); err != nil {
		t.Fatalf("Join: %v", err)
	}
	eventAs[*Joined](t, c)
	cancel()
	if err := waitRPC(); !errors.Is(err, context.Canceled) {
		t.Fatalf("RPC: %v, want context.Canceled", err)
	}
	c.mu.Lock()
	n := len(old.pending)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("the old session still waits for %d replies, want none", n)
	}
	remaining(c, s1, s2)
}

// Finding: a cluster that keeps sending the Join on fails it with an
// error saying so.
func TestTooManySeatReservationsFailTheJoin(t *testing.T) {
	s1, s2 := newFakeServer(t, protocol.CodecJSON), newFakeServer(t, protocol.CodecJSON)
	c, p1 := connect(t, s1, fast)
	waitJoin := async(func() error { _, err := c.Join(bg(), JoinOptions{RoomID: "r9"}); return err })
	p := p1
	for i := 0; ; i++ {
		j := p.expect(nil)
		if j.GetJoin().GetRoomId() != "r9" {
			t.Fatalf("got %v, want join r9", j)
		}
		p.send(sessionFrame(1, j.GetCid(), seatReservation("r9", s2.url(), "seat")))
		if i == maxMoves {
			break
		}
		p = s2.next()
		p.handshake(fmt.Sprintf("s%d", i+2), "rt", false, 0)
	}
	err := waitJoin()
	if !errors.Is(err, errTooManyMoves) || err.Error() != "tandem: too many seat reservations for one join" {
		t.Errorf("Join: %v, want too many seat reservations", err)
	}
	select {
	case p := <-s2.conns:
		t.Errorf("the Join followed one reservation too many: %v", p.nc.RemoteAddr())
	default:
	}
	remaining(c, s1, s2)
}
