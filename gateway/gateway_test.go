package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/internal/realtimetest"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/token"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// node is a gateway served on 127.0.0.1:0 with a signer for its tokens.
type node struct {
	gw     *gateway.Gateway
	srv    *httptest.Server
	signer *token.Signer
	url    string
}

func startNode(t *testing.T, edit func(*gateway.Config)) *node {
	t.Helper()
	rt := realtimetest.Start(t, nil, func(cfg *gateway.Config) {
		cfg.Heartbeat = time.Second
		cfg.RPCs = map[string]tandem.RPC{
			"echo": func(_ context.Context, p *tandem.Player, data []byte) ([]byte, error) {
				return append([]byte(p.ID+":"), data...), nil
			},
		}
		if edit != nil {
			edit(cfg)
		}
	})
	return &node{gw: rt.Gateway, srv: rt.Server, signer: rt.Signer, url: rt.URL}
}

func (n *node) token(t *testing.T, player string) string {
	t.Helper()
	tok, err := n.signer.Issue(tandem.Player{ID: player}, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// raw is a test client that speaks frames directly.
type raw struct {
	t     *testing.T
	conn  net.Conn
	codec protocol.CodecID
	seq   uint64
}

func dialRaw(t *testing.T, url string, codec protocol.CodecID) *raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, _, err := ws.Dialer{Protocols: []string{codec.Codec().Name()}}.Dial(ctx, url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &raw{t: t, conn: conn, codec: codec}
}

func (c *raw) sendBytes(op ws.OpCode, b []byte) {
	c.t.Helper()
	if err := wsutil.WriteClientMessage(c.conn, op, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *raw) send(env *protocol.Envelope) {
	c.t.Helper()
	b, err := c.codec.Codec().Marshal(nil, env)
	if err != nil {
		c.t.Fatal(err)
	}
	op := ws.OpText
	if c.codec.Codec().Binary() {
		op = ws.OpBinary
	}
	c.sendBytes(op, b)
}

// reliable sends env with the next client seq.
func (c *raw) reliable(env *protocol.Envelope) {
	c.seq++
	env.Seq = c.seq
	c.send(env)
}

// recv returns the next envelope, answering pings; a close fails the test.
func (c *raw) recv() *protocol.Envelope {
	c.t.Helper()
	env, err := c.next()
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return env
}

// closed is the server's close frame.
type closed struct{ code protocol.CloseCode }

func (c closed) Error() string { return fmt.Sprintf("closed with %d (%s)", c.code, c.code) }

func (c *raw) next() (*protocol.Envelope, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		h, err := ws.ReadHeader(c.conn)
		if err != nil {
			return nil, err
		}
		b := make([]byte, h.Length)
		if _, err := io.ReadFull(c.conn, b); err != nil {
			return nil, err
		}
		if h.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(b)
			return nil, closed{protocol.CloseCode(code)}
		}
		env := new(protocol.Envelope)
		if err := c.codec.Codec().Unmarshal(b, env); err != nil {
			return nil, err
		}
		if p := env.GetPing(); p != nil {
			c.send(&protocol.Envelope{Body: &protocol.Envelope_Pong{Pong: &protocol.Pong{TimeUs: p.TimeUs}}})
			continue
		}
		if env.GetAckFrame() != nil || env.GetPong() != nil {
			continue
		}
		return env, nil
	}
}

// recvUntil skips frames until one matches.
func (c *raw) recvUntil(match func(*protocol.Envelope) bool) *protocol.Envelope {
	c.t.Helper()
	for {
		if env := c.recv(); match(env) {
			return env
		}
	}
}

// closeCode reads until the server closes and returns its close code.
func (c *raw) closeCode() protocol.CloseCode {
	c.t.Helper()
	for {
		_, err := c.next()
		var ce closed
		if errors.As(err, &ce) {
			return ce.code
		}
		if err != nil {
			c.t.Fatalf("want a close frame, got %v", err)
		}
	}
}

func (c *raw) connect(tok string) *protocol.Connected {
	c.t.Helper()
	c.send(&protocol.Envelope{Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{Token: tok}}})
	env := c.recv()
	if env.GetConnected() == nil {
		c.t.Fatalf("want connected, got %v", env)
	}
	c.send(&protocol.Envelope{Body: &protocol.Envelope_AckFrame{AckFrame: &protocol.Ack{}}})
	return env.GetConnected()
}

func (c *raw) join(j *protocol.Join) *protocol.Joined {
	c.t.Helper()
	c.reliable(&protocol.Envelope{Cid: 77, Body: &protocol.Envelope_Join{Join: j}})
	env := c.recvUntil(func(e *protocol.Envelope) bool { return e.Cid == 77 })
	if env.GetJoined() == nil {
		c.t.Fatalf("want joined, got %v", env)
	}
	return env.GetJoined()
}

func TestMixedCodecRoomDeliversEveryBroadcastToEveryClient(t *testing.T) {
	n := startNode(t, nil)
	a := dialRaw(t, n.url, protocol.CodecJSON)
	a.connect(n.token(t, "alice"))
	joined := a.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"})
	b := dialRaw(t, n.url, protocol.CodecBinary)
	b.connect(n.token(t, "bob"))
	b.join(&protocol.Join{RoomId: joined.RoomId})

	for i, c := range []*raw{a, b, a} {
		c.reliable(&protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{
			RoomId: joined.RoomId, Topic: "chat", Data: []byte{byte(i)},
		}}})
	}
	// Order holds per sender: alice's 0 before her 2.
	for _, c := range []*raw{a, b} {
		var got []byte
		for len(got) < 3 {
			env := c.recv()
			if m := env.GetRoomMessage(); m != nil {
				got = append(got, m.Data...)
			}
		}
		if i0, i2 := bytes.IndexByte(got, 0), bytes.IndexByte(got, 2); i0 < 0 || i2 < i0 || bytes.IndexByte(got, 1) < 0 {
			t.Errorf("client got %v, want 0, 1 and 2 with 0 before 2", got)
		}
	}
}

func TestBadInputGetsItsCodeAndLeavesOthersAlone(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) {
		c.ConnectTimeout = 300 * time.Millisecond
		c.MaxFrameBytes = 1024
		c.Limits = gateway.Limits{MsgRate: 20, MsgBurst: 20, FloodViolations: 20}
	})
	// A bystander in a relay room keeps working throughout.
	by := dialRaw(t, n.url, protocol.CodecBinary)
	by.connect(n.token(t, "bystander"))
	roomID := by.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"}).RoomId
	ping := func() {
		t.Helper()
		by.reliable(&protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{RoomId: roomID, Data: []byte("hi")}}})
		by.recvUntil(func(e *protocol.Envelope) bool { return string(e.GetRoomMessage().GetData()) == "hi" })
	}

	expired, _ := n.signer.Sign(tandem.Claims{Subject: "x", Audience: tandem.AudienceRealtime, IssuedAt: time.Now().Add(-5 * time.Minute).Unix(), ExpiresAt: time.Now().Add(-time.Minute).Unix()})
	wrongAud, _ := n.signer.Sign(tandem.Claims{Subject: "x", Audience: "web", IssuedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Minute).Unix()})
	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged, _ := token.NewSigner("test", otherKey).Issue(tandem.Player{ID: "x"}, time.Now(), time.Minute)

	cases := []struct {
		name  string
		codec protocol.CodecID
		do    func(c *raw)
		code  protocol.CloseCode
	}{
		{"malformed JSON", protocol.CodecJSON, func(c *raw) { c.sendBytes(ws.OpText, []byte(`{"connect":`)) }, protocol.CloseProtocolViolation},
		{"malformed protobuf", protocol.CodecBinary, func(c *raw) { c.sendBytes(ws.OpBinary, []byte{0xff, 0xff, 0xff}) }, protocol.CloseProtocolViolation},
		{"oversized frame", protocol.CodecBinary, func(c *raw) { c.sendBytes(ws.OpBinary, make([]byte, 2048)) }, protocol.CloseTooLarge},
		{"no connect frame", protocol.CodecJSON, func(c *raw) {}, protocol.CloseConnectTimeout},
		{"join before connect", protocol.CodecJSON, func(c *raw) { c.reliable(&protocol.Envelope{Body: &protocol.Envelope_Join{Join: &protocol.Join{}}}) }, protocol.CloseProtocolViolation},
		{"forged token", protocol.CodecJSON, func(c *raw) { c.send(connectEnv(forged)) }, protocol.CloseBadToken},
		{"expired token", protocol.CodecJSON, func(c *raw) { c.send(connectEnv(expired)) }, protocol.CloseBadToken},
		{"wrong audience", protocol.CodecBinary, func(c *raw) { c.send(connectEnv(wrongAud)) }, protocol.CloseBadToken},
		{"seq skipping ahead", protocol.CodecJSON, func(c *raw) {
			c.connect(n.token(t, "skipper"))
			c.send(&protocol.Envelope{Seq: 5, Body: &protocol.Envelope_ListRooms{ListRooms: &protocol.ListRooms{}}})
		}, protocol.CloseProtocolViolation},
		{"flooding", protocol.CodecBinary, func(c *raw) {
			c.connect(n.token(t, "flooder"))
			for range 100 {
				c.reliable(&protocol.Envelope{Body: &protocol.Envelope_ListRooms{ListRooms: &protocol.ListRooms{}}})
			}
		}, protocol.ClosePolicyViolation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, n.url, tc.codec)
			c.t = t
			tc.do(c)
			if got := c.closeCode(); got != tc.code {
				t.Errorf("close code %d (%s), want %d (%s)", got, got, tc.code, tc.code)
			}
			ping()
		})
	}
}

func connectEnv(tok string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{Token: tok}}}
}

func TestErrorsThatKeepTheConnection(t *testing.T) {
	n := startNode(t, nil)
	c := dialRaw(t, n.url, protocol.CodecJSON)
	c.connect(n.token(t, "p1"))
	cases := []struct {
		name string
		env  *protocol.Envelope
		code tandem.ErrorCode
	}{
		{"message to a room the player is not in", &protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{RoomId: "nope"}}}, tandem.ENotInRoom},
		{"unknown message type", &protocol.Envelope{}, tandem.EUnknownMessage},
		{"unknown room type", &protocol.Envelope{Body: &protocol.Envelope_Join{Join: &protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "chess"}}}, tandem.ENotFound},
		{"unknown rpc", &protocol.Envelope{Body: &protocol.Envelope_Rpc{Rpc: &protocol.Rpc{Method: "nope"}}}, tandem.EUnknownRPC},
	}
	for i, tc := range cases {
		tc.env.Cid = uint64(100 + i)
		c.reliable(tc.env)
		env := c.recvUntil(func(e *protocol.Envelope) bool { return e.Cid == tc.env.Cid })
		if got := tandem.ErrorCode(env.GetError().GetCode()); got != tc.code {
			t.Errorf("%s: error code %v, want %v (%v)", tc.name, got, tc.code, env)
		}
	}
	c.reliable(&protocol.Envelope{Cid: 9, Body: &protocol.Envelope_Rpc{Rpc: &protocol.Rpc{Method: "echo", Data: []byte("x")}}})
	env := c.recvUntil(func(e *protocol.Envelope) bool { return e.Cid == 9 })
	if got := string(env.GetRpcReply().GetData()); got != "p1:x" {
		t.Errorf("rpc reply %q, want p1:x", got)
	}
}

func TestOriginNotAllowedGets403(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.CORSOrigins = []string{"https://game.example"} })
	for origin, want := range map[string]int{"https://evil.example": 403, "https://game.example": 101} {
		req, _ := http.NewRequest("GET", n.srv.URL+"/ws", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Protocol", protocol.SubprotocolJSON)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("origin %s: status %d, want %d", origin, resp.StatusCode, want)
		}
	}
}

func TestSecondLoginEndsTheFirstWithDuplicateSession(t *testing.T) {
	n := startNode(t, nil)
	first := dialRaw(t, n.url, protocol.CodecJSON)
	first.connect(n.token(t, "p"))
	second := dialRaw(t, n.url, protocol.CodecJSON)
	second.connect(n.token(t, "p"))
	if got := first.closeCode(); got != protocol.CloseDuplicateSession {
		t.Errorf("first session closed with %d, want duplicate_session", got)
	}
}

func TestBackToBackJoinsCannotPassMaxRooms(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.Limits.MaxRooms = 4 })
	c := dialRaw(t, n.url, protocol.CodecBinary)
	c.connect(n.token(t, "p"))
	for i := range 6 {
		c.reliable(&protocol.Envelope{Cid: uint64(100 + i), Body: &protocol.Envelope_Join{Join: &protocol.Join{
			Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay",
		}}})
	}
	joined, refused := 0, 0
	for joined+refused < 6 {
		env := c.recv()
		switch {
		case env.GetJoined() != nil:
			joined++
		case tandem.ErrorCode(env.GetError().GetCode()) == tandem.EQuotaExceeded:
			refused++
		}
	}
	if joined != 4 || refused != 2 {
		t.Errorf("%d joined and %d refused, want 4 and 2", joined, refused)
	}
}

func TestRateLimitsBelongToTheSessionAndSurviveAResume(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) {
		c.Limits = gateway.Limits{MsgRate: 1, MsgBurst: 3}
		c.SeatHold = time.Minute
	})
	c := dialRaw(t, n.url, protocol.CodecBinary)
	resumeToken := c.connect(n.token(t, "p")).ResumeToken
	for range 3 {
		c.reliable(&protocol.Envelope{Body: &protocol.Envelope_ListRooms{ListRooms: &protocol.ListRooms{}}})
	}
	c.recvUntil(func(e *protocol.Envelope) bool { return e.Seq == 3 })
	c.conn.Close()

	again := dialRaw(t, n.url, protocol.CodecBinary)
	again.send(&protocol.Envelope{Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{
		Token: n.token(t, "p"), ResumeToken: resumeToken, Positions: []*protocol.StreamPos{{Seq: 3}},
	}}})
	if env := again.recv(); !env.GetConnected().GetResumed() {
		t.Fatalf("want a resumed connected, got %v", env)
	}
	// A fresh burst would take all three; the session's bucket, refilled at
	// one a second, refuses at least one unless seconds pass in between.
	again.seq = 3
	for i := range 3 {
		again.reliable(&protocol.Envelope{Cid: uint64(10 + i), Body: &protocol.Envelope_ListRooms{ListRooms: &protocol.ListRooms{}}})
	}
	refused := 0
	for i := range 3 {
		env := again.recvUntil(func(e *protocol.Envelope) bool { return e.Cid == uint64(10+i) })
		if tandem.ErrorCode(env.GetError().GetCode()) == tandem.ERateLimited {
			refused++
		}
	}
	if refused == 0 {
		t.Error("after a resume the message burst was full again: limits must belong to the session")
	}
}

func TestConcurrentJoinOrCreateNeverAnswersRoomFull(t *testing.T) {
	n := startNode(t, nil)
	const players = 24 // three arenas of 8
	clients := make([]*raw, players)
	for i := range clients {
		clients[i] = dialRaw(t, n.url, protocol.CodecBinary)
		clients[i].connect(n.token(t, fmt.Sprintf("p%d", i)))
	}
	results := make(chan *protocol.Envelope, players)
	for _, c := range clients {
		go func() {
			c.seq++
			env := &protocol.Envelope{Seq: c.seq, Cid: 1, Body: &protocol.Envelope_Join{Join: &protocol.Join{
				Mode: protocol.JoinMode_JOIN_MODE_JOIN_OR_CREATE, RoomType: "arena",
			}}}
			b, _ := c.codec.Codec().Marshal(nil, env)
			if err := wsutil.WriteClientMessage(c.conn, ws.OpBinary, b); err != nil {
				results <- nil
				return
			}
			for {
				reply, err := c.next()
				if err != nil || reply.Cid == 1 {
					results <- reply
					return
				}
			}
		}()
	}
	rooms := map[string]int{}
	for range players {
		reply := <-results
		if reply.GetJoined() == nil {
			t.Errorf("join-or-create answered %v, want joined", reply)
			continue
		}
		rooms[reply.GetJoined().RoomId]++
	}
	for id, count := range rooms {
		if count > 8 {
			t.Errorf("room %s got %d players, over its 8", id, count)
		}
	}
}

// After a close the server started for a broken rule, the client's close
// frame completes the handshake and the server closes TCP at once (RFC 6455
// §7.1.1: a browser waits for that), not when the close grace runs out.
func TestServerClosesTCPOnceTheClientAnswersItsClose(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.CloseGrace = time.Hour })
	c := dialRaw(t, n.url, protocol.CodecJSON)
	c.sendBytes(ws.OpText, []byte(`{"connect":`))
	if got := c.closeCode(); got != protocol.CloseProtocolViolation {
		t.Fatalf("close code %s, want protocol_violation", got)
	}
	c.sendBytes(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := c.conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the close handshake: %d bytes, %v; want EOF from the server", n, err)
	}
}

// A frame refused as too large is dropped whole before the server looks for
// the client's close frame: bytes of its payload that look like a close
// frame do not end the linger early (the unread rest would make the kernel
// reset the connection).
func TestTooLargeFrameIsDroppedWholeBeforeTheClose(t *testing.T) {
	n := startNode(t, func(c *gateway.Config) { c.CloseGrace = time.Hour; c.MaxFrameBytes = 1024 })
	c := dialRaw(t, n.url, protocol.CodecBinary)
	// Mask 0: the payload goes as is, every byte 0x88 — a close header.
	payload := bytes.Repeat([]byte{0x88}, 4096)
	var frame bytes.Buffer
	if err := ws.WriteHeader(&frame, ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Length: int64(len(payload))}); err != nil {
		t.Fatal(err)
	}
	frame.Write(payload)
	if _, err := c.conn.Write(frame.Bytes()); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got := c.closeCode(); got != protocol.CloseTooLarge {
		t.Fatalf("close code %s, want too_large", got)
	}
	c.sendBytes(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := c.conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the close handshake: %d bytes, %v; want EOF (not a reset)", n, err)
	}
}
