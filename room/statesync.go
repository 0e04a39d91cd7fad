package room

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem"
)

// State is a room's synchronised state: keyed entities with JSON values. It
// tracks what changed since the last Flush and turns that into one delta per
// tick, and gives each player a full snapshot, both limited to what the
// player may see when the room hides parts of its state.
//
// Both formats are JSON (UTF-8, no insignificant whitespace), so every SDK
// reads them with its standard JSON decoder:
//
//	snapshot: {"tick":N,"entities":{"KEY":VALUE,...}}
//	delta:    {"tick":N,"set":{"KEY":VALUE,...},"del":["KEY",...]}
//
// N is the room's tick count (Room.Ticks) when the snapshot or delta was
// made. Keys are sorted by byte order in "entities", "set" and "del", and
// "set" and "del" are always present (possibly empty), so the same state
// always gives the same bytes. A snapshot travels as joined.state and
// gap.state (return it from the Handler's Snapshot hook); a delta is the
// patch of a delta{tick, patch} frame in the room stream.
//
// A client holds a map from key to value. It replaces its map with a
// snapshot's "entities", and applies a delta by storing each value of "set"
// under its key and removing each key of "del". A value is replaced whole,
// never merged. Applying is idempotent, and a client must accept a delta
// that sets a value it already holds or deletes a key it does not hold
// (after a snapshot taken between two ticks, the next delta repeats what
// changed in that tick).
//
// Values are encoded with encoding/json when they are set: struct fields in
// declaration order, map keys sorted, a json.RawMessage as is (compacted).
// Nothing reaches the output in map iteration order, so a deterministic room
// produces byte-identical snapshots and deltas on replay.
//
// Visible, when set, hides entities: a player's snapshot and deltas hold
// only the entities for which Visible(p, key) is true, and an entity that
// stops being visible to a player appears in that player's "del". Flush
// then asks Visible about every (member, entity) pair, so keep it cheap. With
// a nil Visible every player sees everything and Flush sends one delta,
// encoded once, to the whole room; with Visible, members whose deltas are
// equal share one frame.
//
// The zero State is empty and ready to use. Like every Room method, a State
// belongs to the room goroutine.
type State struct {
	// Visible reports whether player p may see the entity key (nil: every
	// player sees every entity). It must depend only on the room's state,
	// so that replays see the same.
	Visible func(p *tandem.Player, key string) bool

	ents  map[string]*entity
	order []*entity // sorted by key; includes entities deleted since the last flush
	dirty []*entity // changed since the last flush, in no order
	views map[string]*view
	gen   uint64 // flush generation, to drop the views of players gone

	// Scratch reused by every flush.
	set, del, patch []byte
	groups          []deltaGroup
	groupOf         map[string]int
}

// entity is one key of the state.
type entity struct {
	key    string
	quoted []byte          // key encoded as a JSON string
	value  json.RawMessage // nil: deleted since the last flush
	sent   json.RawMessage // value at the last flush (nil: absent)
	dirty  bool            // in State.dirty
	// shown: a snapshot included the entity while it was dirty, so a client
	// may hold a value the last flush did not send; the next delta repeats
	// the entity whatever its value then.
	shown bool
}

// changed reports whether the entity belongs in the next delta.
func (e *entity) changed() bool {
	return e.dirty && (e.shown || !bytes.Equal(e.value, e.sent))
}

// view is what one player holds when the state has a Visible filter: the
// keys it was last sent.
type view struct {
	seen map[string]struct{}
	gen  uint64
}

// deltaGroup is one distinct delta of a flush and the players it goes to.
type deltaGroup struct {
	patch []byte
	to    []string
}

// Set stores value under key. The value is encoded to JSON now; a
// json.RawMessage must hold valid JSON. Setting the value a key already
// has is not a change.
func (s *State) Set(key string, value any) error {
	b, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("room: state entity %q: %w", key, err)
	}
	e := s.ents[key]
	switch {
	case e == nil:
		e = s.add(key)
	case e.value != nil && bytes.Equal(e.value, b):
		return nil
	}
	e.value = b
	s.touch(e)
	return nil
}

// Delete removes key. Deleting a missing key does nothing.
func (s *State) Delete(key string) {
	e := s.ents[key]
	if e == nil || e.value == nil {
		return
	}
	e.value = nil
	s.touch(e)
}

// Get returns the encoded value of key. The caller must not modify it.
func (s *State) Get(key string) (json.RawMessage, bool) {
	e := s.ents[key]
	if e == nil || e.value == nil {
		return nil, false
	}
	return e.value, true
}

// Keys returns the keys of the state, sorted.
func (s *State) Keys() []string {
	var keys []string
	for _, e := range s.order {
		if e.value != nil {
			keys = append(keys, e.key)
		}
	}
	return keys
}

// Len returns the number of entities.
func (s *State) Len() int {
	n := 0
	for _, e := range s.order {
		if e.value != nil {
			n++
		}
	}
	return n
}

func (s *State) add(key string) *entity {
	if s.ents == nil {
		s.ents = make(map[string]*entity)
	}
	quoted, _ := json.Marshal(key) // a string always encodes
	e := &entity{key: key, quoted: quoted}
	s.ents[key] = e
	i, _ := slices.BinarySearchFunc(s.order, key, func(e *entity, key string) int { return strings.Compare(e.key, key) })
	s.order = slices.Insert(s.order, i, e)
	return e
}

func (s *State) touch(e *entity) {
	if !e.dirty {
		e.dirty = true
		s.dirty = append(s.dirty, e)
	}
}

// Snapshot returns the state as player p may see it, in the snapshot format
// (p nil: everything). With a Visible filter it also records that p now
// holds exactly this state, and p's next delta is computed from it: send
// what Snapshot returns to p (the runtime does, in joined and gap).
func (s *State) Snapshot(r *Room, p *tandem.Player) []byte {
	filtered := s.Visible != nil && p != nil
	// An inspection's snapshot reaches no client: it records nothing.
	record := !r.inspecting
	var v *view
	if filtered && record {
		v = s.view(p.ID)
		clear(v.seen)
	}
	b := make([]byte, 0, 32+s.sizeHint())
	b = append(b, `{"tick":`...)
	b = strconv.AppendUint(b, r.Ticks(), 10)
	b = append(b, `,"entities":{`...)
	n := 0
	for _, e := range s.order {
		if e.value == nil || filtered && !s.Visible(p, e.key) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendEntity(b, e)
		if e.dirty && record {
			e.shown = true
		}
		if v != nil {
			v.seen[e.key] = struct{}{}
		}
	}
	return append(b, "}}"...)
}

func (s *State) sizeHint() int {
	n := 0
	for _, e := range s.order {
		n += len(e.quoted) + len(e.value) + 2
	}
	return n
}

func (s *State) view(playerID string) *view {
	if s.views == nil {
		s.views = make(map[string]*view)
	}
	v := s.views[playerID]
	if v == nil {
		v = &view{seen: make(map[string]struct{})}
		s.views[playerID] = v
	}
	return v
}

// Flush sends what changed since the last Flush to the room's members as
// delta frames (r.SendDelta) and starts a new change set. Call it once per
// tick, after the tick's changes. Nothing is sent when nothing changed.
func (s *State) Flush(r *Room) {
	if s.Visible == nil {
		s.flushShared(r)
	} else {
		s.flushViews(r)
	}
	s.commit()
}

// flushShared sends one delta, the same for everyone.
func (s *State) flushShared(r *Room) {
	if len(s.dirty) == 0 {
		return
	}
	slices.SortFunc(s.dirty, func(a, b *entity) int { return strings.Compare(a.key, b.key) })
	set, del := s.set[:0], s.del[:0]
	for _, e := range s.dirty {
		switch {
		case !e.changed():
		case e.value != nil:
			set = appendSetEntry(set, e)
		default:
			del = appendDelEntry(del, e)
		}
	}
	s.set, s.del = set, del
	if len(set) == 0 && len(del) == 0 {
		return
	}
	r.SendDelta(nil, appendDelta(nil, r.Ticks(), set, del))
}

// flushViews computes each member's delta from the keys it holds and sends
// each distinct delta once, to the members it is for, in join order of
// their first member.
func (s *State) flushViews(r *Room) {
	s.gen++
	if s.groupOf == nil {
		s.groupOf = make(map[string]int)
	}
	clear(s.groupOf)
	clear(s.groups)
	s.groups = s.groups[:0]
	tick := r.Ticks()
	for _, p := range r.Players() {
		v := s.view(p.ID)
		v.gen = s.gen
		set, del := s.set[:0], s.del[:0]
		for _, e := range s.order {
			_, held := v.seen[e.key]
			switch {
			case e.value != nil && s.Visible(p, e.key):
				if !held {
					v.seen[e.key] = struct{}{}
					set = appendSetEntry(set, e)
				} else if e.changed() {
					set = appendSetEntry(set, e)
				}
			case held:
				delete(v.seen, e.key)
				del = appendDelEntry(del, e)
			}
		}
		s.set, s.del = set, del
		if len(set) == 0 && len(del) == 0 {
			continue
		}
		s.patch = appendDelta(s.patch[:0], tick, set, del)
		if i, ok := s.groupOf[string(s.patch)]; ok {
			s.groups[i].to = append(s.groups[i].to, p.ID)
			continue
		}
		s.groupOf[string(s.patch)] = len(s.groups)
		// The frame keeps the patch, so each group gets its own copy.
		s.groups = append(s.groups, deltaGroup{patch: bytes.Clone(s.patch), to: []string{p.ID}})
	}
	for _, g := range s.groups {
		r.SendDelta(g.to, g.patch)
	}
	for id, v := range s.views {
		if v.gen != s.gen {
			delete(s.views, id) // the player left
		}
	}
}

// commit makes the current values the sent ones and forgets deleted keys.
func (s *State) commit() {
	deleted := false
	for _, e := range s.dirty {
		e.sent, e.dirty, e.shown = e.value, false, false
		if e.value == nil {
			delete(s.ents, e.key)
			deleted = true
		}
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	if deleted {
		s.order = slices.DeleteFunc(s.order, func(e *entity) bool { return e.value == nil })
	}
}

func appendEntity(b []byte, e *entity) []byte {
	b = append(b, e.quoted...)
	b = append(b, ':')
	return append(b, e.value...)
}

func appendSetEntry(b []byte, e *entity) []byte {
	if len(b) > 0 {
		b = append(b, ',')
	}
	return appendEntity(b, e)
}

func appendDelEntry(b []byte, e *entity) []byte {
	if len(b) > 0 {
		b = append(b, ',')
	}
	return append(b, e.quoted...)
}

func appendDelta(b []byte, tick uint64, set, del []byte) []byte {
	b = slices.Grow(b, len(`{"tick":,"set":{},"del":[]}`)+20+len(set)+len(del))
	b = append(b, `{"tick":`...)
	b = strconv.AppendUint(b, tick, 10)
	b = append(b, `,"set":{`...)
	b = append(b, set...)
	b = append(b, `},"del":[`...)
	b = append(b, del...)
	return append(b, "]}"...)
}
