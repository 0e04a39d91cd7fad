package room

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

func TestInspectionSnapshotCountsAsSentToNobody(t *testing.T) {
	s, st := stateScript(t, nil, Config{})
	alice := s.join("alice", protocol.CodecJSON)
	s.join("bob", protocol.CodecJSON)
	s.disconnect("bob")
	mustSet(t, st, "a", point{1, 1})
	s.flush(st)

	mustSet(t, st, "a", point{2, 2})
	mustSet(t, st, "new", point{3, 3})
	in := s.r.inspect()
	want := Inspection{
		Members:  []MemberView{{"alice", true}, {"bob", false}},
		Snapshot: []byte(`{"tick":1,"entities":{"a":{"x":2,"y":2},"new":{"x":3,"y":3}}}`),
	}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("inspection (-want +got):\n%s", diff)
	}
	// Back to what everyone had at the last flush: nobody holds the
	// inspection's state, so there is nothing to repair.
	mustSet(t, st, "a", point{1, 1})
	st.Delete("new")
	s.flush(st)
	if got := deltas(alice); len(got) != 1 {
		t.Errorf("alice's deltas %q, want only the first flush's", got)
	}
}

// panicky is a room whose Snapshot fails for inspections.
type panicky struct{ Base }

func (panicky) Snapshot(r *Room, _ *tandem.Player) []byte {
	if r.Inspecting() {
		panic("no snapshot today")
	}
	return nil
}

func TestInspectGoesThroughTheMailbox(t *testing.T) {
	m, err := NewManager(ManagerConfig{Types: []Type{RelayType(), {Name: "panicky", New: func() Handler { return panicky{} }}}, Encoder: encode})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	ctx := t.Context()
	for _, typ := range []string{"relay", "panicky"} {
		r, err := m.Create(typ, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Join(ctx, newMember(t, "alice", protocol.CodecJSON), 1, nil); err != nil {
			t.Fatal(err)
		}
		in, err := r.Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Neither state: relay keeps none, panicky's Snapshot fails
		// without ending the room.
		if diff := cmp.Diff(Inspection{Members: []MemberView{{"alice", true}}}, in); diff != "" {
			t.Errorf("%s: inspection (-want +got):\n%s", typ, diff)
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		<-r.Done()
		if _, err := r.Inspect(ctx); tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Errorf("%s: inspecting an ended room: %v, want not found", typ, err)
		}
	}
}
