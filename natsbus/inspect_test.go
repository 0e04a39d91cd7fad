package natsbus_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
)

type revocationChange struct {
	Rev     tandem.Revocation
	Deleted bool
}

func TestRevocationsAreWatchedApartFromBans(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	ban := tandem.BanEntry{PlayerID: "alice", Start: now}
	rev := tandem.Revocation{PlayerID: "alice", IssuedBefore: now, ExpiresAt: now.Add(time.Hour)}
	if err := b.PutBan(ctx, ban); err != nil {
		t.Fatal(err)
	}
	if err := b.PutRevocation(ctx, rev); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var revs []revocationChange
	stopRevs, err := b.WatchRevocations(ctx, func(r tandem.Revocation, deleted bool) {
		mu.Lock()
		revs = append(revs, revocationChange{r, deleted})
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stopRevs()
	mu.Lock()
	initial := slices.Clone(revs)
	mu.Unlock()
	if diff := cmp.Diff([]revocationChange{{rev, false}}, initial); diff != "" {
		t.Errorf("initial revocations (-want +got):\n%s", diff)
	}
	var bans banRecorder
	stopBans, err := b.WatchBans(ctx, bans.record)
	if err != nil {
		t.Fatal(err)
	}
	defer stopBans()

	// A later revocation replaces the player's previous one; one whose
	// tokens expired 58 s ago stays for the minute of grace, then goes.
	later := rev
	later.IssuedBefore = now.Add(time.Minute)
	later.ExpiresAt = now.Add(2 * time.Hour)
	if err := b.PutRevocation(ctx, later); err != nil {
		t.Fatal(err)
	}
	ending := tandem.Revocation{PlayerID: "bob x", IssuedBefore: now.Add(-time.Hour), ExpiresAt: now.Add(-58 * time.Second)}
	if err := b.PutRevocation(ctx, ending); err != nil {
		t.Fatal(err)
	}
	// Long over: not stored at all.
	if err := b.PutRevocation(ctx, tandem.Revocation{PlayerID: "carol", ExpiresAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Lifting alice's ban leaves her revocation alone.
	if err := b.DeleteBan(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		want := []revocationChange{
			{rev, false},
			{later, false},
			{ending, false},
			{tandem.Revocation{PlayerID: "bob x"}, true}, // expired
		}
		if diff := cmp.Diff(want, revs); diff != "" {
			return fmt.Errorf("revocation changes (-want +got):\n%s", diff)
		}
		return nil
	})
	// By now the ban watch has had every change too: it saw the bans only.
	bans.waitFor(t, []banChange{{ban, false}, {tandem.BanEntry{PlayerID: "alice"}, true}})

	wantCode(t, b.PutRevocation(ctx, tandem.Revocation{}), tandem.EInvalid)
}

// stubInspector answers inspections from fixed values, and blocks room
// "slow" until release is closed.
type stubInspector struct {
	room    tandem.RoomInspection
	player  tandem.LivePlayer
	started chan struct{}
	release chan struct{}
}

func (s *stubInspector) InspectRoom(ctx context.Context, roomID string) (tandem.RoomInspection, error) {
	switch roomID {
	case s.room.Room.ID:
		return s.room, nil
	case "slow":
		s.started <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return tandem.RoomInspection{}, ctx.Err()
		}
		return tandem.RoomInspection{Room: tandem.RoomEntry{ID: "slow"}}, nil
	}
	return tandem.RoomInspection{}, tandem.Errorf(tandem.ENotFound, "no room %q here", roomID)
}

func (s *stubInspector) InspectPlayer(_ context.Context, playerID string) (tandem.LivePlayer, error) {
	if playerID == s.player.PlayerID {
		return s.player, nil
	}
	return tandem.LivePlayer{}, tandem.Errorf(tandem.ENotFound, "player %q has no session here", playerID)
}

func TestInspectionsRoundTripAnswersAndErrors(t *testing.T) {
	srv := startServer(t, "", "")
	web := connect(t, natsbus.Config{Server: srv, Name: "web"})
	node := connect(t, natsbus.Config{Server: srv, Name: "node a"})
	since := time.Now().UTC().Truncate(time.Millisecond)
	alice := tandem.LivePlayer{PlayerID: "alice", SessionID: "s1", Connected: true, RTTMillis: 12.5, Rooms: []string{"r1"}, Since: since}
	bob := tandem.LivePlayer{PlayerID: "bob", SessionID: "s2", Rooms: []string{"r1"}, Since: since}
	stub := &stubInspector{
		room: tandem.RoomInspection{
			Room:     tandem.RoomEntry{ID: "r1", Type: "relay", Node: "node a", Players: []string{"alice", "bob"}, MaxPlayers: 4, Open: true, CreatedAt: since},
			Players:  []tandem.LivePlayer{alice, bob},
			Snapshot: []byte(`{"x":1}`),
		},
		player:  alice,
		started: make(chan struct{}),
		release: make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- node.ServeInspections(ctx, "node a", stub) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	var room tandem.RoomInspection
	eventually(t, 10*time.Second, func() error {
		var err error
		room, err = web.InspectRoom(t.Context(), "node a", "r1")
		return err
	})
	if diff := cmp.Diff(stub.room, room); diff != "" {
		t.Errorf("room (-want +got):\n%s", diff)
	}
	p, err := web.InspectPlayer(t.Context(), "node a", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(alice, p); diff != "" {
		t.Errorf("player (-want +got):\n%s", diff)
	}

	_, err = web.InspectRoom(t.Context(), "node a", "nope")
	wantCode(t, err, tandem.ENotFound)
	if msg := tandem.ErrorMessageOf(err); msg != `no room "nope" here` {
		t.Errorf("message %q", msg)
	}
	_, err = web.InspectPlayer(t.Context(), "node a", "carol")
	wantCode(t, err, tandem.ENotFound)
	_, err = web.InspectPlayer(t.Context(), "node b", "alice")
	wantCode(t, err, tandem.EUnavailable)

	// A slow answer does not hold up the others.
	slow := make(chan error, 1)
	go func() {
		_, err := web.InspectRoom(t.Context(), "node a", "slow")
		slow <- err
	}()
	<-stub.started
	if _, err := web.InspectPlayer(t.Context(), "node a", "alice"); err != nil {
		t.Errorf("inspection while another is in progress: %v", err)
	}
	close(stub.release)
	if err := <-slow; err != nil {
		t.Errorf("slow inspection: %v", err)
	}
}
