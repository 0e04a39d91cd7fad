package service_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/servicetest"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/service"
)

func duelQueue(name string) tandem.MatchQueue {
	return tandem.MatchQueue{Name: name, RoomType: "arena", Teams: 2, TeamSize: 1,
		Rules: []tandem.MatchRule{{Property: "skill", Kind: tandem.RuleRange, Base: 50, Step: 25, EveryMS: 5000, Max: 200}}}
}

func builtinActor(t *testing.T, e *servicetest.Env, role string) *service.Actor {
	t.Helper()
	r, err := e.Service.Role(t.Context(), service.CLIActor("test"), e.Roles[role])
	if err != nil {
		t.Fatal(err)
	}
	return &service.Actor{Kind: tandem.ActorAdmin, ID: 7, Name: "sam-" + role, Role: r}
}

func TestPutQueueNeedsMatchmakingManageAndIsAudited(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		e := servicetest.NewOn(t, store, nil)

		support := builtinActor(t, e, tandem.RoleSupport)
		_, err := e.Service.PutQueue(ctx, support, duelQueue("duel"))
		wantCode(t, err, tandem.EPermission)
		if recs := auditOf(t, store, "match_queue.put"); len(recs) != 1 || recs[0].Result != tandem.AuditDenied {
			t.Fatalf("audit of a refused put = %+v, want one denied", recs)
		}
		// Reading takes rooms:read only.
		if _, err := e.Service.Queues(ctx, support); err != nil {
			t.Errorf("Queues as support: %v", err)
		}

		operator := builtinActor(t, e, tandem.RoleOperator)
		q, err := e.Service.PutQueue(ctx, operator, duelQueue("duel"))
		if err != nil {
			t.Fatal(err)
		}
		if q.UpdatedBy != operator.Name || q.UpdatedAt.IsZero() {
			t.Errorf("stored queue %+v, want updated by %s at a time", q, operator.Name)
		}
		recs := auditOf(t, store, "match_queue.put") // newest first
		if len(recs) != 2 || recs[0].Result != tandem.AuditOK || recs[0].TargetType != "match_queue" || recs[0].TargetID != "duel" ||
			!strings.Contains(recs[0].After, `"room_type":"arena"`) || recs[0].Before != "" {
			t.Fatalf("audit of the put = %+v, want an OK record of queue duel with its config", recs[0])
		}

		// A second put records what it replaced.
		changed := duelQueue("duel")
		changed.Disabled = true
		if _, err := e.Service.PutQueue(ctx, operator, changed); err != nil {
			t.Fatal(err)
		}
		recs = auditOf(t, store, "match_queue.put")
		if last := recs[0]; !strings.Contains(last.Before, `"room_type":"arena"`) || !strings.Contains(last.After, `"disabled":true`) {
			t.Errorf("audit of the replacing put: before %s after %s", last.Before, last.After)
		}

		if err := e.Service.DeleteQueue(ctx, support, "duel"); tandem.ErrorCodeOf(err) != tandem.EPermission {
			t.Errorf("DeleteQueue as support: %v, want a permission error", err)
		}
		if err := e.Service.DeleteQueue(ctx, operator, "duel"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, e.Service.DeleteQueue(ctx, operator, "duel"), tandem.ENotFound)
		_, err = e.Service.Queue(ctx, operator, "duel")
		wantCode(t, err, tandem.ENotFound)
		if recs := auditOf(t, store, "match_queue.delete"); len(recs) != 3 || recs[1].Result != tandem.AuditOK ||
			!strings.Contains(recs[1].Before, `"disabled":true`) {
			t.Errorf("audit of the deletes = %+v, want failed, OK with the config, denied", recs)
		}
	})
}

func TestPutQueueRefusesAnInvalidQueueFieldByField(t *testing.T) {
	e := servicetest.New(t, nil)
	bad := tandem.MatchQueue{Name: "has space", Teams: 2}
	_, err := e.Service.PutQueue(t.Context(), service.CLIActor("ops"), bad)
	wantCode(t, err, tandem.EValidation)
	var te *tandem.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a *tandem.Error", err)
	}
	fields := map[string]bool{}
	for _, f := range te.Fields {
		fields[f.Field] = true
	}
	for _, want := range []string{"name", "room_type", "team_size"} {
		if !fields[want] {
			t.Errorf("fields %+v lack %s", te.Fields, want)
		}
	}
	if recs := auditOf(t, e.DB, "match_queue.put"); len(recs) != 1 || recs[0].Result != tandem.AuditFailed {
		t.Errorf("audit of an invalid put = %+v, want one failed", recs)
	}
	if qs, err := e.Service.Queues(t.Context(), service.CLIActor("ops")); err != nil || len(qs) != 0 {
		t.Errorf("Queues after an invalid put = %v, %v; want none", qs, err)
	}
}

func TestQueueMirrorMakesTheBucketHoldTheTable(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		e := servicetest.NewOn(t, store, func(c *service.Config) {
			c.Cluster, c.Matchmaking = bus, bus
			fastJobs(c)
		})
		cli := service.CLIActor("ops")
		// In the bucket but not in the table: left by a deleted queue.
		if err := bus.PutQueue(ctx, duelQueue("stale")); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"duel", "ranked"} {
			if _, err := e.Service.PutQueue(ctx, cli, duelQueue(name)); err != nil {
				t.Fatal(err)
			}
		}
		bucketNames := func() string {
			qs, err := bus.Queues(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, q := range qs {
				names = append(names, q.Name)
			}
			return strings.Join(names, ",")
		}
		runJobs(t, e.Service)
		waitFor(t, "the bucket to hold duel and ranked only", func() bool { return bucketNames() == "duel,ranked" })

		// Woken by a change: BanMirrorInterval is an hour here.
		changed := duelQueue("duel")
		changed.Disabled = true
		if _, err := e.Service.PutQueue(ctx, cli, changed); err != nil {
			t.Fatal(err)
		}
		if err := e.Service.DeleteQueue(ctx, cli, "ranked"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the change and the delete mirrored", func() bool {
			qs, err := bus.Queues(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return len(qs) == 1 && qs[0].Name == "duel" && qs[0].Disabled
		})
	})
}

func matchEvent(id, queue, match, players string, wait int64, at time.Time) tandem.Event {
	return tandem.Event{ID: id, Node: "n1", Kind: tandem.EventMatch, At: at, RoomID: "room-" + match,
		Attrs: map[string]string{"queue": queue, "match": match, "players": players,
			"wait_ms": strconv.FormatInt(wait, 10), "backfill": "false"}}
}

func TestMatchEventsAreStoredOnceAndMakeTheQueueFigures(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		e := servicetest.NewOn(t, store, func(c *service.Config) {
			c.Cluster, c.Matchmaking = bus, bus
			fastJobs(c)
		})
		cli := service.CLIActor("ops")
		if _, err := e.Service.PutQueue(ctx, cli, duelQueue("duel")); err != nil {
			t.Fatal(err)
		}
		now := e.Clock.Now()
		// Waits of 100 to 1000 ms in the last hour, and an older match
		// that only the recent list shows.
		var events []tandem.Event
		for i := 1; i <= 10; i++ {
			events = append(events, matchEvent("ev"+strconv.Itoa(i), "duel", "m"+strconv.Itoa(i), "a"+strconv.Itoa(i)+"|b"+strconv.Itoa(i),
				int64(i*100), now.Add(-time.Duration(i)*time.Minute)))
		}
		old := matchEvent("ev-old", "duel", "m-old", "x,y|z,w", 99999, now.Add(-2*time.Hour))
		old.Attrs["backfill"] = "true"
		events = append(events, old)
		for range 2 { // delivered twice
			if err := e.Service.StoreEvents(ctx, events); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{"p1", "p2", "p3"} {
			if _, err := bus.CreateTicket(ctx, tandem.MatchTicket{ID: "t-" + p, Queue: "duel", PlayerID: p, State: tandem.TicketSearching,
				CreatedAt: now, Node: "n1"}); err != nil {
				t.Fatal(err)
			}
		}

		v, err := e.Service.Queue(ctx, cli, "duel")
		if err != nil {
			t.Fatal(err)
		}
		if v.MatchesLastHour != 10 || v.WaitP50MS != 500 || v.WaitP95MS != 1000 {
			t.Errorf("figures: %d matches, p50 %d, p95 %d; want 10, 500, 1000", v.MatchesLastHour, v.WaitP50MS, v.WaitP95MS)
		}
		if len(v.Recent) != 11 {
			t.Fatalf("recent matches: %d, want 11 (each stored once)", len(v.Recent))
		}
		first, last := v.Recent[0], v.Recent[len(v.Recent)-1]
		want := tandem.MatchRecord{ID: "m-old", Queue: "duel", RoomID: "room-m-old", Node: "n1",
			Teams: [][]string{{"x", "y"}, {"z", "w"}}, WaitMS: 99999, Backfill: true, At: last.At}
		if d := cmp.Diff(want, last); d != "" || first.ID != "m1" {
			t.Errorf("recent matches from m1 to m-old; first %s, last (-want +got):\n%s", first.ID, d)
		}
		if v.DepthUnavailable != "" || v.Searching() != 3 {
			t.Errorf("depth %v (%q), want 3 searching", v.Depth, v.DepthUnavailable)
		}
	})
}

func TestQueueDepthIsUnavailableWithoutABus(t *testing.T) {
	e := servicetest.New(t, nil)
	cli := service.CLIActor("ops")
	if _, err := e.Service.PutQueue(t.Context(), cli, duelQueue("duel")); err != nil {
		t.Fatal(err)
	}
	qs, err := e.Service.Queues(t.Context(), cli)
	if err != nil || len(qs) != 1 {
		t.Fatalf("Queues = %v, %v; want duel", qs, err)
	}
	if qs[0].DepthUnavailable == "" || qs[0].Depth != nil {
		t.Errorf("depth without a bus: %v (%q), want unavailable", qs[0].Depth, qs[0].DepthUnavailable)
	}
}

func TestMatchEventPlayersSplitByTeamSizesWithoutBars(t *testing.T) {
	e := servicetest.New(t, nil)
	ev := tandem.Event{ID: "ev1", Node: "n1", Kind: tandem.EventMatch, At: e.Clock.Now(), RoomID: "r1",
		Attrs: map[string]string{"queue": "duel", "match": "m1", "players": "a,b,c", "teams": "2,1", "wait_ms": "5"}}
	if err := e.Service.StoreEvents(context.Background(), []tandem.Event{ev}); err != nil {
		t.Fatal(err)
	}
	var got []tandem.MatchRecord
	err := e.DB.View(t.Context(), func(tx tandem.Tx) (err error) {
		got, err = tx.RecentMatches(t.Context(), "duel", 10)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || cmp.Diff([][]string{{"a", "b"}, {"c"}}, got[0].Teams) != "" {
		t.Errorf("stored %+v, want teams [[a b] [c]]", got)
	}
}

func TestCreateQueueRefusesATakenName(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		e := servicetest.NewOn(t, store, nil)
		cli := service.CLIActor("ops")
		if _, err := e.Service.CreateQueue(ctx, cli, duelQueue("duel")); err != nil {
			t.Fatal(err)
		}
		other := tandem.MatchQueue{Name: "duel", RoomType: "relay", MinPlayers: 2, MaxPlayers: 8}
		_, err := e.Service.CreateQueue(ctx, cli, other)
		wantCode(t, err, tandem.EConflict)
		v, err := e.Service.Queue(ctx, cli, "duel")
		if err != nil || v.Queue.RoomType != "arena" || v.Queue.Teams != 2 {
			t.Errorf("queue after a refused create: %+v, %v; want the first one", v, err)
		}
		if recs := auditOf(t, store, "match_queue.put"); len(recs) != 2 || recs[0].Result != tandem.AuditFailed {
			t.Errorf("audit of the refused create = %+v, want a failed record", recs)
		}
	})
}

func TestPutQueueWithAnUpdatedAtOtherThanTheStoredOneIsAConflict(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		e := servicetest.NewOn(t, store, nil)
		cli := service.CLIActor("ops")
		first, err := e.Service.PutQueue(ctx, cli, duelQueue("duel"))
		if err != nil {
			t.Fatal(err)
		}
		// Two editors load the queue; the first saves.
		loaded, err := e.Service.Queue(ctx, cli, "duel")
		if err != nil {
			t.Fatal(err)
		}
		if !loaded.Queue.UpdatedAt.Equal(first.UpdatedAt) {
			t.Fatalf("stored updated_at %v, PutQueue answered %v", loaded.Queue.UpdatedAt, first.UpdatedAt)
		}
		e.Clock.Advance(time.Second)
		mine := loaded.Queue.MatchQueue
		mine.Backfill = true
		saved, err := e.Service.PutQueue(ctx, cli, mine)
		if err != nil {
			t.Fatalf("a save carrying the stored updated_at: %v", err)
		}

		theirs := loaded.Queue.MatchQueue
		theirs.Disabled = true
		_, err = e.Service.PutQueue(ctx, cli, theirs)
		wantCode(t, err, tandem.EConflict)
		if !strings.Contains(tandem.ErrorMessageOf(err), "the queue changed since it was loaded") {
			t.Errorf("conflict message %q", tandem.ErrorMessageOf(err))
		}
		if v, _ := e.Service.Queue(ctx, cli, "duel"); !v.Queue.Backfill || v.Queue.Disabled {
			t.Errorf("queue after the stale save: %+v, want the first editor's", v.Queue)
		}

		// Without updated_at the put replaces whatever is stored.
		theirs.UpdatedAt = time.Time{}
		if _, err := e.Service.PutQueue(ctx, cli, theirs); err != nil {
			t.Fatalf("a put without updated_at: %v", err)
		}

		// A queue deleted since it was loaded is a conflict too, not a
		// create behind the editor's back.
		if err := e.Service.DeleteQueue(ctx, cli, "duel"); err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.PutQueue(ctx, cli, saved.MatchQueue)
		wantCode(t, err, tandem.EConflict)
		_, err = e.Service.Queue(ctx, cli, "duel")
		wantCode(t, err, tandem.ENotFound)
	})
}

// racingTickets is the bus, with a matcher's write slipped in before the
// first update of each ticket: the update that follows loses its
// compare-and-swap.
type racingTickets struct {
	*natsbus.Bus
	mu    sync.Mutex
	raced map[string]bool
}

func (r *racingTickets) UpdateTicket(ctx context.Context, t tandem.MatchTicket) (tandem.MatchTicket, error) {
	r.mu.Lock()
	first := !r.raced[t.PlayerID]
	r.raced[t.PlayerID] = true
	r.mu.Unlock()
	if first {
		cur, err := r.Bus.Ticket(ctx, t.Queue, t.PlayerID)
		if err != nil {
			return tandem.MatchTicket{}, err
		}
		cur.State, cur.MatchID = tandem.TicketClaimed, "m-raced"
		if _, err := r.Bus.UpdateTicket(ctx, cur); err != nil {
			return tandem.MatchTicket{}, err
		}
	}
	return r.Bus.UpdateTicket(ctx, t)
}

func ticketStates(t *testing.T, bus tandem.TicketBucket) map[string]string {
	t.Helper()
	ts, err := bus.Tickets(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tk := range ts {
		out[tk.Queue+"/"+tk.PlayerID] = string(tk.State) + ":" + tk.Reason
	}
	return out
}

func TestDeletingAQueueCancelsItsLiveTickets(t *testing.T) {
	forEachStore(t, func(t *testing.T, store tandem.Store) {
		ctx := t.Context()
		bus := connectBus(t, startNATS(t), "web")
		mm := &racingTickets{Bus: bus, raced: map[string]bool{}}
		e := servicetest.NewOn(t, store, func(c *service.Config) {
			c.Cluster, c.Matchmaking = bus, mm
			fastJobs(c)
		})
		cli := service.CLIActor("ops")
		for _, name := range []string{"duel", "ranked"} {
			if _, err := e.Service.PutQueue(ctx, cli, duelQueue(name)); err != nil {
				t.Fatal(err)
			}
		}
		runJobs(t, e.Service)
		waitFor(t, "both queues mirrored", func() bool {
			qs, err := bus.Queues(ctx)
			return err == nil && len(qs) == 2
		})
		now := e.Clock.Now()
		create := func(queue, player string, state tandem.TicketState) {
			t.Helper()
			if _, err := bus.CreateTicket(ctx, tandem.MatchTicket{ID: "t-" + player, Queue: queue, PlayerID: player, State: state,
				CreatedAt: now, Node: "n1"}); err != nil {
				t.Fatal(err)
			}
		}
		create("ranked", "p1", tandem.TicketSearching)
		create("ranked", "p2", tandem.TicketMatched)
		create("ranked", "p3", tandem.TicketDone)
		create("duel", "p4", tandem.TicketSearching)

		e.Clock.Advance(time.Minute)
		if err := e.Service.DeleteQueue(ctx, cli, "ranked"); err != nil {
			t.Fatal(err)
		}
		// Each ticket's first cancel loses to a matcher's write
		// (racingTickets): the mirror reads it again and retries.
		want := map[string]string{
			"ranked/p1": "cancelled:queue_deleted",
			"ranked/p2": "cancelled:queue_deleted",
			"ranked/p3": "done:",
			"duel/p4":   "searching:",
		}
		waitFor(t, "the deleted queue's live tickets cancelled", func() bool { return cmp.Diff(want, ticketStates(t, bus)) == "" })
		p1, err := bus.Ticket(ctx, "ranked", "p1")
		if err != nil {
			t.Fatal(err)
		}
		if p1.UpdatedAt.Before(now.Add(time.Minute)) {
			t.Errorf("cancelled ticket's updated_at %v, want the time of the cancel", p1.UpdatedAt)
		}

		// A ticket a node took for the queue after the delete, or of a
		// queue the table never had, is cancelled by a later pass (woken
		// here by a change to another queue).
		create("ranked", "p5", tandem.TicketSearching)
		create("ghost", "p6", tandem.TicketSearching)
		if _, err := e.Service.PutQueue(ctx, cli, duelQueue("casual")); err != nil {
			t.Fatal(err)
		}
		want["ranked/p5"], want["ghost/p6"] = "cancelled:queue_deleted", "cancelled:queue_deleted"
		waitFor(t, "the later tickets cancelled", func() bool { return cmp.Diff(want, ticketStates(t, bus)) == "" })
	})
}

// depthReads is the bus, recording every listing of the tickets and
// whether its context was bounded.
type depthReads struct {
	*natsbus.Bus
	mu    sync.Mutex
	reads []string
}

func (d *depthReads) Tickets(ctx context.Context, queue string) ([]tandem.MatchTicket, error) {
	read := strconv.Quote(queue) + " unbounded"
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= 2*time.Second {
		read = strconv.Quote(queue) + " bounded"
	}
	d.mu.Lock()
	d.reads = append(d.reads, read)
	d.mu.Unlock()
	return d.Bus.Tickets(ctx, queue)
}

func TestQueueDepthsAreReadOnceAPollWithinTwoSeconds(t *testing.T) {
	bus := connectBus(t, startNATS(t), "web")
	reads := &depthReads{Bus: bus}
	e := servicetest.New(t, func(c *service.Config) { c.Cluster, c.Matchmaking = bus, reads })
	cli := service.CLIActor("ops")
	for _, name := range []string{"a", "b", "c"} {
		if _, err := e.Service.PutQueue(t.Context(), cli, duelQueue(name)); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.CreateTicket(t.Context(), tandem.MatchTicket{ID: "t-" + name, Queue: name, PlayerID: "p", State: tandem.TicketSearching,
			CreatedAt: e.Clock.Now(), Node: "n1"}); err != nil {
			t.Fatal(err)
		}
	}
	// No deadline of the request's own: the read must bring one.
	qs, err := e.Service.Queues(context.Background(), cli)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Searching() != 1 {
			t.Errorf("queue %s: depth %v, want 1 searching", q.Queue.Name, q.Depth)
		}
	}
	if _, err := e.Service.Queue(context.Background(), cli, "b"); err != nil {
		t.Fatal(err)
	}
	reads.mu.Lock()
	defer reads.mu.Unlock()
	if d := cmp.Diff([]string{`"" bounded`, `"b" bounded`}, reads.reads); d != "" {
		t.Errorf("ticket reads of a list and a queue page (-want +got):\n%s", d)
	}
}

func TestMatchRecordNodeIsTheRoomsNode(t *testing.T) {
	e := servicetest.New(t, nil)
	now := e.Clock.Now()
	remote := matchEvent("ev1", "duel", "m1", "a|b", 10, now)
	remote.Node = "matcher-node"
	remote.Attrs["node"] = "room-node"
	local := matchEvent("ev2", "duel", "m2", "c|d", 10, now.Add(-time.Second)) // no node attr: the publisher's
	if err := e.Service.StoreEvents(t.Context(), []tandem.Event{remote, local}); err != nil {
		t.Fatal(err)
	}
	var got []tandem.MatchRecord
	err := e.DB.View(t.Context(), func(tx tandem.Tx) (err error) {
		got, err = tx.RecentMatches(t.Context(), "duel", 10)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for _, m := range got {
		nodes[m.ID] = m.Node
	}
	if d := cmp.Diff(map[string]string{"m1": "room-node", "m2": "n1"}, nodes); d != "" {
		t.Errorf("match nodes (-want +got):\n%s", d)
	}
}
