package room

// ReplayBuffer keeps the most recent frames of one stream for replay after a
// resume, bounded by a count and a byte size. Entries carry strictly
// increasing seqs. It is not safe for concurrent use: a room's buffer is
// owned by the room goroutine, a session's by the session's lock.
type ReplayBuffer[E any] struct {
	maxCount int
	maxBytes int
	entries  []replayEntry[E] // ring
	head     int              // index of the oldest entry
	n        int
	bytes    int
	// evicted is the seq of the newest entry dropped for space (0 = none).
	evicted uint64
}

type replayEntry[E any] struct {
	seq  uint64
	size int
	e    E
}

// NewReplayBuffer returns a buffer holding at most maxCount entries and
// maxBytes bytes (by the sizes given to Push).
func NewReplayBuffer[E any](maxCount, maxBytes int) *ReplayBuffer[E] {
	if maxCount < 1 {
		maxCount = 1
	}
	return &ReplayBuffer[E]{maxCount: maxCount, maxBytes: maxBytes}
}

// Push appends an entry, evicting the oldest ones until the bounds hold.
// The newest entry is always kept, even if alone it exceeds maxBytes.
func (b *ReplayBuffer[E]) Push(seq uint64, size int, e E) {
	for b.n > 0 && (b.n >= b.maxCount || b.bytes+size > b.maxBytes) {
		b.dropOldest()
	}
	if b.entries == nil || b.n == len(b.entries) {
		b.grow()
	}
	b.entries[(b.head+b.n)%len(b.entries)] = replayEntry[E]{seq: seq, size: size, e: e}
	b.n++
	b.bytes += size
}

func (b *ReplayBuffer[E]) grow() {
	size := min(max(2*len(b.entries), 16), b.maxCount)
	grown := make([]replayEntry[E], size)
	for i := range b.n {
		grown[i] = b.entries[(b.head+i)%len(b.entries)]
	}
	b.entries, b.head = grown, 0
}

func (b *ReplayBuffer[E]) dropOldest() {
	old := &b.entries[b.head]
	b.evicted = old.seq
	b.bytes -= old.size
	*old = replayEntry[E]{}
	b.head = (b.head + 1) % len(b.entries)
	b.n--
}

// TrimThrough drops the entries with seq ≤ seq, as the client acknowledged
// them. Trimmed entries do not count as evicted.
func (b *ReplayBuffer[E]) TrimThrough(seq uint64) {
	for b.n > 0 && b.entries[b.head].seq <= seq {
		old := &b.entries[b.head]
		b.bytes -= old.size
		*old = replayEntry[E]{}
		b.head = (b.head + 1) % len(b.entries)
		b.n--
	}
}

// Covers reports whether every entry after seq is still buffered: false
// when entries newer than seq were evicted for space.
func (b *ReplayBuffer[E]) Covers(seq uint64) bool { return seq >= b.evicted }

// After calls fn for each buffered entry with a seq greater than seq, in
// order, until fn returns false.
func (b *ReplayBuffer[E]) After(seq uint64, fn func(seq uint64, e E) bool) {
	for i := range b.n {
		en := &b.entries[(b.head+i)%len(b.entries)]
		if en.seq > seq && !fn(en.seq, en.e) {
			return
		}
	}
}

// Len returns the number of buffered entries; Bytes their total size.
func (b *ReplayBuffer[E]) Len() int   { return b.n }
func (b *ReplayBuffer[E]) Bytes() int { return b.bytes }
