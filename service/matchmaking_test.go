package service_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/servicetest"
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
