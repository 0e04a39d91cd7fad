package gateway_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/internal/realtimetest"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/token"
	"google.golang.org/protobuf/encoding/protowire"
)

// BenchmarkBroadcastFanout measures a relay room's broadcast through the
// whole node over real loopback connections: one member sends a 100-byte
// room_message to all (DELIVERY_ALL) and the benchmark waits until every
// member has read it, so each recipient gets one frame per broadcast (no
// batching), as at a 20 Hz tick. The clients are written not to allocate,
// so the allocations counted are the node's; allocs/recipient is the slope
// between a room of one and a room of n, which leaves out the per-broadcast
// work (decoding the message, encoding the frame once per codec) and keeps
// what each further recipient costs. The target is 0 (shared/DESIGN.md).
//
//	go test -run '^$' -bench BroadcastFanout -benchmem ./gateway/
func BenchmarkBroadcastFanout(b *testing.B) {
	for _, n := range []int{4, room.RelayMaxPlayers} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			fn := startFanoutNode(b)
			solo := fn.room(b, 1)
			full := fn.room(b, n)
			perRecipient := (full.allocsPerBroadcast(b) - solo.allocsPerBroadcast(b)) / float64(n-1)

			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				full.broadcast(b)
			}
			b.StopTimer()
			b.ReportMetric(perRecipient, "allocs/recipient")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/recipient")
		})
	}
}

// fanoutNode is a gateway on 127.0.0.1:0 for the benchmark.
type fanoutNode struct {
	url     string
	signer  *token.Signer
	players atomic.Int64
}

func startFanoutNode(tb testing.TB) *fanoutNode {
	rt := realtimetest.Start(tb, nil, func(c *gateway.Config) {
		c.Node = "bench"
		c.Heartbeat = time.Hour // no pings in the measurement
	})
	return &fanoutNode{url: rt.URL, signer: rt.Signer}
}

// fanoutRoom is a relay room whose first member sends and every member
// (the sender too) counts what it reads.
type fanoutRoom struct {
	roomID  string
	conns   []net.Conn
	sender  net.Conn
	seq     uint64
	frame   []byte // the sender's reusable frame buffer
	read    atomic.Int64
	want    atomic.Int64
	reached chan struct{}
	timeout *time.Timer // reused, so that waiting allocates nothing
	wg      sync.WaitGroup
}

// room opens a relay room with n members connected over the binary codec.
func (fn *fanoutNode) room(tb testing.TB, n int) *fanoutRoom {
	fr := &fanoutRoom{reached: make(chan struct{}, 1), frame: make([]byte, 0, 256), timeout: time.NewTimer(time.Hour)}
	for i := range n {
		conn := fn.dial(tb)
		mode, id := protocol.JoinMode_JOIN_MODE_JOIN, fr.roomID
		if i == 0 {
			mode = protocol.JoinMode_JOIN_MODE_CREATE
		}
		send(tb, conn, &protocol.Envelope{Seq: 1, Cid: 1, Body: &protocol.Envelope_Join{Join: &protocol.Join{Mode: mode, RoomId: id, RoomType: "relay"}}})
		for {
			env := recvEnv(tb, conn)
			if j := env.GetJoined(); j != nil {
				fr.roomID = j.RoomId
				break
			}
			if e := env.GetError(); e != nil {
				tb.Fatalf("join: %v", e)
			}
		}
		fr.conns = append(fr.conns, conn)
	}
	// Every member now only reads, until the room is closed.
	for _, conn := range fr.conns {
		fr.wg.Go(func() { fr.readLoop(conn) })
	}
	fr.sender, fr.seq = fr.conns[0], 1
	tb.Cleanup(func() {
		for _, c := range fr.conns {
			_ = wsutil.WriteClientMessage(c, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
		}
		fr.wg.Wait()
		for _, c := range fr.conns {
			c.Close()
		}
	})
	// Settle: the join events have been read, the writers' goroutines and
	// the replay buffer have reached their steady size.
	for range 2 * 1024 {
		fr.broadcast(tb)
	}
	return fr
}

func (fn *fanoutNode) dial(tb testing.TB) net.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, _, err := ws.Dialer{Protocols: []string{protocol.SubprotocolBinary}}.Dial(ctx, fn.url)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	player := fmt.Sprintf("p%d", fn.players.Add(1))
	tok, err := fn.signer.Issue(tandem.Player{ID: player}, time.Now(), time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	send(tb, conn, &protocol.Envelope{Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{Token: tok}}})
	if env := recvEnv(tb, conn); env.GetConnected() == nil {
		tb.Fatalf("want connected, got %v", env)
	}
	send(tb, conn, &protocol.Envelope{Body: &protocol.Envelope_AckFrame{AckFrame: &protocol.Ack{}}})
	return conn
}

func send(tb testing.TB, conn net.Conn, env *protocol.Envelope) {
	b, err := protocol.CodecBinary.Codec().Marshal(nil, env)
	if err != nil {
		tb.Fatal(err)
	}
	if err := wsutil.WriteClientMessage(conn, ws.OpBinary, b); err != nil {
		tb.Fatal(err)
	}
}

func recvEnv(tb testing.TB, conn net.Conn) *protocol.Envelope {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	b, err := wsutil.ReadServerBinary(conn)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	env := new(protocol.Envelope)
	if err := protocol.CodecBinary.Codec().Unmarshal(b, env); err != nil {
		tb.Fatal(err)
	}
	return env
}

// broadcast sends one message to the room and waits until every member has
// read it. It allocates nothing.
func (fr *fanoutRoom) broadcast(tb testing.TB) {
	fr.seq++
	fr.want.Add(int64(len(fr.conns)))
	// Envelope{seq, room_message{room_id, data}} by hand, masked in place.
	var body [256]byte
	msg := protowire.AppendTag(body[:0], 1, protowire.BytesType)
	msg = protowire.AppendString(msg, fr.roomID)
	msg = protowire.AppendTag(msg, 3, protowire.BytesType)
	msg = protowire.AppendVarint(msg, 100)
	msg = append(msg, make([]byte, 100)...)
	f := append(fr.frame[:0], 0x80|byte(ws.OpBinary), 0, 0, 0, 0, 0, 0, 0) // header, filled below
	start := len(f)
	f = protowire.AppendTag(f, 2, protowire.VarintType)
	f = protowire.AppendVarint(f, fr.seq)
	f = protowire.AppendTag(f, 15, protowire.BytesType)
	f = protowire.AppendBytes(f, msg)
	n := len(f) - start
	if n < 126 || n > 0xffff {
		tb.Fatalf("frame of %d bytes: the benchmark writes a 2-byte length", n)
	}
	f[1] = 0x80 | 126
	binary.BigEndian.PutUint16(f[2:], uint16(n))
	mask := [4]byte{1, 2, 3, 4}
	copy(f[4:8], mask[:])
	ws.Cipher(f[start:], mask, 0)
	fr.frame = f
	if _, err := fr.sender.Write(f); err != nil {
		tb.Fatal(err)
	}
	fr.timeout.Reset(10 * time.Second)
	select {
	case <-fr.reached:
	case <-fr.timeout.C:
		tb.Fatalf("the broadcast did not reach every member: %d of %d read", fr.read.Load(), fr.want.Load())
	}
}

// readLoop reads a member's frames into one buffer and counts the room
// messages. It allocates nothing per frame (ws.ReadHeader would: it reads
// into a fresh slice).
func (fr *fanoutRoom) readLoop(conn net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		hdr := buf[:2]
		if _, err := io.ReadFull(conn, hdr); err != nil {
			return
		}
		op, n := ws.OpCode(hdr[0]&0x0f), int(hdr[1]&0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(conn, buf[:2]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint16(buf))
		case 127:
			return // the node's frames here are far smaller
		}
		if op == ws.OpClose || n > len(buf) {
			return
		}
		p := buf[:n]
		if _, err := io.ReadFull(conn, p); err != nil {
			return
		}
		if isRoomMessage(p) && fr.read.Add(1) == fr.want.Load() {
			fr.reached <- struct{}{}
		}
	}
}

func isRoomMessage(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 15 {
			return true
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return false
		}
		b = b[n:]
	}
	return false
}

// allocsPerBroadcast counts the heap allocations of the whole process per
// broadcast, the least of a few runs (background work such as the node's
// sweeper adds to some of them).
func (fr *fanoutRoom) allocsPerBroadcast(tb testing.TB) float64 {
	const runs, per = 5, 500
	best := -1.0
	var ms runtime.MemStats
	for range runs {
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		for range per {
			fr.broadcast(tb)
		}
		runtime.ReadMemStats(&ms)
		if a := float64(ms.Mallocs-before) / per; best < 0 || a < best {
			best = a
		}
	}
	return best
}
