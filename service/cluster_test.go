package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/clustertest"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/servicetest"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/service"
)

// startNATS starts an embedded NATS server for the test.
func startNATS(t *testing.T) *natsbus.Embedded { return clustertest.StartNATS(t) }

// connectBus connects a bus client to emb, closed at the test's end.
func connectBus(t *testing.T, emb *natsbus.Embedded, name string) *natsbus.Bus {
	return clustertest.Connect(t, emb, natsbus.Config{Name: name, NodeTTL: time.Second, RequestTimeout: 200 * time.Millisecond})
}

// fastJobs makes every cluster job run within milliseconds.
func fastJobs(c *service.Config) {
	c.ClusterJobs = service.ClusterConfig{
		RelayInterval: 50 * time.Millisecond, NodeCheckInterval: 50 * time.Millisecond, NodeTTL: time.Second,
		BanMirrorInterval: time.Hour, LeaseRetry: 50 * time.Millisecond, NodeCache: time.Millisecond,
	}
}

// clusterEnv is a service with a bus on one database.
func clusterEnv(t *testing.T, store tandem.Store, cluster tandem.Cluster) *servicetest.Env {
	return servicetest.NewOn(t, store, func(c *service.Config) {
		c.Cluster = cluster
		fastJobs(c)
	})
}

// runJobs runs svc's cluster jobs until the returned stop is called (or
// the test ends).
func runJobs(t *testing.T, svc *service.Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RunClusterJobs(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// fakeNode answers a node's commands and counts how often each id was
// handled.
type fakeNode struct {
	mu      sync.Mutex
	handled map[string]int
}

// keepRegistered keeps the nodes ids in the registry (a heartbeat every
// 100 ms) until the test ends, as live nodes are.
func keepRegistered(t *testing.T, bus tandem.Cluster, ids ...string) {
	t.Helper()
	put := func(ctx context.Context) error {
		for _, id := range ids {
			if err := bus.PutNode(ctx, tandem.NodeInfo{ID: id, URL: "ws://" + id + "/ws", Heartbeat: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := put(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = put(ctx)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func serveNode(t *testing.T, bus tandem.Cluster, id string) *fakeNode {
	t.Helper()
	keepRegistered(t, bus, id)
	n := &fakeNode{handled: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = bus.ServeCommands(ctx, id, func(_ context.Context, c tandem.Command) tandem.CommandResult {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.handled[c.ID]++
			return tandem.CommandResult{OK: c.Kind != tandem.CommandCloseRoom, Error: map[bool]string{true: "no such room"}[c.Kind == tandem.CommandCloseRoom]}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	// Serving once a probe is answered: the subscription is in place.
	waitFor(t, "node "+id+" serving", func() bool {
		_, err := bus.SendCommand(t.Context(), tandem.Command{ID: "probe-" + id, Node: id, Kind: tandem.CommandNotice, Text: "probe"})
		return err == nil
	})
	return n
}

func (n *fakeNode) count(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.handled[id]
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func commandByID(t *testing.T, e *servicetest.Env, id string) service.CommandRecord {
	t.Helper()
	cs, err := e.Service.Commands(context.Background(), service.CLIActor("test"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("command %s not listed", id)
	return service.CommandRecord{}
}

func forEachStore(t *testing.T, test func(t *testing.T, store tandem.Store)) {
	forEachBackend(t, func(t *testing.T, store tandem.Store, _ rawDB) { test(t, store) })
}

func TestSendCommandStoresItWithItsAuditAndTheRelayDeliversIt(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		node := serveNode(t, bus, "n1")
		e := clusterEnv(t, store, bus)
		cli := service.CLIActor("ops")

		out, err := e.Service.SendCommand(ctx, cli, service.CommandRequest{Kind: tandem.CommandLockRoom, Node: "n1", RoomID: "r1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || out[0].State != tandem.CommandPending || out[0].Node != "n1" || out[0].CreatedBy != "ops" {
			t.Fatalf("SendCommand = %+v, want one pending command for n1 by ops", out)
		}
		// Written with its audit record, before any relay ran.
		var recs []*tandem.AuditRecord
		err = e.DB.View(ctx, func(tx tandem.Tx) (err error) {
			recs, err = tx.AuditRecords(ctx, tandem.AuditFilter{Action: "node.command"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].TargetID != "n1" || !strings.Contains(recs[0].After, out[0].ID) {
			t.Fatalf("audit records %+v, want one for n1 naming %s", recs, out[0].ID)
		}

		runJobs(t, e.Service)
		waitFor(t, "the command delivered", func() bool { return commandByID(t, e, out[0].ID).State == tandem.CommandDelivered })
		got := commandByID(t, e, out[0].ID)
		if !got.ResultOK || got.DeliveredAt.IsZero() || got.Attempts != 1 {
			t.Errorf("delivered command %+v, want OK, a delivery time and 1 attempt", got)
		}
		if n := node.count(out[0].ID); n != 1 {
			t.Errorf("node handled the command %d times, want 1", n)
		}

		// A refusal by the node is delivered all the same, with its error.
		out, err = e.Service.SendCommand(ctx, cli, service.CommandRequest{Kind: tandem.CommandCloseRoom, Node: "n1", RoomID: "gone"})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the refused command delivered", func() bool { return commandByID(t, e, out[0].ID).State == tandem.CommandDelivered })
		if got := commandByID(t, e, out[0].ID); got.ResultOK || got.ResultError != "no such room" {
			t.Errorf("refused command %+v, want not OK with the node's error", got)
		}
	})
}

func TestCommandToAnAbsentNodeStaysPendingUntilTheNodeServes(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		e := clusterEnv(t, store, bus)
		runJobs(t, e.Service)
		keepRegistered(t, bus, "n2") // live, but not serving commands yet
		out, err := e.Service.SendCommand(ctx, service.CLIActor("ops"), service.CommandRequest{Kind: tandem.CommandDrain, Node: "n2"})
		if err != nil {
			t.Fatal(err)
		}
		id := out[0].ID
		waitFor(t, "two failed attempts", func() bool { return commandByID(t, e, id).Attempts >= 2 })
		if got := commandByID(t, e, id); got.State != tandem.CommandPending || got.LastError == "" {
			t.Fatalf("command to an absent node %+v, want pending with an error", got)
		}
		node := serveNode(t, bus, "n2")
		waitFor(t, "delivery once n2 serves", func() bool { return commandByID(t, e, id).State == tandem.CommandDelivered })
		if n := node.count(id); n != 1 {
			t.Errorf("node handled the command %d times, want 1", n)
		}
	})
}

func TestCommandNotDeliveredInTimeFails(t *testing.T) {
	bus := connectBus(t, startNATS(t), "web")
	e := servicetest.New(t, func(c *service.Config) {
		c.Cluster = bus
		fastJobs(c)
		c.ClusterJobs.CommandGiveUp = time.Minute
	})
	keepRegistered(t, bus, "n9")
	out, err := e.Service.SendCommand(t.Context(), service.CLIActor("ops"), service.CommandRequest{Kind: tandem.CommandDrain, Node: "n9"})
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(2 * time.Minute)
	runJobs(t, e.Service)
	waitFor(t, "the command failed", func() bool { return commandByID(t, e, out[0].ID).State == tandem.CommandFailed })
}

func TestRelayResendingAfterSendBeforeMarkActsOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		node := serveNode(t, bus, "n1")
		e := clusterEnv(t, store, bus)
		out, err := e.Service.SendCommand(ctx, service.CLIActor("ops"), service.CommandRequest{Kind: tandem.CommandKick, Node: "n1", PlayerID: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		// A relay that sent the command and died before marking it.
		if _, err := bus.SendCommand(ctx, out[0].Command); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			stop := runJobs(t, e.Service)
			waitFor(t, "the command delivered", func() bool { return commandByID(t, e, out[0].ID).State == tandem.CommandDelivered })
			stop()
		}
		if n := node.count(out[0].ID); n != 1 {
			t.Errorf("node handled the command %d times, want 1", n)
		}
	})
}

func TestSendCommandResolvesTheNode(t *testing.T) {
	ctx := t.Context()
	bus := connectBus(t, startNATS(t), "web")
	e := servicetest.New(t, func(c *service.Config) { c.Cluster = bus; fastJobs(c) })
	cli := service.CLIActor("ops")
	now := time.Now()
	keepRegistered(t, bus, "n1", "n2")
	for _, p := range []tandem.Presence{
		{PlayerID: "p1", Node: "n2", SessionID: "s1", Since: now},
		{PlayerID: "stale", Node: "dead", SessionID: "s9", Since: now}, // left by a node killed outright
	} {
		if _, err := bus.ClaimPresence(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.PutRoom(ctx, tandem.RoomEntry{ID: "r1", Type: "relay", Node: "n1", Players: []string{"p1"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	nodesOf := func(in service.CommandRequest) []string {
		t.Helper()
		out, err := e.Service.SendCommand(ctx, cli, in)
		if err != nil {
			t.Fatalf("SendCommand(%+v): %v", in, err)
		}
		var nodes []string
		for _, c := range out {
			nodes = append(nodes, c.Node)
		}
		return nodes
	}
	for _, tc := range []struct {
		in   service.CommandRequest
		want string
	}{
		{service.CommandRequest{Kind: tandem.CommandKick, PlayerID: "p1"}, "n2"},
		{service.CommandRequest{Kind: tandem.CommandNotice, PlayerID: "p1", Text: "hi"}, "n2"},
		{service.CommandRequest{Kind: tandem.CommandCloseRoom, RoomID: "r1"}, "n1"},
		{service.CommandRequest{Kind: tandem.CommandNotice, RoomID: "r1", Text: "hi"}, "n1"},
		{service.CommandRequest{Kind: tandem.CommandNotice, Text: "to everyone"}, "n1,n2"},
	} {
		if got := strings.Join(nodesOf(tc.in), ","); got != tc.want {
			t.Errorf("SendCommand(%+v) went to %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   service.CommandRequest
		want tandem.ErrorCode
	}{
		{service.CommandRequest{Kind: tandem.CommandKick, PlayerID: "offline"}, tandem.ENotFound},
		{service.CommandRequest{Kind: tandem.CommandKick, PlayerID: "stale"}, tandem.ENotFound},
		{service.CommandRequest{Kind: tandem.CommandDrain, Node: "n-typo"}, tandem.ENotFound},
		{service.CommandRequest{Kind: tandem.CommandKick, Node: "dead", PlayerID: "stale"}, tandem.ENotFound},
		{service.CommandRequest{Kind: tandem.CommandLockRoom, RoomID: "unknown"}, tandem.ENotFound},
		{service.CommandRequest{Kind: tandem.CommandKick}, tandem.EValidation},
		{service.CommandRequest{Kind: tandem.CommandCloseRoom}, tandem.EValidation},
		{service.CommandRequest{Kind: tandem.CommandDrain}, tandem.EValidation},
		{service.CommandRequest{Kind: tandem.CommandNotice, Text: strings.Repeat("x", 501)}, tandem.EValidation},
		{service.CommandRequest{Kind: "reboot", Node: "n1"}, tandem.EValidation},
	} {
		_, err := e.Service.SendCommand(ctx, cli, tc.in)
		wantCode(t, err, tc.want)
	}

	st, err := e.Service.PlayerLiveStatus(ctx, cli, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Online || st.Node != "n2" || st.SessionID != "s1" || strings.Join(st.Rooms, ",") != "r1" {
		t.Errorf("PlayerLiveStatus = %+v, want online on n2 in r1", st)
	}
	if st, err := e.Service.PlayerLiveStatus(ctx, cli, "stale"); err != nil || st.Online {
		t.Errorf("PlayerLiveStatus of a player on a dead node = %+v, %v; want offline", st, err)
	}
	rooms, err := e.Service.LiveRooms(ctx, cli, service.RoomFilter{Node: "n1"})
	if err != nil || len(rooms) != 1 || rooms[0].ID != "r1" {
		t.Errorf("LiveRooms(node n1) = %v, %v; want r1", rooms, err)
	}
	if rooms, _ := e.Service.LiveRooms(ctx, cli, service.RoomFilter{Type: "arena"}); len(rooms) != 0 {
		t.Errorf("LiveRooms(type arena) = %v, want none", rooms)
	}
	if _, err := e.Service.LiveRoom(ctx, cli, "unknown"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("LiveRoom(unknown): %v, want not found", err)
	}
}

func TestSendCommandWithoutAClusterIsUnavailable(t *testing.T) {
	e := servicetest.New(t, nil)
	_, err := e.Service.SendCommand(t.Context(), service.CLIActor("ops"), service.CommandRequest{Kind: tandem.CommandDrain, Node: "n1"})
	wantCode(t, err, tandem.EUnavailable)
	// Refused for want of a cluster is a failed action like any other.
	if recs := auditOf(t, e.DB, "node.command"); len(recs) != 1 || recs[0].Result != tandem.AuditFailed {
		t.Errorf("node.command audit records without a cluster = %+v, want one failed", recs)
	}
	nodes, err := e.Service.Nodes(t.Context(), service.CLIActor("ops"))
	if err != nil || len(nodes) != 0 {
		t.Errorf("Nodes without a cluster = %v, %v; want none", nodes, err)
	}
}

func TestClusterOperationsNeedTheirPermissions(t *testing.T) {
	ctx := t.Context()
	bus := connectBus(t, startNATS(t), "web")
	e := servicetest.New(t, func(c *service.Config) { c.Cluster = bus })
	roleOf := func(name string) *tandem.Role {
		roles, err := e.Service.Roles(ctx, service.CLIActor("test"))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roles {
			if r.Name == name {
				return r
			}
		}
		t.Fatalf("no role %s", name)
		return nil
	}
	support := &service.Actor{Kind: tandem.ActorAdmin, ID: 7, Name: "sam", Role: roleOf(tandem.RoleSupport)}
	_, err := e.Service.SendCommand(ctx, support, service.CommandRequest{Kind: tandem.CommandDrain, Node: "n1"})
	wantCode(t, err, tandem.EPermission)
	if _, err := e.Service.Commands(ctx, support, 10); err != nil {
		t.Errorf("Commands as support (rooms:read): %v", err)
	}
	none := &service.Actor{Kind: tandem.ActorAdmin, ID: 8, Name: "nobody", Role: &tandem.Role{Name: "empty"}}
	_, err = e.Service.Nodes(ctx, none)
	wantCode(t, err, tandem.EPermission)
	_, err = e.Service.LiveRooms(ctx, none, service.RoomFilter{})
	wantCode(t, err, tandem.EPermission)
	_, err = e.Service.LiveRoom(ctx, none, "r1")
	wantCode(t, err, tandem.EPermission)
	_, err = e.Service.PlayerLiveStatus(ctx, none, "p1")
	wantCode(t, err, tandem.EPermission)
	_, err = e.Service.Commands(ctx, none, 10)
	wantCode(t, err, tandem.EPermission)

	var denied []*tandem.AuditRecord
	err = e.DB.View(ctx, func(tx tandem.Tx) (err error) {
		denied, err = tx.AuditRecords(ctx, tandem.AuditFilter{Action: "node.command", Result: tandem.AuditDenied})
		return err
	})
	if err != nil || len(denied) != 1 {
		t.Errorf("denied node.command audit records = %d (%v), want 1", len(denied), err)
	}
}

func storedEvents(t *testing.T, store tandem.Store, node string) []tandem.Event {
	t.Helper()
	var out []tandem.Event
	err := store.View(context.Background(), func(tx tandem.Tx) (err error) {
		out, err = tx.NodeEvents(context.Background(), node, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func publish(t *testing.T, bus tandem.Cluster, events ...tandem.Event) {
	t.Helper()
	for _, e := range events {
		if err := bus.PublishEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func event(n int, kind tandem.EventKind, at time.Time) tandem.Event {
	return tandem.Event{ID: fmt.Sprintf("n1.boot.%d", n), Node: "n1", Kind: kind, At: at, RoomID: "r1", SessionID: fmt.Sprintf("s%d", n), PlayerID: "p1"}
}

func TestEventsAreStoredOnceAcrossConsumerRestarts(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		bus := connectBus(t, startNATS(t), "web")
		e := clusterEnv(t, store, bus)
		now := time.Now().UTC().Truncate(time.Microsecond)
		var first []tandem.Event
		for i := range 5 {
			first = append(first, event(i, tandem.EventRoomJoined, now.Add(time.Duration(i)*time.Millisecond)))
		}
		publish(t, bus, first...)
		publish(t, bus, first[1], first[3]) // delivered twice
		stop := runJobs(t, e.Service)
		waitFor(t, "5 events stored", func() bool { return len(storedEvents(t, store, "n1")) == 5 })
		stop()

		opened := event(10, tandem.EventSessionOpened, now.Add(time.Second))
		closed := event(11, tandem.EventSessionClosed, now.Add(3*time.Second))
		closed.SessionID, closed.Duration, closed.CloseCode, closed.Reason = opened.SessionID, 2*time.Second, 4501, "kicked"
		publish(t, bus, first[0], opened, closed)
		runJobs(t, e.Service)
		waitFor(t, "7 events stored", func() bool { return len(storedEvents(t, store, "n1")) == 7 })
		ids := map[string]int{}
		for _, ev := range storedEvents(t, store, "n1") {
			ids[ev.ID]++
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("event %s stored %d times", id, n)
			}
		}
		var sessions []*tandem.RealtimeSession
		err := store.View(t.Context(), func(tx tandem.Tx) (err error) {
			sessions, err = tx.RealtimeSessions(t.Context(), "p1", 10)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(sessions) != 1 || !sessions[0].OpenedAt.Equal(opened.At) || !sessions[0].ClosedAt.Equal(closed.At) || sessions[0].Reason != "kicked" {
			t.Errorf("sessions = %+v, want s10 opened and closed (kicked)", sessions)
		}
	})
}

func TestNodeDownClosesItsOpenSessionsAtItsLastHeartbeat(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		e := clusterEnv(t, store, bus)
		hb := time.Now().UTC().Truncate(time.Microsecond)
		if err := bus.PutNode(ctx, tandem.NodeInfo{ID: "n1", URL: "ws://n1/ws", Heartbeat: hb}); err != nil {
			t.Fatal(err)
		}
		publish(t, bus, event(1, tandem.EventSessionOpened, hb.Add(-time.Minute)))
		// The killed node's room stays in the directory until the node is
		// declared down; another node's room stays.
		for _, r := range []tandem.RoomEntry{{ID: "r-dead", Node: "n1"}, {ID: "r-other", Node: "n2"}} {
			if err := bus.PutRoom(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		runJobs(t, e.Service)
		cli := service.CLIActor("ops")
		waitFor(t, "the node declared down", func() bool {
			nodes, err := e.Service.Nodes(ctx, cli)
			return err == nil && len(nodes) == 1 && nodes[0].Down
		})
		var sessions []*tandem.RealtimeSession
		waitFor(t, "the session closed", func() bool {
			err := store.View(ctx, func(tx tandem.Tx) (err error) {
				sessions, err = tx.RealtimeSessions(ctx, "p1", 10)
				return err
			})
			return err == nil && len(sessions) == 1 && !sessions[0].ClosedAt.IsZero()
		})
		// The last heartbeat is when the web server last saw the node in
		// the registry, by its own clock: at or after the node wrote it.
		if s := sessions[0]; s.ClosedAt.Before(hb) || s.Reason != "node_down" || s.CloseCode != 0 || s.Duration != s.ClosedAt.Sub(s.OpenedAt) {
			t.Errorf("closed session %+v, want closed at the last heartbeat seen, not before %v (node_down)", s, hb)
		}
		downs := 0
		for _, ev := range storedEvents(t, store, "n1") {
			if ev.Kind == tandem.EventNodeDown {
				downs++
			}
		}
		if downs != 1 {
			t.Errorf("%d node.down events stored, want 1", downs)
		}
		waitFor(t, "the down node's room gone from the directory", func() bool {
			_, err := bus.Room(ctx, "r-dead")
			return tandem.ErrorCodeOf(err) == tandem.ENotFound
		})
		if _, err := bus.Room(ctx, "r-other"); err != nil {
			t.Errorf("another node's room: %v", err)
		}
	})
}

// watchBanBucket follows the bans bucket until the test ends and returns
// a reader of the entry it holds for a player.
func watchBanBucket(t *testing.T, bus tandem.BanBucket) func(playerID string) (tandem.BanEntry, bool) {
	t.Helper()
	var (
		mu     sync.Mutex
		bucket = map[string]tandem.BanEntry{}
	)
	stop, err := bus.WatchBans(t.Context(), func(b tandem.BanEntry, deleted bool) {
		mu.Lock()
		defer mu.Unlock()
		if deleted {
			delete(bucket, b.PlayerID)
		} else {
			bucket[b.PlayerID] = b
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return func(id string) (tandem.BanEntry, bool) {
		mu.Lock()
		defer mu.Unlock()
		b, ok := bucket[id]
		return b, ok
	}
}

func TestBanMirrorFollowsBanPlayerAndLiftBan(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		e := clusterEnv(t, store, bus) // BanMirrorInterval is an hour: only the wake-ups propagate
		entry := watchBanBucket(t, bus)
		// A stale entry of a player with no ban goes at the mirror's start.
		if err := bus.PutBan(ctx, tandem.BanEntry{PlayerID: "stale", Start: time.Now()}); err != nil {
			t.Fatal(err)
		}
		res, err := e.Service.GuestLogin(ctx, service.GuestLogin{DeviceID: "dev-1", Secret: deviceSecret})
		if err != nil {
			t.Fatal(err)
		}
		pid := res.Player.ID
		runJobs(t, e.Service)
		waitFor(t, "the stale entry deleted", func() bool { _, ok := entry("stale"); return !ok })

		cli := service.CLIActor("ops")
		ends := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		ban, err := e.Service.BanPlayer(ctx, cli, service.BanRequest{PlayerID: pid, Scope: tandem.BanAccount, Reason: "cheating", EndsAt: ends})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the ban mirrored", func() bool { _, ok := entry(pid); return ok })
		if b, _ := entry(pid); !b.Until.Equal(ends) || b.Reason != "cheating" {
			t.Errorf("mirrored ban %+v, want until %v for cheating", b, ends)
		}
		if _, err := e.Service.LiftBan(ctx, cli, pid, ban.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the lifted ban deleted", func() bool { _, ok := entry(pid); return !ok })
	})
}

func TestIssueRealtimeTokenPicksTheLightestLiveNode(t *testing.T) {
	ctx := t.Context()
	bus := connectBus(t, startNATS(t), "web")
	e := servicetest.New(t, func(c *service.Config) {
		c.Cluster = bus
		fastJobs(c)
		c.Players.RealtimeURL = "ws://fallback/ws"
	})
	res, err := e.Service.GuestLogin(ctx, service.GuestLogin{DeviceID: "dev-1", Secret: deviceSecret})
	if err != nil {
		t.Fatal(err)
	}
	if res.RealtimeToken.URL != "ws://fallback/ws" {
		t.Errorf("with no live node the URL is %q, want the configured one", res.RealtimeToken.URL)
	}
	now := time.Now()
	for _, n := range []tandem.NodeInfo{
		{ID: "n1", URL: "ws://n1/ws", Connections: 5, Heartbeat: now},
		{ID: "n2", URL: "ws://n2/ws", Connections: 2, Heartbeat: now},
		{ID: "n3", URL: "ws://n3/ws", Connections: 0, Draining: true, Heartbeat: now},
	} {
		if err := bus.PutNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	player := &service.PlayerActor{PlayerID: res.Player.ID, SessionID: res.SessionID}
	urlNow := func() string {
		rt, err := e.Service.IssueRealtimeToken(ctx, player, res.Player.ID)
		if err != nil {
			t.Fatal(err)
		}
		return rt.URL
	}
	waitFor(t, "the lighter node n2 chosen", func() bool { return urlNow() == "ws://n2/ws" })
	if err := bus.PutNode(ctx, tandem.NodeInfo{ID: "n2", URL: "ws://n2/ws", Connections: 2, Draining: true, Heartbeat: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n1 chosen once n2 drains", func() bool { return urlNow() == "ws://n1/ws" })
	// A player whose session lives on a node is sent back there, however
	// loaded: a resume works only on that node.
	if _, err := bus.ClaimPresence(ctx, tandem.Presence{PlayerID: res.Player.ID, Node: "n4", SessionID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if err := bus.PutNode(ctx, tandem.NodeInfo{ID: "n4", URL: "ws://n4/ws", Connections: 99, Heartbeat: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the player's own node n4 chosen", func() bool { return urlNow() == "ws://n4/ws" })
}

// countingCluster counts, per command id, the sends the node answered.
type countingCluster struct {
	tandem.Cluster
	mu        *sync.Mutex
	delivered map[string]int
}

func (c countingCluster) SendCommand(ctx context.Context, cmd tandem.Command) (tandem.CommandResult, error) {
	res, err := c.Cluster.SendCommand(ctx, cmd)
	if err == nil {
		c.mu.Lock()
		c.delivered[cmd.ID]++
		c.mu.Unlock()
	}
	return res, err
}

func TestTwoReplicasOnOnePostgresDeliverOnceAndStoreOnce(t *testing.T) {
	store := pgtest.Open(t)
	emb := startNATS(t)
	var mu sync.Mutex
	delivered := map[string]int{}
	web1 := clusterEnv(t, store, countingCluster{connectBus(t, emb, "web-1"), &mu, delivered})
	web2 := clusterEnv(t, store, countingCluster{connectBus(t, emb, "web-2"), &mu, delivered})
	nodeBus := connectBus(t, emb, "n1")
	node := serveNode(t, nodeBus, "n1")
	runJobs(t, web1.Service)
	runJobs(t, web2.Service)

	ctx := t.Context()
	var ids []string
	for i := range 10 {
		svc := []*service.Service{web1.Service, web2.Service}[i%2]
		out, err := svc.SendCommand(ctx, service.CLIActor("ops"), service.CommandRequest{Kind: tandem.CommandNotice, Node: "n1", Text: fmt.Sprint("notice ", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out[0].ID)
	}
	now := time.Now()
	for i := range 20 {
		publish(t, nodeBus, event(i, tandem.EventRoomJoined, now.Add(time.Duration(i)*time.Millisecond)))
	}
	for _, id := range ids {
		waitFor(t, "command "+id+" delivered", func() bool { return commandByID(t, web1, id).State == tandem.CommandDelivered })
		if n := node.count(id); n != 1 {
			t.Errorf("command %s handled %d times, want 1", id, n)
		}
	}
	mu.Lock()
	for _, id := range ids {
		if n := delivered[id]; n != 1 {
			t.Errorf("command %s was sent to its node %d times, want 1: one relay at a time", id, n)
		}
	}
	mu.Unlock()
	waitFor(t, "20 events stored", func() bool { return len(storedEvents(t, store, "n1")) == 20 })
}

func TestLiveRoomAndPlayerStatusCarryTheNodesAnswerOrSayItDidNotAnswer(t *testing.T) {
	ctx := t.Context()
	bus := connectBus(t, startNATS(t), "web")
	e := servicetest.New(t, func(c *service.Config) { c.Cluster = bus; fastJobs(c) })
	cli := service.CLIActor("ops")
	now := time.Now().UTC()
	keepRegistered(t, bus, "n1", "n2")
	room := tandem.RoomEntry{ID: "r1", Type: "relay", Node: "n1", Players: []string{"p1", "p2"}, CreatedAt: now}
	players := []tandem.LivePlayer{
		{PlayerID: "p1", SessionID: "s1", Connected: true, RTTMillis: 12.5, Rooms: []string{"r1"}, Since: now},
		{PlayerID: "p2", SessionID: "s2", RTTMillis: 80, Rooms: []string{"r1"}, Since: now},
	}
	clustertest.ServeInspections(t, bus, "n1", clustertest.Inspector{
		Rooms:   map[string]tandem.RoomInspection{"r1": {Room: room, Players: players, Snapshot: []byte(`{"turn":"p1"}`)}},
		Players: map[string]tandem.LivePlayer{"p1": players[0]},
	})
	// n2 has rooms and sessions in the buckets but no process answers for it.
	for _, r := range []tandem.RoomEntry{room, {ID: "r2", Type: "relay", Node: "n2", Players: []string{"p3"}, CreatedAt: now}} {
		if err := bus.PutRoom(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []tandem.Presence{{PlayerID: "p1", Node: "n1", SessionID: "s1", Since: now}, {PlayerID: "p3", Node: "n2", SessionID: "s3", Since: now}} {
		if _, err := bus.ClaimPresence(ctx, p); err != nil {
			t.Fatal(err)
		}
	}

	d, err := e.Service.LiveRoom(ctx, cli, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if d.InspectError != "" || string(d.Snapshot) != `{"turn":"p1"}` {
		t.Errorf("LiveRoom(r1): snapshot %q, inspect error %q; want the node's snapshot", d.Snapshot, d.InspectError)
	}
	if diff := cmp.Diff(players, d.Players); diff != "" {
		t.Errorf("LiveRoom(r1) players (-want +got):\n%s", diff)
	}
	d, err = e.Service.LiveRoom(ctx, cli, "r2")
	if err != nil {
		t.Fatalf("LiveRoom of a room whose node does not answer: %v", err)
	}
	if d.InspectError == "" || d.Room.Node != "n2" || len(d.Players) != 0 || d.Snapshot != nil {
		t.Errorf("LiveRoom(r2) = %+v, want the directory's entry and an inspect error", d)
	}

	st, err := e.Service.PlayerLiveStatus(ctx, cli, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Online || !st.Connected || st.RTTMillis != 12.5 || st.InspectError != "" {
		t.Errorf("PlayerLiveStatus(p1) = %+v, want connected with an RTT of 12.5 ms", st)
	}
	st, err = e.Service.PlayerLiveStatus(ctx, cli, "p3")
	if err != nil {
		t.Fatalf("PlayerLiveStatus of a player whose node does not answer: %v", err)
	}
	if !st.Online || st.Node != "n2" || st.Connected || st.InspectError == "" {
		t.Errorf("PlayerLiveStatus(p3) = %+v, want online on n2 with an inspect error", st)
	}
}
