package room

import (
	"encoding/json"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// stateRoom is a room whose whole logic is a State the test changes
// directly (the test goroutine is the room goroutine in a script).
type stateRoom struct {
	Base
	state State
}

func (h *stateRoom) Snapshot(r *Room, p *tandem.Player) []byte { return h.state.Snapshot(r, p) }

func stateScript(t *testing.T, visible func(p *tandem.Player, key string) bool, cfg Config) (*script, *State) {
	cfg.Type = Type{Name: "state", New: func() Handler { return &stateRoom{state: State{Visible: visible}} }}
	s := newScript(t, cfg)
	return s, &s.r.handler.(*stateRoom).state
}

// flush ends a tick: the room's tick count moves on and the state's delta goes out.
func (s *script) flush(st *State) {
	s.r.tick++
	st.Flush(s.r)
}

// deltas returns the patches of the delta frames a member got.
func deltas(m *captureMember) []string {
	var got []string
	for _, f := range m.Frames() {
		if d := f.GetDelta(); d != nil {
			got = append(got, string(d.Patch))
		}
	}
	return got
}

func mustSet(t *testing.T, st *State, key string, value any) {
	t.Helper()
	if err := st.Set(key, value); err != nil {
		t.Fatal(err)
	}
}

type point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

func TestStateSnapshotListsEntitiesInKeyOrder(t *testing.T) {
	s, st := stateScript(t, nil, Config{})
	mustSet(t, st, "b", point{1, 2})
	mustSet(t, st, "a", map[string]int{"z": 1, "m": 2, "a": 3})
	mustSet(t, st, "c:1", json.RawMessage(` { "raw" : [1, 2] } `))
	mustSet(t, st, "A", "upper case sorts first")
	s.r.tick = 7

	want := `{"tick":7,"entities":{"A":"upper case sorts first","a":{"a":3,"m":2,"z":1},"b":{"x":1,"y":2},"c:1":{"raw":[1,2]}}}`
	if got := string(st.Snapshot(s.r, nil)); got != want {
		t.Errorf("snapshot\n got %s\nwant %s", got, want)
	}
	if diff := cmp.Diff([]string{"A", "a", "b", "c:1"}, st.Keys()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if v, ok := st.Get("b"); !ok || string(v) != `{"x":1,"y":2}` {
		t.Errorf(`Get("b") = %s, %v`, v, ok)
	}
	if _, ok := st.Get("missing"); ok {
		t.Error(`Get("missing") found something`)
	}
}

func TestStateSnapshotOfEmptyStateIsValidJSON(t *testing.T) {
	s, st := stateScript(t, nil, Config{})
	if got, want := string(st.Snapshot(s.r, nil)), `{"tick":0,"entities":{}}`; got != want {
		t.Errorf("snapshot = %s, want %s", got, want)
	}
}

func TestStateDeltaHoldsOnlyChangesSinceLastFlush(t *testing.T) {
	s, st := stateScript(t, nil, Config{})
	alice := s.join("alice", protocol.CodecJSON)
	mustSet(t, st, "a", point{0, 0})
	mustSet(t, st, "b", point{1, 1})
	mustSet(t, st, "unchanged", point{5, 5})
	s.flush(st)

	mustSet(t, st, "b", point{1, 2})
	st.Delete("a")
	mustSet(t, st, "c", point{3, 3})
	mustSet(t, st, "unchanged", point{5, 5})
	mustSet(t, st, "brief", point{9, 9}) // created and gone within the tick
	st.Delete("brief")
	st.Delete("never-existed")
	s.flush(st)

	want := []string{
		`{"tick":1,"set":{"a":{"x":0,"y":0},"b":{"x":1,"y":1},"unchanged":{"x":5,"y":5}},"del":[]}`,
		`{"tick":2,"set":{"b":{"x":1,"y":2},"c":{"x":3,"y":3}},"del":["a"]}`,
	}
	if diff := cmp.Diff(want, deltas(alice)); diff != "" {
		t.Errorf("deltas (-want +got):\n%s", diff)
	}
	if got := st.Len(); got != 3 {
		t.Errorf("Len = %d, want 3", got)
	}
	if f := last(alice.Frames()); f.GetDelta().GetTick() != 2 || f.Room != "room-1" {
		t.Errorf("delta frame: room %q tick %d", f.Room, f.GetDelta().GetTick())
	}
}

func TestStateSendsNoDeltaWhenNothingChanged(t *testing.T) {
	s, st := stateScript(t, nil, Config{})
	alice := s.join("alice", protocol.CodecJSON)
	mustSet(t, st, "a", point{1, 1})
	s.flush(st)
	before := len(alice.Frames())

	s.flush(st) // nothing at all
	mustSet(t, st, "a", point{1, 1})
	mustSet(t, st, "a", point{2, 2})
	mustSet(t, st, "a", point{1, 1}) // back where it was
	mustSet(t, st, "b", point{1, 1})
	st.Delete("b")
	s.flush(st)

	if got := alice.Frames()[before:]; len(got) != 0 {
		t.Errorf("frames without a change: %v", summaries(got))
	}
}

func TestStateDeltaRepairsWhatAMidTickSnapshotShowed(t *testing.T) {
	s, st := stateScript(t, nil, Config{})
	alice := s.join("alice", protocol.CodecJSON)
	mustSet(t, st, "a", point{1, 1})
	s.flush(st)

	mustSet(t, st, "a", point{2, 2})
	mustSet(t, st, "new", point{3, 3})
	bob := s.join("bob", protocol.CodecJSON) // his snapshot shows a=2 and new
	if got, want := string(bob.lastReply(t).GetJoined().State), `{"tick":1,"entities":{"a":{"x":2,"y":2},"new":{"x":3,"y":3}}}`; got != want {
		t.Fatalf("bob's snapshot = %s, want %s", got, want)
	}
	mustSet(t, st, "a", point{1, 1}) // what everyone had at the last flush
	st.Delete("new")
	s.flush(st)

	want := `{"tick":2,"set":{"a":{"x":1,"y":1}},"del":["new"]}`
	if diff := cmp.Diff([]string{want}, deltas(bob)); diff != "" {
		t.Errorf("bob's deltas (-want +got):\n%s", diff)
	}
	if got := last(deltas(alice)); got != want {
		t.Errorf("alice's delta = %s; everyone shares one", got)
	}
}

func TestStateWithoutFilterSendsOneDeltaEncodedOncePerCodec(t *testing.T) {
	enc := new(countingEncoder)
	s, st := stateScript(t, nil, Config{Encoder: enc.Encode})
	alice := s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecJSON)
	carol := s.join("carol", protocol.CodecBinary)
	before := enc.counts()
	seq := s.r.seq
	mustSet(t, st, "a", point{1, 1})
	s.flush(st)

	if s.r.seq != seq+1 {
		t.Errorf("the flush used %d room seqs, want 1", s.r.seq-seq)
	}
	after := enc.counts()
	if after[protocol.CodecJSON]-before[protocol.CodecJSON] != 1 || after[protocol.CodecBinary]-before[protocol.CodecBinary] != 1 {
		t.Errorf("encodings per codec: before %v after %v, want one more each", before, after)
	}
	if unsafe.SliceData(last(alice.Raw())) != unsafe.SliceData(last(bob.Raw())) {
		t.Error("alice and bob got different copies of the delta")
	}
	for _, m := range []*captureMember{alice, bob, carol} {
		if diff := cmp.Diff([]string{`{"tick":1,"set":{"a":{"x":1,"y":1}},"del":[]}`}, deltas(m)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", m.player.ID, diff)
		}
	}
}

// ownSecrets shows "secret:<id>" to player id only and everything else to all.
func ownSecrets(p *tandem.Player, key string) bool {
	id, secret := cutPrefix(key, "secret:")
	return !secret || id == p.ID
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}

func TestStateFilterSendsEachPlayerOnlyWhatItSees(t *testing.T) {
	s, st := stateScript(t, ownSecrets, Config{})
	mustSet(t, st, "public", 1)
	mustSet(t, st, "secret:alice", "alice's hand")
	mustSet(t, st, "secret:bob", "bob's hand")
	st.Flush(s.r) // nobody there yet: the state before anyone joins
	alice := s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecBinary)
	carol := s.join("carol", protocol.CodecJSON)

	if got, want := string(alice.lastReply(t).GetJoined().State), `{"tick":0,"entities":{"public":1,"secret:alice":"alice's hand"}}`; got != want {
		t.Errorf("alice's snapshot = %s, want %s", got, want)
	}
	mustSet(t, st, "secret:alice", "alice's new hand")
	mustSet(t, st, "secret:bob", "bob's new hand")
	mustSet(t, st, "secret:carol", "carol's hand")
	s.flush(st)

	want := map[string][]string{
		"alice": {`{"tick":1,"set":{"secret:alice":"alice's new hand"},"del":[]}`},
		"bob":   {`{"tick":1,"set":{"secret:bob":"bob's new hand"},"del":[]}`},
		"carol": {`{"tick":1,"set":{"secret:carol":"carol's hand"},"del":[]}`},
	}
	for _, m := range []*captureMember{alice, bob, carol} {
		if diff := cmp.Diff(want[m.player.ID], deltas(m)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", m.player.ID, diff)
		}
	}
}

func TestStateFilterDeletesEntitiesThatBecomeInvisible(t *testing.T) {
	hidden := map[string]bool{}
	visible := func(p *tandem.Player, key string) bool { return !hidden[p.ID+"/"+key] }
	s, st := stateScript(t, visible, Config{})
	alice := s.join("alice", protocol.CodecJSON)
	bob := s.join("bob", protocol.CodecJSON)
	mustSet(t, st, "ghost", point{1, 1})
	s.flush(st)

	hidden["bob/ghost"] = true
	s.flush(st)
	mustSet(t, st, "ghost", point{2, 2}) // moves while bob cannot see it
	s.flush(st)
	hidden["bob/ghost"] = false
	s.flush(st)

	wantBob := []string{
		`{"tick":1,"set":{"ghost":{"x":1,"y":1}},"del":[]}`,
		`{"tick":2,"set":{},"del":["ghost"]}`,
		`{"tick":4,"set":{"ghost":{"x":2,"y":2}},"del":[]}`,
	}
	if diff := cmp.Diff(wantBob, deltas(bob)); diff != "" {
		t.Errorf("bob (-want +got):\n%s", diff)
	}
	wantAlice := []string{
		`{"tick":1,"set":{"ghost":{"x":1,"y":1}},"del":[]}`,
		`{"tick":3,"set":{"ghost":{"x":2,"y":2}},"del":[]}`,
	}
	if diff := cmp.Diff(wantAlice, deltas(alice)); diff != "" {
		t.Errorf("alice (-want +got):\n%s", diff)
	}

	st.Delete("ghost")
	s.flush(st)
	for _, m := range []*captureMember{alice, bob} {
		if got, want := last(deltas(m)), `{"tick":5,"set":{},"del":["ghost"]}`; got != want {
			t.Errorf("%s after the delete: %s, want %s", m.player.ID, got, want)
		}
	}
}

func TestStateFilterSharesOneFrameAmongPlayersWithTheSameView(t *testing.T) {
	team := map[string]string{"alice": "red", "bob": "blue", "carol": "red", "dave": "blue"}
	visible := func(p *tandem.Player, key string) bool {
		owner, private := cutPrefix(key, "base:")
		return !private || owner == team[p.ID]
	}
	enc := new(countingEncoder)
	s, st := stateScript(t, visible, Config{Encoder: enc.Encode})
	members := map[string]*captureMember{}
	for _, id := range []string{"alice", "bob", "carol", "dave"} {
		members[id] = s.join(id, protocol.CodecJSON)
	}
	before, seq := enc.counts(), s.r.seq
	mustSet(t, st, "base:red", point{1, 1})
	mustSet(t, st, "base:blue", point{9, 9})
	mustSet(t, st, "flag", point{5, 5})
	s.flush(st)

	if s.r.seq != seq+2 {
		t.Errorf("the flush used %d room seqs, want 2 (one per team)", s.r.seq-seq)
	}
	if n := enc.counts()[protocol.CodecJSON] - before[protocol.CodecJSON]; n != 2 {
		t.Errorf("%d encodings, want 2 (one per team)", n)
	}
	for _, pair := range [][2]string{{"alice", "carol"}, {"bob", "dave"}} {
		a, b := last(members[pair[0]].Raw()), last(members[pair[1]].Raw())
		if unsafe.SliceData(a) != unsafe.SliceData(b) {
			t.Errorf("%s and %s see the same but got different frames", pair[0], pair[1])
		}
	}
	if got, want := last(deltas(members["bob"])), `{"tick":1,"set":{"base:blue":{"x":9,"y":9},"flag":{"x":5,"y":5}},"del":[]}`; got != want {
		t.Errorf("blue's delta = %s, want %s", got, want)
	}
	// Red's frame, published first because alice joined first, is not for blue.
	if got := members["bob"].Frames(); last(got).Seq != seq+2 {
		t.Errorf("bob's delta at seq %d, want %d", last(got).Seq, seq+2)
	}
}

func TestStateFilterForgetsPlayersWhoLeft(t *testing.T) {
	s, st := stateScript(t, ownSecrets, Config{})
	s.join("alice", protocol.CodecJSON)
	s.join("bob", protocol.CodecJSON)
	mustSet(t, st, "public", 1)
	s.flush(st)
	s.leave("bob", protocol.LeaveReason_LEAVE_REASON_REQUESTED)
	s.flush(st)
	if _, ok := st.views["bob"]; ok || len(st.views) != 1 {
		t.Errorf("views after bob left: %v", st.views)
	}

	bob := s.join("bob", protocol.CodecJSON) // back: his snapshot is his new start
	mustSet(t, st, "public", 2)
	s.flush(st)
	if diff := cmp.Diff([]string{`{"tick":3,"set":{"public":2},"del":[]}`}, deltas(bob)); diff != "" {
		t.Errorf("bob after coming back (-want +got):\n%s", diff)
	}
}

func TestStateSetRefusesWhatJSONCannotEncode(t *testing.T) {
	_, st := stateScript(t, nil, Config{})
	if err := st.Set("f", func() {}); err == nil {
		t.Error("a func was accepted")
	}
	if err := st.Set("raw", json.RawMessage(`{"unterminated`)); err == nil {
		t.Error("invalid raw JSON was accepted")
	}
	if st.Len() != 0 || len(st.dirty) != 0 {
		t.Errorf("a refused Set changed the state: %v", st.Keys())
	}
}
