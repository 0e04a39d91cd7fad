package client

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tandemhq/tandem/protocol"
	"google.golang.org/protobuf/proto"
)

func TestBackoffBounds(t *testing.T) {
	lo, hi := 100*time.Millisecond, 5*time.Second
	for n := range 100 {
		ceil := hi
		if n < 10 {
			ceil = min(hi, lo<<(n+1))
		}
		// The extremes of the jitter.
		if got := backoff(n, lo, hi, func(int64) int64 { return 0 }); got != lo {
			t.Errorf(
				"attempt %d, smallest jitter: got %v, want %v",
				n, got, lo)
		}
		if got := backoff(n, lo, hi, func(k int64) int64 { return k - 1 }); got != ceil {
			t.Errorf(
				"attempt %d, largest jitter: got %v, want %v",
				n, got, ceil)
		}
		for range 50 {
			got := backoff(n, lo, hi, nil)
			if got < lo || got > ceil {
				t.Fatalf(
					"attempt %d: %v outside [%v, %v]",
					n, got, lo, ceil)
			}
		}
	}
	// Degenerate settings stay sane.
	if got := backoff(3, time.Second, time.Millisecond, nil); got != time.Second {
		t.Errorf(
			"max below min: got %v, want %v",
			got, time.Second)
	}
	if got := backoff(1<<30, lo, hi, nil); got < lo || got > hi {
		t.Errorf(
			"huge attempt: got %v",
			got)
	}
	// Full jitter: the delays spread over the range.
	r := rand.New(rand.NewPCG(1, 2))
	var below, above int
	for range 1000 {
		d := backoff(20, lo, hi, r.Int64N)
		if d < (lo+hi)/2 {
			below++
		} else {
			above++
		}
	}
	if below < 300 || above < 300 {
		t.Errorf(
			"jitter not spread: %d below the middle, %d above",
			below, above)
	}
}

func TestResendBufferTrim(t *testing.T) {
	var b resendBuffer
	for seq := uint64(1); seq <= 5; seq++ {
		b.add(outFrame{seq: seq, cid: seq + 100, payload: []byte{byte(seq)}})
	}
	seqs := func() []uint64 {
		var s []uint64
		for _, f := range b.pending() {
			s = append(s, f.seq)
		}
		return s
	}
	b.trim(0)
	if got := seqs(); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf(
			"trim(0): %v",
			got)
	}
	b.trim(2)
	if got := seqs(); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf(
			"trim(2): %v",
			got)
	}
	b.trim(2) // an old ack changes nothing
	if got := seqs(); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf(
			"trim(2) again: %v",
			got)
	}
	if _, ok := b.byCid(101); ok {
		t.Errorf("acked frame still found by cid")
	}
	if f, ok := b.byCid(104); !ok || f.seq != 4 {
		t.Errorf(
			"byCid(104) = %+v, %v",
			f, ok)
	}
	b.add(outFrame{seq: 6})
	b.trim(5)
	if got := seqs(); !slices.Equal(got, []uint64{6}) {
		t.Fatalf(
			"trim(5): %v",
			got)
	}
	b.trim(100) // an ack past everything empties the buffer
	if got := seqs(); len(got) != 0 {
		t.Fatalf(
			"trim(100): %v",
			got)
	}
	// pending is a copy: trimming does not change a snapshot taken before.
	b.add(outFrame{seq: 7})
	b.add(outFrame{seq: 8})
	snap := b.pending()
	b.trim(7)
	if len(snap) != 2 || snap[0].seq != 7 || snap[1].seq != 8 {
		t.Errorf(
			"snapshot changed: %+v",
			snap)
	}
}

func TestTrackerSessionStream(t *testing.T) {
	tr := newTracker()
	for _, tc := range []struct {
		seq  uint64
		want bool
	}{
		{
			seq:  1,
			want: true,
		},
		{
			seq:  2,
			want: true,
		},
		{
			seq:  2, // duplicate around a resume
			want: false,
		},
		{
			seq:  1,
			want: false,
		},
		{
			seq:  3,
			want: true,
		},
		{
			seq:  0, // not part of any stream
			want: true,
		},
	} {
		if got := tr.acceptSession(tc.seq); got != tc.want {
			t.Errorf(
				"acceptSession(%d) = %v, want %v",
				tc.seq, got, tc.want)
		}
	}
	if tr.session != 3 {
		t.Errorf(
			"session position %d, want 3",
			tr.session)
	}
}

func TestTrackerRoomStreams(t *testing.T) {
	tr := newTracker()
	if known, _ := tr.acceptRoom("r1", 5); known {
		t.Fatalf("frame for a room not joined accepted")
	}
	tr.join("r1", 1, 10)
	tr.join("r0", 1, 0)
	tr.dirty = false
	steps := []struct {
		seq   uint64
		fresh bool
	}{
		{
			seq:   10, // the join position itself: already had
			fresh: false,
		},
		{
			seq:   11,
			fresh: true,
		},
		{
			seq:   14, // holes are normal: messages to other members
			fresh: true,
		},
		{
			seq:   12, // replayed below the position
			fresh: false,
		},
		{
			seq:   14,
			fresh: false,
		},
		{
			seq:   15,
			fresh: true,
		},
	}
	for _, s := range steps {
		known, fresh := tr.acceptRoom("r1", s.seq)
		if !known || fresh != s.fresh {
			t.Errorf(
				"acceptRoom(r1, %d) = %v, %v; want true, %v",
				s.seq, known, fresh, s.fresh)
		}
	}
	if !tr.dirty {
		t.Errorf("accepted frames did not mark the positions for ack")
	}

	// A gap moves to a new epoch; a duplicate of it is dropped; frames
	// continue from the gap's seq.
	if known, fresh := tr.gap("r1", 2, 40); !known || !fresh {
		t.Fatalf(
			"gap: %v %v",
			known, fresh)
	}
	if _, fresh := tr.gap("r1", 2, 40); fresh {
		t.Errorf("duplicate gap applied")
	}
	if _, fresh := tr.gap("r1", 1, 99); fresh {
		t.Errorf("gap of an older epoch applied")
	}
	if _, fresh := tr.acceptRoom("r1", 40); fresh {
		t.Errorf("frame at the gap position accepted")
	}
	if _, fresh := tr.acceptRoom("r1", 41); !fresh {
		t.Errorf("frame after the gap dropped")
	}
	tr.acceptSession(7)

	want := []*protocol.StreamPos{
		{Seq: 7},
		{Room: "r0", Epoch: 1, Seq: 0},
		{Room: "r1", Epoch: 2, Seq: 41},
	}
	got := tr.positions()
	if len(got) != len(want) {
		t.Fatalf(
			"positions: %v",
			got)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf(
				"position %d: got %v, want %v",
				i, got[i], want[i])
		}
	}

	tr.leave("r1")
	if known, _ := tr.acceptRoom("r1", 50); known {
		t.Errorf("frame for a left room accepted")
	}
	tr.reset()
	if got := tr.positions(); len(got) != 1 || got[0].GetSeq() != 0 {
		t.Errorf(
			"positions after reset: %v",
			got)
	}
}
