package client

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

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
			p1.closeWith(protocol.CloseMoved, "moved")

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
	p1.closeWith(protocol.CloseMoved, "moved")
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
