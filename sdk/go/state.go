package client

import (
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tandemhq/tandem/protocol"
)

// outFrame is a reliable client frame kept until the server acks its seq.
type outFrame struct {
	seq     uint64
	cid     uint64
	payload []byte // encoded envelope, resent as is
	room    string // room_message only: for ErrorEvent
	topic   string
}

// resendBuffer holds the reliable frames the server has not acknowledged,
// in seq order.
type resendBuffer struct {
	frames []outFrame
}

func (b *resendBuffer) add(f outFrame) { b.frames = append(b.frames, f) }

// trim drops the frames with seq <= ack.
func (b *resendBuffer) trim(ack uint64) {
	i := 0
	for i < len(b.frames) && b.frames[i].seq <= ack {
		b.frames[i] = outFrame{}
		i++
	}
	if i == 0 {
		return
	}
	n := copy(b.frames, b.frames[i:])
	clear(b.frames[n:])
	b.frames = b.frames[:n]
}

// pending returns a copy of the frames not yet acknowledged, in seq order.
func (b *resendBuffer) pending() []outFrame { return slices.Clone(b.frames) }

// byCid returns the unacknowledged frame with this cid.
func (b *resendBuffer) byCid(cid uint64) (outFrame, bool) {
	for _, f := range b.frames {
		if f.cid == cid {
			return f, true
		}
	}
	return outFrame{}, false
}

func (b *resendBuffer) reset() { b.frames = nil }

// streamPos is the client's position in a room stream.
type streamPos struct {
	epoch uint32
	seq   uint64
}

// tracker holds the last position received per stream and drops frames at
// or below it (a frame arrives twice only around a resume).
type tracker struct {
	session uint64
	rooms   map[string]*streamPos
	dirty   bool // frames accepted since the last ack_frame
}

func newTracker() tracker { return tracker{rooms: map[string]*streamPos{}} }

// acceptSession reports whether a session-stream frame with seq is new,
// and if so advances the position. seq 0 is not part of the stream.
func (t *tracker) acceptSession(seq uint64) bool {
	if seq == 0 {
		return true
	}
	if seq <= t.session {
		return false
	}
	t.session = seq
	t.dirty = true
	return true
}

// join starts tracking a room stream at (epoch, seq).
func (t *tracker) join(room string, epoch uint32, seq uint64) {
	t.rooms[room] = &streamPos{epoch: epoch, seq: seq}
	t.dirty = true
}

// leave stops tracking a room stream.
func (t *tracker) leave(room string) {
	delete(t.rooms, room)
	t.dirty = true
}

// acceptRoom reports whether the room is tracked and a frame with seq is new
// in it, and if so advances the position. seq 0 is not part of the stream.
func (t *tracker) acceptRoom(room string, seq uint64) (known, fresh bool) {
	p, ok := t.rooms[room]
	if !ok {
		return false, false
	}
	if seq == 0 {
		return true, true
	}
	if seq <= p.seq {
		return true, false
	}
	p.seq = seq
	t.dirty = true
	return true, true
}

// gap applies a gap: the position becomes (epoch, seq) unless the gap is a
// duplicate (not past the current position).
func (t *tracker) gap(room string, epoch uint32, seq uint64) (known, fresh bool) {
	p, ok := t.rooms[room]
	if !ok {
		return false, false
	}
	if epoch < p.epoch || (epoch == p.epoch && seq <= p.seq) {
		return true, false
	}
	p.epoch, p.seq = epoch, seq
	t.dirty = true
	return true, true
}

// positions returns every position: the session stream first, then the
// rooms sorted by id.
func (t *tracker) positions() []*protocol.StreamPos {
	ps := make([]*protocol.StreamPos, 0, 1+len(t.rooms))
	ps = append(ps, &protocol.StreamPos{Seq: t.session})
	for _, id := range slices.Sorted(maps.Keys(t.rooms)) {
		p := t.rooms[id]
		ps = append(ps, &protocol.StreamPos{Room: id, Epoch: p.epoch, Seq: p.seq})
	}
	return ps
}

func (t *tracker) reset() { *t = newTracker() }

// backoff returns the delay before reconnect attempt n (0-based): full
// jitter, uniform in [lo, min(hi, lo·2^(n+1))].
func backoff(n int, lo, hi time.Duration, rnd func(int64) int64) time.Duration {
	if lo <= 0 {
		lo = 1
	}
	if hi < lo {
		hi = lo
	}
	ceil := hi
	if n < 62 {
		if c := lo << (n + 1); c > 0 && c>>(n+1) == lo && c < hi {
			ceil = c
		}
	}
	if rnd == nil {
		rnd = rand.Int64N
	}
	return lo + time.Duration(rnd(int64(ceil-lo)+1))
}
