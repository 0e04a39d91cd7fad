package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/session"
)

// conn records what a session sends it and how it was closed.
type conn struct {
	mu     sync.Mutex
	frames []*protocol.Envelope
	closed protocol.CloseCode
}

func (c *conn) Send(frame []byte) bool {
	env := new(protocol.Envelope)
	if err := protocol.CodecBinary.Codec().Unmarshal(frame, env); err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, env)
	return true
}

func (c *conn) Close(code protocol.CloseCode, _ string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = code
}

func (c *conn) closeCode() protocol.CloseCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *conn) last() *protocol.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames[len(c.frames)-1]
}

func newRegistry(seatHold time.Duration) *session.Registry {
	return session.NewRegistry(session.Config{
		Node:     "n1",
		SeatHold: seatHold,
		Encoder:  func(c protocol.CodecID, env *protocol.Envelope) ([]byte, error) { return c.Codec().Marshal(nil, env) },
		Metrics:  observe.NewRealtime(observe.NewRegistry()),
	})
}

func connected(s *session.Session, token string, resumed bool, ack uint64, rooms []string) *protocol.Envelope {
	return &protocol.Envelope{Ack: ack, Body: &protocol.Envelope_Connected{Connected: &protocol.Connected{
		SessionId: s.ID(), ResumeToken: token, Resumed: resumed, Rooms: rooms,
	}}}
}

func open(t *testing.T, g *session.Registry, player string) (*session.Session, *conn, string) {
	t.Helper()
	c := new(conn)
	s := g.Open(context.Background(), &tandem.Player{ID: player}, protocol.CodecBinary, c, connected)
	return s, c, c.last().GetConnected().GetResumeToken()
}

func TestSecondOpenOfAPlayerEndsTheFirstWithDuplicateSession(t *testing.T) {
	g := newRegistry(time.Minute)
	_, first, _ := open(t, g, "p")
	_, second, _ := open(t, g, "p")
	if got := first.closeCode(); got != protocol.CloseDuplicateSession {
		t.Errorf("first connection closed with %v, want duplicate_session", got)
	}
	if got := second.closeCode(); got != 0 {
		t.Errorf("second connection closed with %v", got)
	}
	if g.Len() != 1 {
		t.Errorf("%d sessions, want 1", g.Len())
	}
}

func TestDispatchRunsEachClientSeqOnceAndRefusesASkip(t *testing.T) {
	g := newRegistry(time.Minute)
	s, c, _ := open(t, g, "p")
	var ran []uint64
	for _, seq := range []uint64{1, 2, 2, 1, 3} {
		if _, err := s.Dispatch(c, seq, func() { ran = append(ran, seq) }); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	if diff := cmp.Diff([]uint64{1, 2, 3}, ran); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	if _, err := s.Dispatch(c, 5, func() { t.Error("a skipping seq ran") }); tandem.ErrorCodeOf(err) != tandem.EInvalid {
		t.Errorf("skip ahead: %v, want invalid", err)
	}
	if ok, _ := s.Dispatch(new(conn), 4, func() { t.Error("a frame of another connection ran") }); ok {
		t.Error("a frame of a connection the session does not use was dispatched")
	}
}

func TestResumeReplaysTheSessionStreamAfterThePosition(t *testing.T) {
	g := newRegistry(time.Minute)
	s, c, token := open(t, g, "p")
	for i := range 3 {
		s.Reply(&protocol.Envelope{Cid: uint64(i + 1), Body: &protocol.Envelope_RpcReply{RpcReply: &protocol.RpcReply{}}})
	}
	g.Detach(context.Background(), s, c)

	next := new(conn)
	pos := []*protocol.StreamPos{{Seq: 1}}
	if _, err := g.Resume(context.Background(), token, &tandem.Player{ID: "p"}, protocol.CodecBinary, next, pos, connected); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, env := range next.frames {
		got = append(got, env.Seq)
	}
	// connected (seq 0), then session frames 2 and 3.
	if diff := cmp.Diff([]uint64{0, 2, 3}, got); diff != "" {
		t.Errorf("seqs sent on resume (-want +got):\n%s", diff)
	}
}

func TestResumeTokensTheClientMayHoldStayValidAndOthersDoNot(t *testing.T) {
	g := newRegistry(time.Minute)
	p := &tandem.Player{ID: "p"}
	ctx := context.Background()
	s, c, t1 := open(t, g, "p")
	g.Detach(ctx, s, c)

	// A resume whose connected frame the client never read: it still holds t1.
	c2 := new(conn)
	if _, err := g.Resume(ctx, t1, p, protocol.CodecBinary, c2, nil, connected); err != nil {
		t.Fatal(err)
	}
	t2 := c2.last().GetConnected().GetResumeToken()
	g.Detach(ctx, s, c2)
	c3 := new(conn)
	if _, err := g.Resume(ctx, t1, p, protocol.CodecBinary, c3, nil, connected); err != nil {
		t.Fatalf("resume with the token the client still holds: %v", err)
	}
	t3 := c3.last().GetConnected().GetResumeToken()
	if _, err := g.Resume(ctx, t2, p, protocol.CodecBinary, new(conn), nil, connected); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("a token the client cannot hold still works: %v", err)
	}
	// The client confirms t3 by sending on the connection that carried it.
	c4 := new(conn)
	if _, err := g.Resume(ctx, t3, p, protocol.CodecBinary, c4, nil, connected); err != nil {
		t.Fatal(err)
	}
	s.ConfirmToken(c4)
	if _, err := g.Resume(ctx, t3, p, protocol.CodecBinary, new(conn), nil, connected); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("a confirmed-over token still works: %v", err)
	}
}

func TestSweepEndsSessionsHeldLongerThanTheSeatHold(t *testing.T) {
	g := newRegistry(time.Second)
	s, c, token := open(t, g, "p")
	g.Detach(context.Background(), s, c)
	now := time.Now()
	if held := g.Sweep(context.Background(), now); held != 1 || g.Len() != 1 {
		t.Fatalf("right after the disconnect: held %d, sessions %d; want 1, 1", held, g.Len())
	}
	if held := g.Sweep(context.Background(), now.Add(2*time.Second)); held != 0 || g.Len() != 0 {
		t.Fatalf("after the seat hold: held %d, sessions %d; want 0, 0", held, g.Len())
	}
	_, err := g.Resume(context.Background(), token, &tandem.Player{ID: "p"}, protocol.CodecBinary, new(conn), nil, connected)
	if tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("resume after expiry: %v, want not_found", err)
	}
}

func TestResumeRefusesAnotherPlayersToken(t *testing.T) {
	g := newRegistry(time.Minute)
	s, c, token := open(t, g, "alice")
	g.Detach(context.Background(), s, c)
	_, err := g.Resume(context.Background(), token, &tandem.Player{ID: "mallory"}, protocol.CodecBinary, new(conn), nil, connected)
	if tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("resume with another player's token: %v, want not_found", err)
	}
}

func TestAJoinThatArrivesAfterTheSessionEndedIsRefused(t *testing.T) {
	g := newRegistry(time.Minute)
	first, _, _ := open(t, g, "p")
	open(t, g, "p") // ends the first session
	if _, ok := first.JoinedRoom(nil); ok {
		t.Error("an ended session accepted a room: the room would keep a member nobody removes")
	}
}

func TestOpenMovedEndsThePlayersSessionHereAsMoved(t *testing.T) {
	g := newRegistry(time.Minute)
	_, first, _ := open(t, g, "p")
	c := new(conn)
	g.OpenMoved(context.Background(), &tandem.Player{ID: "p"}, protocol.CodecBinary, c, connected)
	if got := first.closeCode(); got != protocol.CloseMoved {
		t.Errorf("first connection closed with %v, want moved", got)
	}
	if got := c.closeCode(); got != 0 {
		t.Errorf("second connection closed with %v", got)
	}
}
