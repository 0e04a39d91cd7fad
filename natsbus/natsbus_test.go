package natsbus_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer starts an embedded server on dir (a new temporary one when
// empty), shut down at the end of the test.
func startServer(t *testing.T, dir, listen string) *natsbus.Embedded {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	e, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Dir: dir, Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

func connect(t *testing.T, c natsbus.Config) *natsbus.Bus {
	t.Helper()
	if c.Name == "" {
		c.Name = t.Name()
	}
	b, err := natsbus.Connect(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// newBus returns a bus on a fresh in-process server.
func newBus(t *testing.T) (*natsbus.Bus, *natsbus.Embedded) {
	t.Helper()
	srv := startServer(t, "", "")
	return connect(t, natsbus.Config{Server: srv}), srv
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantCode(t *testing.T, err error, code tandem.ErrorCode) {
	t.Helper()
	if got := tandem.ErrorCodeOf(err); got != code {
		t.Fatalf("error %v: code %s, want %s", err, got, code)
	}
}

func TestConnectTwiceAtOnceBothSucceed(t *testing.T) {
	srv := startServer(t, "", "")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			b, err := natsbus.Connect(t.Context(), natsbus.Config{Server: srv, Name: fmt.Sprint("p", i)})
			if err == nil {
				b.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// And again on existing buckets.
	connect(t, natsbus.Config{Server: srv})
}

func TestConnectFailsFastWithoutServer(t *testing.T) {
	_, err := natsbus.Connect(t.Context(), natsbus.Config{URL: "nats://127.0.0.1:1"})
	if err == nil {
		t.Fatal("connected to nothing")
	}
}

func TestEmbeddedWithoutListenerHasNoClientURL(t *testing.T) {
	if u := startServer(t, "", "").ClientURL(); u != "" {
		t.Errorf("ClientURL = %q, want empty", u)
	}
	if u := startServer(t, "", "127.0.0.1:0").ClientURL(); u == "" || u == "nats://127.0.0.1:4222" {
		t.Errorf("ClientURL = %q, want a random port", u)
	}
}

func TestRoomDirectory(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rooms := []tandem.RoomEntry{
		{ID: "r2", Type: "relay", Node: "n1", Players: []string{"alice", "bob"}, MaxPlayers: 4, Labels: map[string]string{"map": "x"}, Open: true, CreatedAt: at},
		{ID: "room with spaces*", Type: "arena", Node: "n2", MaxPlayers: 2, Locked: true, CreatedAt: at},
		{ID: "r1", Type: "relay", Node: "n1", MaxPlayers: 8, CreatedAt: at},
	}
	for _, r := range rooms {
		if err := b.PutRoom(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Room(ctx, "room with spaces*")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rooms[1], got); diff != "" {
		t.Errorf("Room (-want +got):\n%s", diff)
	}
	list, err := b.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []tandem.RoomEntry{rooms[2], rooms[0], rooms[1]}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("Rooms (-want +got):\n%s", diff)
	}
	if err := b.RemoveRoom(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	_, err = b.Room(ctx, "r1")
	wantCode(t, err, tandem.ENotFound)
	if list, _ := b.Rooms(ctx); len(list) != 2 {
		t.Errorf("Rooms after remove: %d, want 2", len(list))
	}
}

func TestIDsThatLookEncodedDoNotCollide(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	// "=YQ" would be the encoding of "a" if '=' were allowed in plain ids.
	for _, id := range []string{"a", "=YQ", "", "a.b", "a b"} {
		if err := b.PutRoom(ctx, tandem.RoomEntry{ID: id, Type: "t-" + id}); err != nil {
			t.Fatalf("PutRoom(%q): %v", id, err)
		}
	}
	for _, id := range []string{"a", "=YQ", "", "a.b", "a b"} {
		r, err := b.Room(ctx, id)
		if err != nil || r.Type != "t-"+id {
			t.Errorf("Room(%q) = %+v, %v", id, r, err)
		}
	}
}

func TestNodeRegistryForgetsASilentNode(t *testing.T) {
	srv := startServer(t, "", "")
	b := connect(t, natsbus.Config{Server: srv, NodeTTL: time.Second})
	ctx := t.Context()
	n := tandem.NodeInfo{ID: "n1", URL: "ws://n1/ws", Version: "v1", Connections: 3, Rooms: 1,
		StartedAt: time.Now().UTC().Truncate(time.Second), Heartbeat: time.Now().UTC()}
	if err := b.PutNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	got, err := b.Node(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(n, got); diff != "" {
		t.Errorf("Node (-want +got):\n%s", diff)
	}
	if nodes, err := b.Nodes(ctx); err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes = %v, %v", nodes, err)
	}
	eventually(t, 10*time.Second, func() error {
		nodes, err := b.Nodes(ctx)
		if err != nil {
			return err
		}
		if len(nodes) != 0 {
			return fmt.Errorf("still listed: %v", nodes)
		}
		return nil
	})
	_, err = b.Node(ctx, "n1")
	wantCode(t, err, tandem.ENotFound)
}

func TestNodesTrustTheRegistryNotTheNodesClock(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	// A node whose clock is an hour behind is live while its entry is.
	if err := b.PutNode(ctx, tandem.NodeInfo{ID: "skewed", Heartbeat: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := b.PutNode(ctx, tandem.NodeInfo{ID: "live", Heartbeat: time.Now()}); err != nil {
		t.Fatal(err)
	}
	nodes, err := b.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "live" || nodes[1].ID != "skewed" {
		t.Errorf("Nodes = %v, %v; want live and skewed", nodes, err)
	}
	if _, err := b.Node(ctx, "skewed"); err != nil {
		t.Errorf("Node(skewed) = %v", err)
	}
	if err := b.RemoveNode(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	_, err = b.Node(ctx, "live")
	wantCode(t, err, tandem.ENotFound)
}

func TestWakeReachesEveryWatcherOfItsJob(t *testing.T) {
	srv := startServer(t, "", "")
	a := connect(t, natsbus.Config{Server: srv, Name: "web-1"})
	b := connect(t, natsbus.Config{Server: srv, Name: "web-2"})
	ctx := t.Context()
	var mu sync.Mutex
	woken := map[string]int{}
	for _, job := range []string{"bans", "keys"} {
		stop, err := b.WatchWakes(ctx, job, func() {
			mu.Lock()
			woken[job]++
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
	}
	if err := a.Wake(ctx, "bans"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if woken["bans"] != 1 || woken["keys"] != 0 {
			return fmt.Errorf("woken = %v, want bans once", woken)
		}
		return nil
	})
}

func TestPresenceClaimReleaseAndWatch(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	type change struct {
		P       tandem.Presence
		Deleted bool
	}
	var mu sync.Mutex
	var seen []change
	// An entry written before the watch is not reported.
	p0 := tandem.Presence{PlayerID: "zed", Node: "n1", SessionID: "s0", Since: time.Unix(100, 0).UTC()}
	if _, err := b.ClaimPresence(ctx, p0); err != nil {
		t.Fatal(err)
	}
	stop, err := b.WatchPresence(ctx, func(p tandem.Presence, deleted bool) {
		mu.Lock()
		seen = append(seen, change{p, deleted})
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	p1 := tandem.Presence{PlayerID: "alice bob", Node: "n1", SessionID: "s1", Since: time.Unix(1, 0).UTC()}
	p2 := tandem.Presence{PlayerID: "alice bob", Node: "n2", SessionID: "s2", Moved: true, Since: time.Unix(2, 0).UTC()}
	want := []change{{p1, false}, {p2, false}, {tandem.Presence{PlayerID: "alice bob"}, true}, {p1, false}}
	// seenSoFar waits for the first n changes: a watch reports a key's
	// latest value, so one replaced before the watcher read it is skipped;
	// the test makes each change only once the one before was seen.
	seenSoFar := func(n int) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(want[:n], seen); diff != "" {
				return fmt.Errorf("changes (-want +got):\n%s", diff)
			}
			return nil
		})
	}
	prev, err := b.ClaimPresence(ctx, p1)
	if err != nil || prev != (tandem.Presence{}) {
		t.Fatalf("first claim: %+v, %v", prev, err)
	}
	seenSoFar(1)
	prev, err = b.ClaimPresence(ctx, p2)
	if err != nil || prev != p1 {
		t.Fatalf("second claim replaced %+v, %v; want %+v", prev, err, p1)
	}
	seenSoFar(2)
	// The old session's release leaves the new entry alone.
	if err := b.ReleasePresence(ctx, "alice bob", "s1"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Presence(ctx, "alice bob"); err != nil || got != p2 {
		t.Fatalf("Presence = %+v, %v; want %+v", got, err, p2)
	}
	if err := b.ReleasePresence(ctx, "alice bob", "s2"); err != nil {
		t.Fatal(err)
	}
	_, err = b.Presence(ctx, "alice bob")
	wantCode(t, err, tandem.ENotFound)
	seenSoFar(3)
	// Claimable again after the release.
	if prev, err := b.ClaimPresence(ctx, p1); err != nil || prev != (tandem.Presence{}) {
		t.Fatalf("claim after release: %+v, %v", prev, err)
	}
	seenSoFar(4)
}

func TestConcurrentPresenceClaimsFromTwoNodesChainConsistently(t *testing.T) {
	srv := startServer(t, "", "")
	buses := []*natsbus.Bus{connect(t, natsbus.Config{Server: srv, Name: "n1"}), connect(t, natsbus.Config{Server: srv, Name: "n2"})}
	ctx := t.Context()
	const perNode = 20
	type claim struct{ mine, prev tandem.Presence }
	var mu sync.Mutex
	var claims []claim
	var wg sync.WaitGroup
	for i, b := range buses {
		wg.Go(func() {
			for j := range perNode {
				p := tandem.Presence{PlayerID: "p", Node: fmt.Sprint("n", i+1), SessionID: fmt.Sprintf("n%d-s%d", i+1, j)}
				prev, err := b.ClaimPresence(ctx, p)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				claims = append(claims, claim{p, prev})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	final, err := buses[0].Presence(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	// Every claim replaced a distinct earlier one (or none, once): the
	// replacements form one chain from nothing to the final entry.
	replaced := map[string]int{}
	for _, c := range claims {
		replaced[c.prev.SessionID]++
	}
	for s, n := range replaced {
		if n != 1 {
			t.Errorf("session %q replaced %d times, want once", s, n)
		}
	}
	if replaced[final.SessionID] != 0 {
		t.Errorf("final entry %q was replaced", final.SessionID)
	}
	if len(replaced) != 2*perNode {
		t.Errorf("%d distinct replaced entries, want %d", len(replaced), 2*perNode)
	}
	if final.Node != "n1" && final.Node != "n2" {
		t.Errorf("final entry names %q", final.Node)
	}
}

func TestSeatIsClaimedExactlyOnce(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	s := tandem.Seat{Token: "tok/with+odd=chars", RoomID: "r1", PlayerID: "alice", Node: "n1", NodeURL: "ws://n1/ws",
		ExpiresAt: time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)}
	if err := b.CreateSeat(ctx, s); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.CreateSeat(ctx, s), tandem.EConflict)
	// Shown by another player, or to another node, the seat stays its
	// owner's.
	_, err := b.ClaimSeat(ctx, s.Token, "mallory", "n1")
	wantCode(t, err, tandem.ENotFound)
	_, err = b.ClaimSeat(ctx, s.Token, "alice", "n2")
	wantCode(t, err, tandem.ENotFound)
	var wg sync.WaitGroup
	results := make([]error, 10)
	seats := make([]tandem.Seat, 10)
	for i := range 10 {
		wg.Go(func() { seats[i], results[i] = b.ClaimSeat(ctx, s.Token, "alice", "n1") })
	}
	wg.Wait()
	wins := 0
	for i, err := range results {
		switch tandem.ErrorCodeOf(err) {
		case 0:
			wins++
			if diff := cmp.Diff(s, seats[i]); diff != "" {
				t.Errorf("claimed seat (-want +got):\n%s", diff)
			}
		case tandem.ENotFound:
		default:
			t.Errorf("claim: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d claims won, want 1", wins)
	}
	_, err = b.ClaimSeat(ctx, "unknown", "alice", "n1")
	wantCode(t, err, tandem.ENotFound)
}

func TestExpiredSeatCannotBeClaimed(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	s := tandem.Seat{Token: "t1", RoomID: "r1", PlayerID: "alice", ExpiresAt: time.Now().Add(100 * time.Millisecond)}
	if err := b.CreateSeat(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if time.Now().Before(s.ExpiresAt) {
			return errors.New("not expired yet")
		}
		return nil
	})
	_, err := b.ClaimSeat(ctx, "t1", "alice", "")
	wantCode(t, err, tandem.ENotFound)
}

type banChange struct {
	Ban     tandem.BanEntry
	Deleted bool
}

// banRecorder records the changes a ban watch reports.
type banRecorder struct {
	mu   sync.Mutex
	seen []banChange
}

func (r *banRecorder) record(b tandem.BanEntry, deleted bool) {
	r.mu.Lock()
	r.seen = append(r.seen, banChange{b, deleted})
	r.mu.Unlock()
}

func (r *banRecorder) waitFor(t *testing.T, want []banChange) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if diff := cmp.Diff(want, r.seen); diff != "" {
			return fmt.Errorf("ban changes (-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestWatchBansGetsEntriesThenChanges(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	start := time.Unix(1000, 0).UTC()
	perm := tandem.BanEntry{PlayerID: "alice", Start: start, Reason: "cheating"}
	gone := tandem.BanEntry{PlayerID: "lifted", Start: start}
	if err := b.PutBan(ctx, perm); err != nil {
		t.Fatal(err)
	}
	if err := b.PutBan(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteBan(ctx, "lifted"); err != nil {
		t.Fatal(err)
	}
	var r banRecorder
	stop, err := b.WatchBans(ctx, r.record)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// The entries present were delivered before WatchBans returned.
	r.mu.Lock()
	initial := slices.Clone(r.seen)
	r.mu.Unlock()
	if diff := cmp.Diff([]banChange{{perm, false}}, initial); diff != "" {
		t.Errorf("initial bans (-want +got):\n%s", diff)
	}

	// A ban that ended 55 s ago: kept only for the minute of grace.
	ending := tandem.BanEntry{PlayerID: "bob x", Start: start, Until: time.Now().Add(-55 * time.Second).UTC().Truncate(time.Millisecond)}
	if err := b.PutBan(ctx, ending); err != nil {
		t.Fatal(err)
	}
	// Replacing a ban with a timed one is one change, never a lift.
	timed := perm
	timed.Until = time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	if err := b.PutBan(ctx, timed); err != nil {
		t.Fatal(err)
	}
	// The lift purges alice's entry: seen only once the timed ban was.
	r.waitFor(t, []banChange{{perm, false}, {ending, false}, {timed, false}})
	if err := b.DeleteBan(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, []banChange{
		{perm, false},
		{ending, false},
		{timed, false},
		{tandem.BanEntry{PlayerID: "alice"}, true},
		{tandem.BanEntry{PlayerID: "bob x"}, true}, // expired
	})

	// A ban over for longer than the grace is not stored at all.
	if err := b.PutBan(ctx, tandem.BanEntry{PlayerID: "carol", Until: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func TestWatchKeysGetsTheCurrentSetAndLaterOnes(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	pub1, _, _ := ed25519.GenerateKey(nil)
	pub2, _, _ := ed25519.GenerateKey(nil)
	set1 := map[string]ed25519.PublicKey{"k1": pub1}
	set2 := map[string]ed25519.PublicKey{"k1": pub1, "k2": pub2}
	if err := b.PutKeys(ctx, set1); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []map[string]ed25519.PublicKey
	stop, err := b.WatchKeys(ctx, func(k map[string]ed25519.PublicKey) {
		mu.Lock()
		seen = append(seen, k)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.PutKeys(ctx, set2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff([]map[string]ed25519.PublicKey{set1, set2}, seen); diff != "" {
			return fmt.Errorf("key sets (-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestWatchStopsWhenContextEnds(t *testing.T) {
	b, _ := newBus(t)
	ctx, cancel := context.WithCancel(t.Context())
	stop, err := b.WatchKeys(ctx, func(map[string]ed25519.PublicKey) {})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	stop() // returns once the watch goroutine ended
	stop() // and again
}
