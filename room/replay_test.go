package room

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// contents lists a buffer's entries after seq.
func contents(b *ReplayBuffer[string], after uint64) []string {
	var got []string
	b.After(after, func(_ uint64, e string) bool {
		got = append(got, e)
		return true
	})
	return got
}

func TestReplayBufferKeepsTheNewestEntriesWithinCount(t *testing.T) {
	b := NewReplayBuffer[string](3, 1<<20)
	for i, e := range []string{"a", "b", "c", "d", "e"} {
		b.Push(uint64(i+1), 1, e)
	}
	if diff := cmp.Diff([]string{"c", "d", "e"}, contents(b, 0)); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"e"}, contents(b, 4)); diff != "" {
		t.Errorf("entries after 4 (-want +got):\n%s", diff)
	}
	if b.Len() != 3 || b.Bytes() != 3 {
		t.Errorf("Len %d Bytes %d, want 3 and 3", b.Len(), b.Bytes())
	}
}

func TestReplayBufferKeepsTheNewestEntriesWithinBytes(t *testing.T) {
	b := NewReplayBuffer[string](100, 10)
	b.Push(1, 4, "a")
	b.Push(2, 4, "b")
	b.Push(3, 4, "c") // 12 bytes: a goes
	if diff := cmp.Diff([]string{"b", "c"}, contents(b, 0)); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	b.Push(4, 50, "huge") // alone above the bound, and still kept
	if diff := cmp.Diff([]string{"huge"}, contents(b, 0)); diff != "" {
		t.Errorf("entries after an oversized push (-want +got):\n%s", diff)
	}
}

func TestReplayBufferCoversOnlyPositionsNothingWasEvictedAfter(t *testing.T) {
	b := NewReplayBuffer[string](2, 1<<20)
	for seq := uint64(1); seq <= 4; seq++ {
		b.Push(seq, 1, "x")
	}
	// 1 and 2 were evicted: a client at 2 misses nothing, one at 1 misses 2.
	for seq, want := range map[uint64]bool{0: false, 1: false, 2: true, 3: true, 4: true} {
		if got := b.Covers(seq); got != want {
			t.Errorf("Covers(%d) = %v, want %v", seq, got, want)
		}
	}
}

func TestReplayBufferTrimIsNotEviction(t *testing.T) {
	b := NewReplayBuffer[string](10, 1<<20)
	for seq := uint64(1); seq <= 4; seq++ {
		b.Push(seq, 1, "x")
	}
	b.TrimThrough(2)
	if b.Len() != 2 || b.Bytes() != 2 {
		t.Errorf("after trim: Len %d Bytes %d, want 2 and 2", b.Len(), b.Bytes())
	}
	if !b.Covers(0) {
		t.Error("trimming acknowledged entries made the buffer report a gap")
	}
}

func TestReplayAppliesJournalAtRecordedTimes(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	journal := []Input{
		{Kind: InputJoin, At: start, Player: tandem.Player{ID: "alice"}},
		{Kind: InputJoin, At: start.Add(time.Second), Player: tandem.Player{ID: "bob"}},
		{Kind: InputMessage, At: start.Add(2 * time.Second), Player: tandem.Player{ID: "bob"}, Message: Message{Topic: "hi", Data: []byte("there")}},
		{Kind: InputTick, At: start.Add(3 * time.Second)},
	}
	members := map[string]*captureMember{}
	r, err := Replay(Config{ID: "room-1", Type: recorderType("test", 0, 10), Encoder: encode}, journal, func(p tandem.Player) Member {
		members[p.ID] = newMember(t, p.ID, protocol.CodecJSON)
		return members[p.ID]
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Now(), start.Add(3*time.Second); !got.Equal(want) {
		t.Errorf("room clock = %v, want the last input's time %v", got, want)
	}
	if r.Ticks() != 1 {
		t.Errorf("Ticks = %d, want 1", r.Ticks())
	}
	if diff := cmp.Diff([]string{"event JOINED bob", "message from=bob topic=hi data=there"}, summaries(members["alice"].Frames())); diff != "" {
		t.Errorf("alice (-want +got):\n%s", diff)
	}
}
