package service_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/clustertest"
	"github.com/tandemhq/tandem/internal/servicetest"
	"github.com/tandemhq/tandem/service"
)

func sessionByID(t *testing.T, store tandem.Store, playerID, id string) *tandem.RealtimeSession {
	t.Helper()
	var sessions []*tandem.RealtimeSession
	err := store.View(t.Context(), func(tx tandem.Tx) (err error) {
		sessions, err = tx.RealtimeSessions(t.Context(), playerID, 100)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no session %s of %s", id, playerID)
	return nil
}

// hidingCluster lists no node in the registry while Node still finds
// them: a node check that read the registry just before the node came
// back.
type hidingCluster struct{ tandem.Cluster }

func (hidingCluster) Nodes(context.Context) ([]tandem.NodeInfo, error) { return nil, nil }

// A node killed outright and restarted with the same id: what its first
// life left is cleaned up (sessions closed, presence purged, rooms
// removed), what its next life made before the node check saw it again is
// left alone, and a node back in the registry keeps its rooms.
func TestNodeDeclaredDownSparesItsNextLife(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		e := clusterEnv(t, store, bus)
		svc := e.Service
		if err := bus.PutNode(ctx, tandem.NodeInfo{ID: "n1", URL: "ws://n1/ws", Heartbeat: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := svc.CheckNodes(ctx); err != nil {
			t.Fatal(err)
		}
		old := e.Clock.Now().Add(-time.Minute)
		if _, err := bus.ClaimPresence(ctx, tandem.Presence{PlayerID: "p1", Node: "n1", SessionID: "s1", Since: old}); err != nil {
			t.Fatal(err)
		}
		if err := svc.StoreEvents(ctx, []tandem.Event{{ID: "n1.a.1", Node: "n1", Kind: tandem.EventSessionOpened, At: old, SessionID: "s1", PlayerID: "p1"}}); err != nil {
			t.Fatal(err)
		}
		if err := bus.PutRoom(ctx, tandem.RoomEntry{ID: "r-old", Node: "n1", CreatedAt: old}); err != nil {
			t.Fatal(err)
		}

		if err := bus.RemoveNode(ctx, "n1"); err != nil { // killed: its entry is gone
			t.Fatal(err)
		}
		e.Clock.Advance(2 * time.Second)
		if err := svc.CheckNodes(ctx); err != nil {
			t.Fatal(err)
		}
		if s := sessionByID(t, store, "p1", "s1"); s.ClosedAt.IsZero() || s.Reason != "node_down" {
			t.Errorf("session of the first life %+v, want closed (node_down)", s)
		}
		if _, err := bus.Presence(ctx, "p1"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Errorf("presence of a session ended with its node: %v, want it purged", err)
		}
		if _, err := bus.Room(ctx, "r-old"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Errorf("room of the first life: %v, want it removed", err)
		}

		// The next life opens a session and a room before the node check
		// sees it in the registry.
		later := e.Clock.Now()
		if err := bus.PutRoom(ctx, tandem.RoomEntry{ID: "r-new", Node: "n1", CreatedAt: later}); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.ClaimPresence(ctx, tandem.Presence{PlayerID: "p2", Node: "n1", SessionID: "s2", Since: later}); err != nil {
			t.Fatal(err)
		}
		if err := svc.StoreEvents(ctx, []tandem.Event{{ID: "n1.b.1", Node: "n1", Kind: tandem.EventSessionOpened, At: later, SessionID: "s2", PlayerID: "p2"}}); err != nil {
			t.Fatal(err)
		}
		if err := svc.CheckNodes(ctx); err != nil {
			t.Fatal(err)
		}
		if s := sessionByID(t, store, "p2", "s2"); !s.ClosedAt.IsZero() {
			t.Errorf("session of the next life %+v, want open", s)
		}
		if _, err := bus.Room(ctx, "r-new"); err != nil {
			t.Errorf("room of the next life: %v, want it kept", err)
		}
		if _, err := bus.Presence(ctx, "p2"); err != nil {
			t.Errorf("presence of the next life: %v, want it kept", err)
		}

		// A room from before the declaration, of a node back in the
		// registry by the time the rooms are removed, is kept.
		if err := bus.PutRoom(ctx, tandem.RoomEntry{ID: "r-back", Node: "n1", CreatedAt: old}); err != nil {
			t.Fatal(err)
		}
		if err := bus.PutNode(ctx, tandem.NodeInfo{ID: "n1", URL: "ws://n1/ws", Heartbeat: time.Now()}); err != nil {
			t.Fatal(err)
		}
		stale := clusterEnv(t, store, hidingCluster{bus})
		if err := stale.Service.CheckNodes(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Room(ctx, "r-back"); err != nil {
			t.Errorf("room of a node back in the registry: %v, want it kept", err)
		}
	})
}

// attemptCluster counts the sends to each node.
type attemptCluster struct {
	tandem.Cluster
	mu       *sync.Mutex
	attempts map[string]int
}

func (c attemptCluster) SendCommand(ctx context.Context, cmd tandem.Command) (tandem.CommandResult, error) {
	c.mu.Lock()
	c.attempts[cmd.Node]++
	c.mu.Unlock()
	return c.Cluster.SendCommand(ctx, cmd)
}

func TestRelayPassIsNotHeldUpByADeadNodesBacklog(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		var mu sync.Mutex
		attempts := map[string]int{}
		e := clusterEnv(t, store, attemptCluster{bus, &mu, attempts})
		live := serveNode(t, bus, "n-live")
		now := e.Clock.Now()
		err := store.Update(ctx, func(tx tandem.Tx) error {
			for i := range 150 { // more than a relay batch, all older than the live node's
				c := &tandem.CommandRecord{Command: tandem.Command{ID: fmt.Sprintf("dead-%03d", i), Node: "n-dead",
					Kind: tandem.CommandDrain, CreatedAt: now.Add(time.Duration(i) * time.Millisecond)}, State: tandem.CommandPending}
				if err := tx.CreateCommand(ctx, c); err != nil {
					return err
				}
			}
			return tx.CreateCommand(ctx, &tandem.CommandRecord{Command: tandem.Command{ID: "live-1", Node: "n-live",
				Kind: tandem.CommandDrain, CreatedAt: now.Add(time.Second)}, State: tandem.CommandPending})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Service.RelayPass(ctx); err != nil {
			t.Fatal(err)
		}
		if got := commandByID(t, e, "live-1"); got.State != tandem.CommandDelivered || live.count("live-1") != 1 {
			t.Errorf("the live node's command after one pass: %+v, want delivered", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if attempts["n-dead"] != 1 {
			t.Errorf("the dead node was tried %d times in one pass, want once", attempts["n-dead"])
		}
	})
}

// A change committed on a replica that does not hold the job's lease
// reaches the replica that does at once, not at its next interval (an
// hour here).
func TestBanOnAnotherReplicaWakesTheMirror(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		emb := startNATS(t)
		bus := connectBus(t, emb, "web-1")
		holder := clusterEnv(t, store, bus)
		other := clusterEnv(t, store, connectBus(t, emb, "web-2"))
		entry := watchBanBucket(t, bus)
		has := func(id string) bool { _, ok := entry(id); return ok }
		if err := bus.PutBan(ctx, tandem.BanEntry{PlayerID: "stale", Start: time.Now()}); err != nil {
			t.Fatal(err)
		}
		res, err := other.Service.GuestLogin(ctx, service.GuestLogin{DeviceID: "dev-1", Secret: deviceSecret})
		if err != nil {
			t.Fatal(err)
		}
		runJobs(t, holder.Service)
		// The mirror's first pass is done (and its wake-up watch in place).
		waitFor(t, "the stale entry deleted", func() bool { return !has("stale") })
		if _, err := other.Service.BanPlayer(ctx, service.CLIActor("ops"), service.BanRequest{PlayerID: res.Player.ID,
			Scope: tandem.BanAccount, Reason: "cheating", EndsAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the ban made on the other replica mirrored", func() bool { return has(res.Player.ID) })
	})
}

// refusingStore refuses to store the event "bad", as PostgreSQL refused
// text with NUL.
type refusingStore struct{ tandem.Store }

func (s refusingStore) Update(ctx context.Context, fn func(tandem.Tx) error) error {
	return s.Store.Update(ctx, func(tx tandem.Tx) error { return fn(refusingTx{tx}) })
}

type refusingTx struct{ tandem.Tx }

func (tx refusingTx) InsertEvents(ctx context.Context, events []tandem.Event) (int, error) {
	if slices.ContainsFunc(events, func(e tandem.Event) bool { return e.ID == "bad" }) {
		return 0, fmt.Errorf("invalid byte sequence")
	}
	return tx.Tx.InsertEvents(ctx, events)
}

func TestAnEventTheDatabaseRefusesIsDroppedNotRetriedForever(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		bus := connectBus(t, startNATS(t), "web")
		e := clusterEnv(t, refusingStore{store}, bus)
		now := time.Now()
		events := []tandem.Event{event(1, tandem.EventRoomJoined, now), event(2, tandem.EventNodeLog, now), event(3, tandem.EventRoomLeft, now)}
		events[1].ID, events[1].Reason = "bad", "raw\x00log"
		publish(t, bus, events...)
		runJobs(t, e.Service)
		waitFor(t, "the other events stored", func() bool { return len(storedEvents(t, store, "n1")) == 2 })
		// The consumer moved on: a later event is stored too.
		publish(t, bus, event(4, tandem.EventRoomJoined, now))
		waitFor(t, "a later event stored", func() bool { return len(storedEvents(t, store, "n1")) == 3 })
	})
}

// putKeysCluster counts the key sets published.
type putKeysCluster struct {
	tandem.Cluster
	mu   *sync.Mutex
	puts *int
}

func (c putKeysCluster) PutKeys(ctx context.Context, keys map[string]ed25519.PublicKey) error {
	c.mu.Lock()
	*c.puts++
	c.mu.Unlock()
	return c.Cluster.PutKeys(ctx, keys)
}

// A bus that lost its store gets the keys back without waiting for a
// rotation: the set is published at every pass, changed or not.
func TestKeyMirrorPublishesTheKeysAtEveryPass(t *testing.T) {
	bus := connectBus(t, startNATS(t), "web")
	var mu sync.Mutex
	puts := 0
	e := servicetest.New(t, func(c *service.Config) {
		c.Cluster = putKeysCluster{bus, &mu, &puts}
		fastJobs(c)
		c.ClusterJobs.BanMirrorInterval = 20 * time.Millisecond
	})
	runJobs(t, e.Service)
	waitFor(t, "the unchanged key set published three times", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return puts >= 3
	})
}

func TestSweepDeletesClusterHistoryPastTheRetention(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		e := servicetest.NewOn(t, store, func(c *service.Config) { c.ClusterJobs.Retention = 24 * time.Hour })
		now := e.Clock.Now()
		err := store.Update(ctx, func(tx tandem.Tx) error {
			_, err := tx.InsertEvents(ctx, []tandem.Event{
				{ID: "old", Node: "n1", Kind: tandem.EventNodeLog, At: now.Add(-48 * time.Hour)},
				{ID: "new", Node: "n1", Kind: tandem.EventNodeLog, At: now.Add(-time.Hour)},
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Service.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if got := storedEvents(t, store, "n1"); len(got) != 1 || got[0].ID != "new" {
			t.Errorf("events after the sweep = %+v, want only the one within the retention", got)
		}
	})
}

func TestSendCommandAuthorizesFirstAndAuditsRefusedInput(t *testing.T) {
	ctx := t.Context()
	bus := connectBus(t, startNATS(t), "web")
	e := servicetest.New(t, func(c *service.Config) { c.Cluster = bus; fastJobs(c) })
	none := &service.Actor{Kind: tandem.ActorAdmin, ID: 8, Name: "nobody", Role: &tandem.Role{Name: "empty"}}
	_, err := e.Service.SendCommand(ctx, none, service.CommandRequest{Kind: "reboot"})
	wantCode(t, err, tandem.EPermission)
	_, err = e.Service.SendCommand(ctx, service.CLIActor("ops"), service.CommandRequest{Kind: "reboot"})
	wantCode(t, err, tandem.EValidation)
	_, err = e.Service.SendCommand(ctx, service.CLIActor("ops"), service.CommandRequest{Kind: tandem.CommandDrain, Node: "n-typo"})
	wantCode(t, err, tandem.ENotFound)
	results := map[string]int{}
	for _, r := range auditOf(t, e.DB, "node.command") {
		results[string(r.Result)]++
	}
	if results[string(tandem.AuditDenied)] != 1 || results[string(tandem.AuditFailed)] != 2 {
		t.Errorf("node.command audit results = %v, want 1 denied and 2 failed", results)
	}
}

func TestPlayerLiveStatusListsRoomsOnlyWithRoomsRead(t *testing.T) {
	ctx := t.Context()
	bus := connectBus(t, startNATS(t), "web")
	e := servicetest.New(t, func(c *service.Config) { c.Cluster = bus })
	keepRegistered(t, bus, "n1")
	now := time.Now().UTC()
	clustertest.ServeInspections(t, bus, "n1", clustertest.Inspector{
		Players: map[string]tandem.LivePlayer{"p1": {PlayerID: "p1", SessionID: "s1", Connected: true, Rooms: []string{"r1"}, Since: now}},
	})
	if err := bus.PutRoom(ctx, tandem.RoomEntry{ID: "r1", Type: "relay", Node: "n1", Players: []string{"p1"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.ClaimPresence(ctx, tandem.Presence{PlayerID: "p1", Node: "n1", SessionID: "s1", Since: now}); err != nil {
		t.Fatal(err)
	}
	actor := func(perms ...tandem.Permission) *service.Actor {
		return &service.Actor{Kind: tandem.ActorAdmin, ID: 9, Name: "pat", Role: &tandem.Role{Name: "custom", Permissions: perms}}
	}

	st, err := e.Service.PlayerLiveStatus(ctx, actor(tandem.PermPlayersRead, tandem.PermRoomsRead), "p1")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Online || !slices.Equal(st.Rooms, []string{"r1"}) {
		t.Errorf("PlayerLiveStatus with rooms:read = %+v, want online in r1", st)
	}
	st, err = e.Service.PlayerLiveStatus(ctx, actor(tandem.PermPlayersRead), "p1")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Online || st.Node != "n1" || st.Rooms != nil {
		t.Errorf("PlayerLiveStatus without rooms:read = %+v, want online on n1 and no rooms", st)
	}
}
