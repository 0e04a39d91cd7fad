package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/tandemhq/tandem/protocol"
)

var bothCodecs = []protocol.CodecID{protocol.CodecJSON, protocol.CodecBinary}

func codecName(id protocol.CodecID) string { return id.Codec().Name() }

// fast makes reconnects quick for tests.
var fast = Config{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, AckInterval: 10 * time.Millisecond}

func bg() context.Context { return context.Background() }

func sessionFrame(seq, cid uint64, env *protocol.Envelope) *protocol.Envelope {
	env.Seq, env.Cid = seq, cid
	return env
}

func roomFrame(room string, seq uint64, env *protocol.Envelope) *protocol.Envelope {
	env.Room, env.Seq = room, seq
	return env
}

func joined(room string, epoch uint32, seq uint64, state string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Joined{Joined: &protocol.Joined{
		RoomId: room, RoomType: "relay", Epoch: epoch, Seq: seq, State: []byte(state), Players: []string{"p1"},
	}}}
}

func message(from, topic, data string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{
		From: from, Topic: topic, Data: []byte(data),
	}}}
}

// join makes c join room r1 at room seq `at`, answered on session seq
// `sessionSeq`, and returns the room.
func join(t *testing.T, c *Client, p *peer, sessionSeq, at uint64) *Room {
	t.Helper()
	var r *Room
	wait := async(func() (err error) {
		r, err = c.Join(bg(), JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_JOIN_OR_CREATE, RoomType: "relay"})
		return err
	})
	env := p.expect(nil)
	if env.GetJoin().GetRoomType() != "relay" || env.GetCid() == 0 {
		t.Fatalf(
			"got %v, want join",
			env)
	}
	p.send(sessionFrame(sessionSeq, env.GetCid(), joined("r1", 1, at, "s0")))
	if err := wait(); err != nil {
		t.Fatalf(
			"Join: %v",
			err)
	}
	if j := eventAs[*Joined](t, c); j.Room != r {
		t.Fatalf(
			"Joined event for %v, Join returned %v",
			j.Room, r)
	}
	return r
}

func TestDialJoinSendAndReceiveInStreamOrder(t *testing.T) {
	for _, id := range bothCodecs {
		t.Run(codecName(id), func(t *testing.T) {
			s := newFakeServer(t, id)
			c, p := connect(t, s, fast)
			if first, err := p.read(); err != nil || first.GetAckFrame() == nil {
				t.Fatalf(
					"first frame after connected: %v %v, want ack_frame",
					first, err)
			}
			if c.SessionID() != "s1" || c.PlayerID() != "p1" {
				t.Errorf(
					"session %q player %q",
					c.SessionID(), c.PlayerID())
			}

			var r *Room
			waitJoin := async(func() (err error) {
				r, err = c.Join(bg(), JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_JOIN_OR_CREATE, RoomType: "relay"})
				return err
			})
			j := p.expect(nil)
			if j.GetSeq() != 1 || j.GetJoin().GetRoomType() != "relay" {
				t.Fatalf(
					"got %v, want join with seq 1",
					j)
			}
			p.send(
				sessionFrame(1, j.GetCid(), joined("r1", 1, 5, "s0")),
				roomFrame("r1", 6, message("p2", "chat", "hello")),
				roomFrame("r1", 6, message("p2", "chat", "hello")), // duplicate: dropped
				roomFrame("r1", 8, &protocol.Envelope{Body: &protocol.Envelope_RoomEvent{RoomEvent: &protocol.RoomEvent{
					PlayerId: "p3", Kind: protocol.RoomEventKind_ROOM_EVENT_JOINED,
				}}}),
				roomFrame("r1", 9, &protocol.Envelope{Body: &protocol.Envelope_Snapshot{Snapshot: &protocol.Snapshot{Tick: 4, State: []byte("s9")}}}),
				roomFrame("r1", 10, &protocol.Envelope{Body: &protocol.Envelope_Delta{Delta: &protocol.Delta{Tick: 5, Patch: []byte("d10")}}}),
				sessionFrame(2, 0, &protocol.Envelope{Body: &protocol.Envelope_Notice{Notice: &protocol.Notice{Kind: "system", Text: "hi"}}}),
			)
			if err := waitJoin(); err != nil {
				t.Fatalf(
					"Join: %v",
					err)
			}
			if r.ID() != "r1" || r.Type() != "relay" {
				t.Errorf(
					"room %q %q",
					r.ID(), r.Type())
			}
			var got []Event
			for range 6 {
				got = append(got, nextEvent(t, c))
			}
			want := []Event{
				&Joined{Room: r, Players: []string{"p1"}},
				&RoomMessage{Room: r, From: "p2", Topic: "chat", Data: []byte("hello"), Seq: 6},
				&RoomEvent{Room: r, PlayerID: "p3", Kind: protocol.RoomEventKind_ROOM_EVENT_JOINED, Seq: 8},
				&Snapshot{Room: r, Tick: 4, State: []byte("s9"), Seq: 9},
				&Delta{Room: r, Tick: 5, Patch: []byte("d10"), Seq: 10},
				&Notice{Kind: "system", Text: "hi"},
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b *Room) bool { return a == b })); diff != "" {
				t.Errorf(
					"events (-want +got):\n%s",
					diff)
			}
			if string(r.State()) != "s9" {
				t.Errorf(
					"State %q, want the last snapshot",
					r.State())
			}

			if err := r.Send(bg(), "move", []byte{1, 2}, Others()); err != nil {
				t.Fatal(err)
			}
			m := p.expect(nil)
			wantMsg := &protocol.Envelope{Cid: m.GetCid(), Seq: 2, Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{
				RoomId: "r1", Topic: "move", Data: []byte{1, 2}, Delivery: protocol.Delivery_DELIVERY_OTHERS,
			}}}
			if diff := cmp.Diff(wantMsg, m, protocmp.Transform()); diff != "" {
				t.Errorf(
					"room_message (-want +got):\n%s",
					diff)
			}

			var reply []byte
			waitRPC := async(func() (err error) {
				reply, err = c.RPC(bg(), "echo", []byte("x"))
				return err
			})
			rpc := p.expect(nil)
			if rpc.GetSeq() != 3 || rpc.GetRpc().GetMethod() != "echo" {
				t.Fatalf(
					"got %v, want rpc with seq 3",
					rpc)
			}
			p.send(sessionFrame(3, rpc.GetCid(), &protocol.Envelope{Body: &protocol.Envelope_RpcReply{RpcReply: &protocol.RpcReply{Data: []byte("y")}}}))
			if err := waitRPC(); err != nil || string(reply) != "y" {
				t.Fatalf(
					"RPC: %q %v",
					reply, err)
			}

			var rooms []*protocol.RoomInfo
			waitList := async(func() (err error) {
				rooms, err = c.ListRooms(bg(), "relay")
				return err
			})
			l := p.expect(nil)
			if l.GetSeq() != 4 || l.GetListRooms().GetRoomType() != "relay" {
				t.Fatalf(
					"got %v, want list_rooms with seq 4",
					l)
			}
			p.send(sessionFrame(4, l.GetCid(), &protocol.Envelope{Body: &protocol.Envelope_RoomList{RoomList: &protocol.RoomList{
				Rooms: []*protocol.RoomInfo{{RoomId: "r1", RoomType: "relay", Players: 2, MaxPlayers: 8, Open: true}},
			}}}))
			if err := waitList(); err != nil || len(rooms) != 1 || rooms[0].GetRoomId() != "r1" {
				t.Fatalf(
					"ListRooms: %v %v",
					rooms, err)
			}

			// The positions reach the server in an ack_frame.
			wantPos := []*protocol.StreamPos{{Seq: 4}, {Room: "r1", Epoch: 1, Seq: 10}}
			for {
				a := p.expect(isAck)
				if cmp.Equal(wantPos, a.GetAckFrame().GetPositions(), protocmp.Transform()) {
					break
				}
			}
		})
	}
}

func TestDialReturnsTypedErrorForABadToken(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	p, wait := dial(t, s, fast)
	p.expect(nil)
	p.send(&protocol.Envelope{Body: &protocol.Envelope_Error{Error: &protocol.Error{Code: CodeUnauthenticated, Message: "bad signature"}}})
	p.closeWith(protocol.CloseBadToken, "bad token")
	c, err := wait()
	if c != nil {
		t.Fatal("Dial succeeded")
	}
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != protocol.CloseBadToken || ce.Class() != protocol.ClassFinal {
		t.Fatalf(
			"Dial error %v, want a bad_token CloseError",
			err)
	}
	var se *ServerError
	if !errors.As(err, &se) || se.Code != CodeUnauthenticated {
		t.Fatalf(
			"Dial error %v does not carry the unauthenticated ServerError",
			err)
	}
}

func TestRequestErrorsAreTypedAndUnansweredErrorsBecomeEvents(t *testing.T) {
	s := newFakeServer(t, protocol.CodecBinary)
	c, p := connect(t, s, fast)
	waitJoin := async(func() error {
		_, err := c.Join(bg(), JoinOptions{RoomID: "full"})
		return err
	})
	j := p.expect(nil)
	p.send(sessionFrame(1, j.GetCid(), &protocol.Envelope{Body: &protocol.Envelope_Error{Error: &protocol.Error{
		Code: CodeRoomFull, Message: "no seat", Temporary: true,
	}}}))
	err := waitJoin()
	var se *ServerError
	if !errors.As(err, &se) || se.Code != CodeRoomFull || se.Name != "room_full" || !se.Temporary || se.Message != "no seat" {
		t.Fatalf(
			"Join error %#v",
			err)
	}

	r := join(t, c, p, 2, 0)
	if err := r.Send(bg(), "spam", nil); err != nil {
		t.Fatal(err)
	}
	m := p.expect(nil)
	p.send(sessionFrame(3, m.GetCid(), &protocol.Envelope{Body: &protocol.Envelope_Error{Error: &protocol.Error{Code: CodeRateLimited, Temporary: true}}}))
	e := eventAs[*ErrorEvent](t, c)
	if e.Room != "r1" || e.Topic != "spam" || e.Err.Code != CodeRateLimited {
		t.Errorf(
			"ErrorEvent %+v",
			e)
	}
}

func TestResumeResendsUnackedFramesAndReplaysExactlyOnce(t *testing.T) {
	for _, id := range bothCodecs {
		t.Run(codecName(id), func(t *testing.T) {
			s := newFakeServer(t, id)
			c, p := connect(t, s, fast)
			// Client seqs: join 1, m1 2, m2 3, m3 4, rpc 5.
			r := join(t, c, p, 1, 0)
			for _, topic := range []string{"m1", "m2", "m3"} {
				if err := r.Send(bg(), topic, nil); err != nil {
					t.Fatal(err)
				}
			}
			var reply []byte
			waitRPC := async(func() (err error) { // pending across the resume
				reply, err = c.RPC(bg(), "slow", nil)
				return err
			})
			for want := uint64(2); want <= 5; want++ {
				if env := p.expect(nil); env.GetSeq() != want {
					t.Fatalf(
						"got %v, want seq %d",
						env, want)
				}
			}
			p.send(
				roomFrame("r1", 1, message("p2", "a", "1")),
				roomFrame("r1", 2, message("p2", "a", "2")),
				&protocol.Envelope{Ack: 2, Body: &protocol.Envelope_AckFrame{AckFrame: &protocol.Ack{}}},
			)
			for _, seq := range []uint64{1, 2} {
				if m := eventAs[*RoomMessage](t, c); m.Seq != seq {
					t.Fatalf(
						"message seq %d, want %d",
						m.Seq, seq)
				}
			}
			p.nc.Close() // a cut without a close frame

			if d := eventAs[*Disconnected](t, c); d.Err == nil {
				t.Errorf("Disconnected without a reason")
			}
			p2 := s.next()
			hello := p2.handshake("s1", "rt2", true, 3) // the server had processed m2 too
			if hello.GetResumeToken() != "rt1" {
				t.Errorf(
					"resume token %q, want rt1",
					hello.GetResumeToken())
			}
			wantPos := []*protocol.StreamPos{{Seq: 1}, {Room: "r1", Epoch: 1, Seq: 2}}
			if diff := cmp.Diff(wantPos, hello.GetPositions(), protocmp.Transform()); diff != "" {
				t.Errorf(
					"resume positions (-want +got):\n%s",
					diff)
			}
			p2.send(
				roomFrame("r1", 2, message("p2", "a", "2")), // replayed, already had
				roomFrame("r1", 3, message("p2", "a", "3")),
			)
			// First ack_frame (confirming rt2), then the frames above ack 3, in order.
			if first, err := p2.read(); err != nil || first.GetAckFrame() == nil {
				t.Fatalf(
					"first frame after connected: %v %v, want ack_frame",
					first, err)
			}
			if m3 := p2.expect(nil); m3.GetSeq() != 4 || m3.GetRoomMessage().GetTopic() != "m3" {
				t.Fatalf(
					"got %v, want m3 resent with seq 4",
					m3)
			}
			rpc := p2.expect(nil)
			if rpc.GetSeq() != 5 || rpc.GetRpc().GetMethod() != "slow" {
				t.Fatalf(
					"got %v, want the rpc resent with seq 5",
					rpc)
			}
			p2.send(sessionFrame(2, rpc.GetCid(), &protocol.Envelope{Body: &protocol.Envelope_RpcReply{RpcReply: &protocol.RpcReply{Data: []byte("ok")}}}))
			if err := waitRPC(); err != nil || string(reply) != "ok" {
				t.Fatalf(
					"RPC across the resume: %q %v",
					reply, err)
			}
			eventAs[*Resumed](t, c)
			if m := eventAs[*RoomMessage](t, c); m.Seq != 3 {
				t.Fatalf(
					"after resume: message seq %d, want 3 (2 is a duplicate)",
					m.Seq)
			}
			if err := r.Send(bg(), "m4", nil); err != nil {
				t.Fatal(err)
			}
			if m4 := p2.expect(nil); m4.GetSeq() != 6 {
				t.Fatalf(
					"got %v, want m4 with seq 6: numbering continues across resumes",
					m4)
			}
		})
	}
}

func TestRejoinClassCloseStartsANewSessionAndReportsLostRooms(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	r := join(t, c, p, 1, 0)
	waitRPC := async(func() error {
		_, err := c.RPC(bg(), "never", nil)
		return err
	})
	p.expect(nil) // the rpc
	p.nc.Close()
	eventAs[*Disconnected](t, c)

	p2 := s.next()
	if hello := p2.expect(nil).GetConnect(); hello.GetResumeToken() != "rt1" {
		t.Fatalf(
			"want a resume attempt, got %v",
			hello)
	}
	p2.send(&protocol.Envelope{Body: &protocol.Envelope_Error{Error: &protocol.Error{Code: CodeNotFound}}})
	p2.closeWith(protocol.CloseSessionExpired, "")

	p3 := s.next()
	hello := p3.handshake("s2", "rt9", false, 0)
	if hello.GetResumeToken() != "" || len(hello.GetPositions()) != 0 {
		t.Errorf(
			"new session connect carries resume state: %v",
			hello)
	}
	lost := eventAs[*SessionLost](t, c)
	if diff := cmp.Diff([]string{"r1"}, lost.Rooms); diff != "" {
		t.Errorf(
			"lost rooms (-want +got):\n%s",
			diff)
	}
	var ce *CloseError
	if !errors.As(lost.Err, &ce) || ce.Code != protocol.CloseSessionExpired || ce.Server == nil || ce.Server.Code != CodeNotFound {
		t.Errorf(
			"SessionLost.Err %v",
			lost.Err)
	}
	if err := waitRPC(); !errors.Is(err, ErrSessionLost) {
		t.Errorf(
			"pending RPC: %v, want ErrSessionLost",
			err)
	}
	if err := r.Send(bg(), "x", nil); !errors.Is(err, ErrSessionLost) {
		t.Errorf(
			"Send to a lost room: %v",
			err)
	}
	if c.SessionID() != "s2" {
		t.Errorf(
			"session %q, want s2",
			c.SessionID())
	}
	go c.Join(bg(), JoinOptions{RoomID: "r1"})
	if j := p3.expect(nil); j.GetSeq() != 1 {
		t.Errorf(
			"first reliable frame of the new session has seq %d, want 1",
			j.GetSeq())
	}
}

func TestGapReplacesTheRoomState(t *testing.T) {
	s := newFakeServer(t, protocol.CodecBinary)
	c, p := connect(t, s, fast)
	r := join(t, c, p, 1, 3)
	p.send(
		roomFrame("r1", 10, &protocol.Envelope{Body: &protocol.Envelope_Gap{Gap: &protocol.Gap{
			RoomId: "r1", FromSeq: 3, Seq: 10, Epoch: 2, State: []byte("fresh"),
		}}}),
		roomFrame("r1", 10, message("p2", "a", "old")),
		roomFrame("r1", 11, message("p2", "a", "new")),
	)
	g := eventAs[*Gap](t, c)
	if diff := cmp.Diff(&Gap{Room: r, FromSeq: 3, Seq: 10, Epoch: 2, State: []byte("fresh")}, g, cmp.Comparer(func(a, b *Room) bool { return a == b })); diff != "" {
		t.Errorf(
			"gap (-want +got):\n%s",
			diff)
	}
	if m := eventAs[*RoomMessage](t, c); m.Seq != 11 {
		t.Errorf(
			"message seq %d after the gap, want 11",
			m.Seq)
	}
	if string(r.State()) != "fresh" {
		t.Errorf(
			"State %q, want the gap's",
			r.State())
	}
	wantPos := []*protocol.StreamPos{{Seq: 1}, {Room: "r1", Epoch: 2, Seq: 11}}
	for {
		if a := p.expect(isAck); cmp.Equal(wantPos, a.GetAckFrame().GetPositions(), protocmp.Transform()) {
			break
		}
	}
}

func TestLeaveWaitsForTheEndOfTheRoomStream(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	r := join(t, c, p, 1, 0)
	waitLeave := async(func() error { return r.Leave(bg()) })
	if l := p.expect(nil); l.GetLeave().GetRoomId() != "r1" {
		t.Fatalf(
			"got %v, want leave",
			l)
	}
	p.send(roomFrame("r1", 1, &protocol.Envelope{Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{
		RoomId: "r1", Reason: protocol.LeaveReason_LEAVE_REASON_REQUESTED,
	}}}))
	if err := waitLeave(); err != nil {
		t.Fatalf(
			"Leave: %v",
			err)
	}
	if l := eventAs[*Left](t, c); l.Room != r || l.Reason != protocol.LeaveReason_LEAVE_REASON_REQUESTED {
		t.Errorf(
			"Left %+v",
			l)
	}
	if err := r.Send(bg(), "x", nil); !errors.Is(err, ErrRoomLeft) {
		t.Errorf(
			"Send after leave: %v",
			err)
	}
	if err := r.Leave(bg()); err != nil {
		t.Errorf(
			"second Leave: %v",
			err)
	}
}

func TestFinalCloseStopsTheClient(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	p.closeWith(protocol.CloseBanned, "banned")
	cl := eventAs[*Closed](t, c)
	var ce *CloseError
	if !errors.As(cl.Err, &ce) || ce.Code != protocol.CloseBanned || ce.Reason != "banned" {
		t.Fatalf(
			"Closed.Err %v",
			cl.Err)
	}
	if _, ok := <-c.Events(); ok {
		t.Fatal("an event after Closed")
	}
	if _, err := c.RPC(bg(), "x", nil); !errors.As(err, &ce) || ce.Code != protocol.CloseBanned {
		t.Errorf(
			"RPC after a final close: %v",
			err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
}

func TestSilentConnectionIsTreatedAsLost(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	cfg := fast
	cfg.HeartbeatTimeout = 100 * time.Millisecond
	c, _ := connect(t, s, cfg) // the server never says anything again
	if d := eventAs[*Disconnected](t, c); !errors.Is(d.Err, ErrHeartbeatTimeout) {
		t.Fatalf(
			"Disconnected.Err %v, want ErrHeartbeatTimeout",
			d.Err)
	}
	p2 := s.next()
	if hello := p2.handshake("s1", "rt2", true, 0); hello.GetResumeToken() != "rt1" {
		t.Errorf(
			"reconnect did not resume: %v",
			hello)
	}
	eventAs[*Resumed](t, c)
}

func TestPingsAreAnsweredAndRTTMeasured(t *testing.T) {
	s := newFakeServer(t, protocol.CodecBinary)
	cfg := fast
	cfg.HeartbeatTimeout = 10 * time.Second
	p, wait := dial(t, s, cfg)
	p.heartbeatMs = 20 // the client pings every 20 ms
	p.handshake("s1", "rt1", false, 0)
	c, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	p.send(&protocol.Envelope{Body: &protocol.Envelope_Ping{Ping: &protocol.Ping{TimeUs: 77, RttUs: 1500}}})
	pong := p.expect(func(env *protocol.Envelope) bool { return env.GetPong() != nil })
	if pong.GetPong().GetTimeUs() != 77 || pong.GetSeq() != 0 {
		t.Errorf(
			"pong %v, want time_us 77 and seq 0",
			pong)
	}
	if c.RTT() != 1500*time.Microsecond {
		t.Errorf(
			"RTT %v before any own measurement, want the server's 1.5ms",
			c.RTT())
	}
	ping := p.expect(func(env *protocol.Envelope) bool { return env.GetPing() != nil })
	time.Sleep(2 * time.Millisecond) // a round trip the client must measure
	p.send(&protocol.Envelope{Body: &protocol.Envelope_Pong{Pong: &protocol.Pong{TimeUs: ping.GetPing().GetTimeUs()}}})
	deadline := time.Now().Add(10 * time.Second)
	for c.RTT() < 2*time.Millisecond || c.RTT() == 1500*time.Microsecond {
		if time.Now().After(deadline) {
			t.Fatalf(
				"RTT %v, want the client's own measurement ≥ 2ms",
				c.RTT())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseSendsNormalClosureAndStopsEverything(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	c, p := connect(t, s, fast)
	waitRPC := async(func() error {
		_, err := c.RPC(bg(), "x", nil)
		return err
	})
	p.expect(nil)
	closed := async(c.Close)
	var err error
	for {
		if _, err = p.read(); err != nil {
			break
		}
	}
	var wsClose wsutil.ClosedError
	if !errors.As(err, &wsClose) || wsClose.Code != ws.StatusNormalClosure {
		t.Fatalf(
			"server read %v, want a 1000 close",
			err)
	}
	p.nc.Close()
	if err := closed(); err != nil {
		t.Fatal(err)
	}
	if err := waitRPC(); !errors.Is(err, ErrClosed) {
		t.Errorf(
			"pending RPC: %v, want ErrClosed",
			err)
	}
	if _, ok := <-c.Events(); ok {
		t.Error("Events not closed")
	}
	if _, err := c.Join(bg(), JoinOptions{RoomID: "r"}); !errors.Is(err, ErrClosed) {
		t.Errorf(
			"Join after Close: %v",
			err)
	}
	if err := c.Close(); err != nil {
		t.Errorf(
			"second Close: %v",
			err)
	}
}

func TestCloseWhileReconnectingReturnsPromptly(t *testing.T) {
	s := newFakeServer(t, protocol.CodecJSON)
	cfg := fast
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	c, p := connect(t, s, cfg)
	p.nc.Close()
	eventAs[*Disconnected](t, c)
	if err := async(c.Close)(); err != nil {
		t.Fatal(err)
	}
}

func TestResumeAnsweredWithANewSessionIsReportedAsLost(t *testing.T) {
	s := newFakeServer(t, protocol.CodecBinary)
	c, p := connect(t, s, fast)
	join(t, c, p, 1, 0)
	p.nc.Close()
	eventAs[*Disconnected](t, c)

	p2 := s.next()
	if hello := p2.handshake("s2", "rt2", false, 0); hello.GetResumeToken() != "rt1" {
		t.Fatalf(
			"want a resume attempt, got %v",
			hello)
	}
	lost := eventAs[*SessionLost](t, c)
	if diff := cmp.Diff([]string{"r1"}, lost.Rooms); diff != "" {
		t.Errorf(
			"lost rooms (-want +got):\n%s",
			diff)
	}
	if c.SessionID() != "s2" {
		t.Errorf(
			"session %q, want s2",
			c.SessionID())
	}
	// The new session's positions start empty.
	if a := p2.expect(isAck); !cmp.Equal([]*protocol.StreamPos{{}}, a.GetAckFrame().GetPositions(), protocmp.Transform()) {
		t.Errorf(
			"first ack of the new session %v",
			a)
	}
}
