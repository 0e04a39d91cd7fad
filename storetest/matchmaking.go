package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	tandem "github.com/tandemhq/tandem"
)

func matchmakingTests() []struct {
	name string
	test func(t *testing.T, s tandem.Store)
} {
	return []struct {
		name string
		test func(t *testing.T, s tandem.Store)
	}{
		{"MatchQueuesRoundTripByNameReplaceAndDelete", testMatchQueues},
		{"InsertMatchesStoresEachIDOnceAndListsNewestFirst", testInsertMatchesOnce},
		{"MatchWaitsAreThoseOfTheQueueSince", testMatchWaits},
	}
}

func testMatchQueues(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	duel := &tandem.MatchQueueRecord{MatchQueue: tandem.MatchQueue{Name: "duel", RoomType: "arena", Teams: 2, TeamSize: 1,
		Rules:            []tandem.MatchRule{{Property: "skill", Kind: tandem.RuleRange, Base: 50, Step: 25, EveryMS: 5000, Max: 200}},
		ClientProperties: []string{"region"}, TimeoutMS: 60000, UpdatedAt: at(0)}, UpdatedBy: "alice"}
	ffa := &tandem.MatchQueueRecord{MatchQueue: tandem.MatchQueue{Name: "<b>ffa</b>", RoomType: `<script>x</script>`,
		MinPlayers: 2, MaxPlayers: 8, FillWaitMS: 10000, UpdatedAt: at(time.Second)}, UpdatedBy: "bob"}
	update(t, s, func(tx tandem.Tx) error {
		for _, q := range []*tandem.MatchQueueRecord{duel, ffa} {
			if err := tx.PutMatchQueue(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	normQ := func(q *tandem.MatchQueueRecord) *tandem.MatchQueueRecord {
		c := *q
		c.UpdatedAt = norm(c.UpdatedAt)
		return &c
	}
	var list []*tandem.MatchQueueRecord
	view(t, s, func(tx tandem.Tx) (err error) {
		list, err = tx.MatchQueues(ctx)
		return err
	})
	if d := cmp.Diff([]*tandem.MatchQueueRecord{normQ(ffa), normQ(duel)}, list, exactTime()); d != "" {
		t.Errorf("MatchQueues, by name (-want +got):\n%s", d)
	}

	// A put replaces the whole configuration.
	duel2 := &tandem.MatchQueueRecord{MatchQueue: tandem.MatchQueue{Name: "duel", RoomType: "relay", MinPlayers: 2, MaxPlayers: 2,
		Disabled: true, UpdatedAt: at(time.Minute)}, UpdatedBy: "carol"}
	update(t, s, func(tx tandem.Tx) error { return tx.PutMatchQueue(ctx, duel2) })
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.MatchQueue(ctx, "duel")
		if err != nil {
			return err
		}
		if d := cmp.Diff(normQ(duel2), got, exactTime()); d != "" {
			t.Errorf("MatchQueue after a second put (-want +got):\n%s", d)
		}
		return nil
	})

	update(t, s, func(tx tandem.Tx) error { return tx.DeleteMatchQueue(ctx, "duel") })
	wantCode(t, s, tandem.ENotFound, "MatchQueue of a deleted queue", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.MatchQueue(ctx, "duel")
		return err
	})
	wantCode(t, s, tandem.ENotFound, "DeleteMatchQueue of a deleted queue", func(ctx context.Context, tx tandem.Tx) error {
		return tx.DeleteMatchQueue(ctx, "duel")
	})
	view(t, s, func(tx tandem.Tx) (err error) {
		list, err = tx.MatchQueues(ctx)
		return err
	})
	if len(list) != 1 || list[0].Name != ffa.Name {
		t.Errorf("MatchQueues after the delete = %v, want only %q", list, ffa.Name)
	}
}

func testInsertMatchesOnce(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	m1 := tandem.MatchRecord{ID: "m1", Queue: "duel", RoomID: "r1", Node: "n1", Teams: [][]string{{pid(1)}, {pid(2)}},
		WaitMS: 1200, At: at(0)}
	m2 := tandem.MatchRecord{ID: "m2", Queue: "duel", RoomID: "r2", Node: "n2", Teams: [][]string{{pid(3), "<i>p</i>"}, {pid(4)}},
		WaitMS: 3400, Backfill: true, At: at(time.Second)}
	m3 := tandem.MatchRecord{ID: "m3", Queue: "ffa", RoomID: "r3", Node: "n1", Teams: [][]string{{pid(5), pid(6), pid(7)}}, At: at(2 * time.Second)}
	var n int
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.InsertMatches(ctx, []tandem.MatchRecord{m1, m2})
		return err
	})
	if n != 2 {
		t.Errorf("first InsertMatches stored %d, want 2", n)
	}
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.InsertMatches(ctx, []tandem.MatchRecord{m2, m3, m1})
		return err
	})
	if n != 1 {
		t.Errorf("second InsertMatches stored %d, want 1", n)
	}
	recent := func(queue string, limit int) []tandem.MatchRecord {
		var out []tandem.MatchRecord
		view(t, s, func(tx tandem.Tx) (err error) {
			out, err = tx.RecentMatches(ctx, queue, limit)
			return err
		})
		return out
	}
	w1, w2 := m1, m2
	w1.At, w2.At = norm(w1.At), norm(w2.At)
	if d := cmp.Diff([]tandem.MatchRecord{w2, w1}, recent("duel", 10), exactTime()); d != "" {
		t.Errorf("RecentMatches(duel) (-want +got):\n%s", d)
	}
	if got := recent("duel", 1); len(got) != 1 || got[0].ID != "m2" {
		t.Errorf("RecentMatches(duel, 1) = %v, want only m2", got)
	}
	if got := recent("none", 10); len(got) != 0 {
		t.Errorf("RecentMatches of an unknown queue = %v, want none", got)
	}
}

func testMatchWaits(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	var ms []tandem.MatchRecord
	for i, w := range []int64{100, 200, 300, 400} {
		ms = append(ms, tandem.MatchRecord{ID: "w" + pid(i), Queue: "duel", Teams: [][]string{{pid(i)}}, WaitMS: w,
			At: at(time.Duration(i) * time.Minute)})
	}
	ms = append(ms, tandem.MatchRecord{ID: "other", Queue: "ffa", WaitMS: 999, At: at(time.Hour)})
	update(t, s, func(tx tandem.Tx) error {
		_, err := tx.InsertMatches(ctx, ms)
		return err
	})
	var got []int64
	view(t, s, func(tx tandem.Tx) (err error) {
		got, err = tx.MatchWaits(ctx, "duel", at(2*time.Minute))
		return err
	})
	slices.Sort(got)
	// at(2m) is included: since is "at or after".
	if d := cmp.Diff([]int64{300, 400}, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("MatchWaits(duel, since 2m) (-want +got):\n%s", d)
	}
	view(t, s, func(tx tandem.Tx) (err error) {
		got, err = tx.MatchWaits(ctx, "duel", at(time.Hour))
		return err
	})
	if len(got) != 0 {
		t.Errorf("MatchWaits(duel, since 1h) = %v, want none", got)
	}
}
