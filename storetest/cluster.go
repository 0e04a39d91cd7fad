package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	tandem "github.com/tandemhq/tandem"
)

func clusterTests() []struct {
	name string
	test func(t *testing.T, s tandem.Store)
} {
	return []struct {
		name string
		test func(t *testing.T, s tandem.Store)
	}{
		{"CommandsRoundTripPendingOldestFirstAndListNewestFirst", testCommandsRoundTrip},
		{"CommandErrors", testCommandErrors},
		{"InsertEventsStoresEachIDOnceAndListsNewestFirst", testInsertEventsOnce},
		{"RealtimeSessionsOpenCloseAndCloseNodeSessions", testRealtimeSessions},
		{"ClusterNodesKeepFirstSeenAndClearDownAtWhenSeenAgain", testClusterNodes},
		{"AccountBansFromListsBansInForceAndToCome", testAccountBansFrom},
		{"TryLeaseIsExclusiveUntilReleased", testTryLeaseIsExclusive},
		{"RevocationsKeepTheFurthestPerPlayerAndExpire", testRevocations},
		{"EventsWithNULCharactersAreStored", testEventsWithNUL},
		{"DeleteOldClusterHistoryKeepsPendingAndOpenAndRecent", testDeleteOldClusterHistory},
	}
}

func newCommand(id, node string, created time.Time) *tandem.CommandRecord {
	return &tandem.CommandRecord{
		Command:   tandem.Command{ID: id, Node: node, Kind: tandem.CommandKick, PlayerID: pid(1), CreatedAt: created},
		State:     tandem.CommandPending,
		CreatedBy: "alice",
	}
}

func commandIDs(cs []*tandem.CommandRecord) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

func testCommandsRoundTrip(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	c1, c2, c3 := newCommand("c1", "n1", at(0)), newCommand("c2", "n2", at(time.Second)), newCommand("c3", "n1", at(2*time.Second))
	c2.Kind, c2.PlayerID, c2.RoomID, c2.Text = tandem.CommandNotice, "", "room-1", "maintenance at noon"
	update(t, s, func(tx tandem.Tx) error {
		for _, c := range []*tandem.CommandRecord{c3, c1, c2} {
			if err := tx.CreateCommand(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	var got *tandem.CommandRecord
	view(t, s, func(tx tandem.Tx) (err error) {
		got, err = tx.Command(ctx, "c2")
		return err
	})
	want := *c2
	want.CreatedAt = norm(want.CreatedAt)
	if d := cmp.Diff(&want, got, exactTime()); d != "" {
		t.Errorf("Command (-want +got):\n%s", d)
	}

	c1.State, c1.Attempts, c1.ResultOK, c1.ResultError, c1.DeliveredAt = tandem.CommandDelivered, 2, false, "no such player", at(time.Minute)
	c1.LastError = "timeout"
	update(t, s, func(tx tandem.Tx) error { return tx.UpdateCommand(ctx, c1) })
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.Command(ctx, "c1")
		if err != nil {
			return err
		}
		want := *c1
		want.CreatedAt, want.DeliveredAt = norm(want.CreatedAt), norm(want.DeliveredAt)
		if d := cmp.Diff(&want, got, exactTime()); d != "" {
			t.Errorf("updated Command (-want +got):\n%s", d)
		}
		pending, err := tx.PendingCommands(ctx, 10, nil)
		if err != nil {
			return err
		}
		if d := cmp.Diff([]string{"c2", "c3"}, commandIDs(pending)); d != "" {
			t.Errorf("PendingCommands (-want +got):\n%s", d)
		}
		pending, err = tx.PendingCommands(ctx, 10, []string{"n1", "n9"})
		if err != nil {
			return err
		}
		if d := cmp.Diff([]string{"c2"}, commandIDs(pending)); d != "" {
			t.Errorf("PendingCommands skipping n1 (-want +got):\n%s", d)
		}
		all, err := tx.Commands(ctx, 2)
		if err != nil {
			return err
		}
		if d := cmp.Diff([]string{"c3", "c2"}, commandIDs(all)); d != "" {
			t.Errorf("Commands(2) (-want +got):\n%s", d)
		}
		return nil
	})

	// A relay that lost its lease must not overwrite a delivered command
	// with its own failure.
	stale := *c1
	stale.State, stale.LastError, stale.DeliveredAt = tandem.CommandFailed, "not delivered in time", time.Time{}
	wantCode(t, s, tandem.EConflict, "UpdateCommand of a delivered command", func(ctx context.Context, tx tandem.Tx) error {
		return tx.UpdateCommand(ctx, &stale)
	})
	view(t, s, func(tx tandem.Tx) error {
		got, err := tx.Command(ctx, "c1")
		if err != nil {
			return err
		}
		if got.State != tandem.CommandDelivered || got.LastError != "timeout" {
			t.Errorf("c1 after a stale update: %+v, want delivered as marked first", got)
		}
		return nil
	})
}

func testCommandErrors(t *testing.T, s tandem.Store) {
	update(t, s, func(tx tandem.Tx) error { return tx.CreateCommand(t.Context(), newCommand("c1", "n1", at(0))) })
	wantCode(t, s, tandem.EConflict, "CreateCommand with a taken id", func(ctx context.Context, tx tandem.Tx) error {
		return tx.CreateCommand(ctx, newCommand("c1", "n2", at(0)))
	})
	wantCode(t, s, tandem.ENotFound, "Command of an unknown id", func(ctx context.Context, tx tandem.Tx) error {
		_, err := tx.Command(ctx, "nope")
		return err
	})
	wantCode(t, s, tandem.ENotFound, "UpdateCommand of an unknown id", func(ctx context.Context, tx tandem.Tx) error {
		return tx.UpdateCommand(ctx, newCommand("nope", "n1", at(0)))
	})
}

func testInsertEventsOnce(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	e1 := tandem.Event{ID: "n1.b.1", Node: "n1", Kind: tandem.EventRoomCreated, At: at(0), RoomID: "r1", RoomType: "relay",
		Attrs: map[string]string{"mode": "duel"}}
	e2 := tandem.Event{ID: "n1.b.2", Node: "n1", Kind: tandem.EventSessionClosed, At: at(time.Second), SessionID: "s1",
		PlayerID: pid(1), RoomID: "r1", Reason: "kicked", CloseCode: 4501, Duration: 90 * time.Second, RTTMillis: []float64{1.5, 9, 12}}
	e3 := tandem.Event{ID: "n1.b.3", Node: "n1", Kind: tandem.EventNodeLog, At: at(2 * time.Second), Level: "WARN", Reason: "slow tick"}
	var n int
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.InsertEvents(ctx, []tandem.Event{e1, e2})
		return err
	})
	if n != 2 {
		t.Errorf("first InsertEvents stored %d, want 2", n)
	}
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.InsertEvents(ctx, []tandem.Event{e2, e3, e1})
		return err
	})
	if n != 1 {
		t.Errorf("second InsertEvents stored %d, want 1", n)
	}
	view(t, s, func(tx tandem.Tx) error {
		room, err := tx.RoomEvents(ctx, "r1", 10)
		if err != nil {
			return err
		}
		w1, w2 := e1, e2
		w1.At, w2.At = norm(w1.At), norm(w2.At)
		if d := cmp.Diff([]tandem.Event{w2, w1}, room, exactTime()); d != "" {
			t.Errorf("RoomEvents (-want +got):\n%s", d)
		}
		node, err := tx.NodeEvents(ctx, "n1", 1)
		if err != nil {
			return err
		}
		if len(node) != 1 || node[0].ID != e3.ID {
			t.Errorf("NodeEvents(n1, 1) = %v, want only %s", node, e3.ID)
		}
		none, err := tx.RoomEvents(ctx, "", 10)
		if err != nil {
			return err
		}
		if len(none) != 0 {
			t.Errorf("RoomEvents of no room = %v, want none", none)
		}
		return nil
	})
}

func sessionsOf(t *testing.T, s tandem.Store, playerID string) []*tandem.RealtimeSession {
	t.Helper()
	var out []*tandem.RealtimeSession
	view(t, s, func(tx tandem.Tx) (err error) {
		out, err = tx.RealtimeSessions(t.Context(), playerID, 10)
		return err
	})
	return out
}

func testRealtimeSessions(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	open1 := &tandem.RealtimeSession{ID: "s1", Node: "n1", PlayerID: pid(1), OpenedAt: at(0)}
	open2 := &tandem.RealtimeSession{ID: "s2", Node: "n1", PlayerID: pid(1), OpenedAt: at(time.Minute)}
	update(t, s, func(tx tandem.Tx) error {
		for _, x := range []*tandem.RealtimeSession{open1, open2, open1} {
			if err := tx.OpenRealtimeSession(ctx, x); err != nil {
				return err
			}
		}
		return tx.CloseRealtimeSession(ctx, &tandem.RealtimeSession{ID: "s1", Node: "n1", PlayerID: pid(1),
			OpenedAt: at(0), ClosedAt: at(30 * time.Second), CloseCode: 4501, Reason: "kicked",
			Duration: 30 * time.Second, RTTMillis: []float64{1, 2, 3}})
	})
	// s4 opened after the node's last heartbeat: the node restarted with
	// the same id, and the session belongs to its new life.
	update(t, s, func(tx tandem.Tx) error {
		return tx.OpenRealtimeSession(ctx, &tandem.RealtimeSession{ID: "s4", Node: "n1", PlayerID: pid(3), OpenedAt: at(3 * time.Minute)})
	})
	var closed []*tandem.RealtimeSession
	update(t, s, func(tx tandem.Tx) (err error) {
		closed, err = tx.CloseNodeSessions(ctx, "n1", at(2*time.Minute), "node_down")
		return err
	})
	if d := cmp.Diff([]*tandem.RealtimeSession{{ID: "s2", Node: "n1", PlayerID: pid(1)}}, closed); d != "" {
		t.Errorf("CloseNodeSessions closed (-want +got):\n%s", d)
	}
	if got := sessionsOf(t, s, pid(3)); len(got) != 1 || !got[0].ClosedAt.IsZero() {
		t.Errorf("sessions of player 3 = %+v, want s4 still open", got)
	}
	want := []*tandem.RealtimeSession{
		{ID: "s2", Node: "n1", PlayerID: pid(1), OpenedAt: norm(at(time.Minute)), ClosedAt: norm(at(2 * time.Minute)),
			Reason: "node_down", Duration: time.Minute},
		{ID: "s1", Node: "n1", PlayerID: pid(1), OpenedAt: norm(at(0)), ClosedAt: norm(at(30 * time.Second)),
			CloseCode: 4501, Reason: "kicked", Duration: 30 * time.Second, RTTMillis: []float64{1, 2, 3}},
	}
	if d := cmp.Diff(want, sessionsOf(t, s, pid(1)), exactTime()); d != "" {
		t.Errorf("RealtimeSessions (-want +got):\n%s", d)
	}

	// The node's own account replaces a node-down closure; a second close
	// of a session closed by its node changes nothing.
	update(t, s, func(tx tandem.Tx) error {
		if err := tx.CloseRealtimeSession(ctx, &tandem.RealtimeSession{ID: "s2", Node: "n1", PlayerID: pid(1),
			OpenedAt: at(time.Minute), ClosedAt: at(90 * time.Second), CloseCode: 4000, Reason: "network", Duration: 30 * time.Second}); err != nil {
			return err
		}
		return tx.CloseRealtimeSession(ctx, &tandem.RealtimeSession{ID: "s1", Node: "n1", PlayerID: pid(1),
			OpenedAt: at(0), ClosedAt: at(time.Hour), CloseCode: 1, Reason: "late duplicate"})
	})
	want[0].ClosedAt, want[0].CloseCode, want[0].Reason, want[0].Duration = norm(at(90*time.Second)), 4000, "network", 30*time.Second
	if d := cmp.Diff(want, sessionsOf(t, s, pid(1)), exactTime()); d != "" {
		t.Errorf("RealtimeSessions after late closes (-want +got):\n%s", d)
	}

	// A close whose opening was never seen is recorded all the same.
	update(t, s, func(tx tandem.Tx) error {
		return tx.CloseRealtimeSession(ctx, &tandem.RealtimeSession{ID: "s3", Node: "n2", PlayerID: pid(2),
			OpenedAt: at(0), ClosedAt: at(time.Second), Duration: time.Second})
	})
	if got := sessionsOf(t, s, pid(2)); len(got) != 1 || got[0].ClosedAt.IsZero() {
		t.Errorf("sessions of player 2 = %v, want s3 closed", got)
	}
}

func testClusterNodes(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	update(t, s, func(tx tandem.Tx) error {
		return tx.PutClusterNode(ctx, &tandem.ClusterNode{ID: "n1", URL: "ws://a/ws", Version: "1", FirstSeen: at(0), LastHeartbeat: at(0)})
	})
	update(t, s, func(tx tandem.Tx) error { return tx.MarkNodeDown(ctx, "n1", at(time.Minute)) })
	update(t, s, func(tx tandem.Tx) error {
		return tx.PutClusterNode(ctx, &tandem.ClusterNode{ID: "n0", URL: "ws://b/ws", FirstSeen: at(0), LastHeartbeat: at(0)})
	})
	var nodes []*tandem.ClusterNode
	view(t, s, func(tx tandem.Tx) (err error) {
		nodes, err = tx.ClusterNodes(ctx)
		return err
	})
	want := []*tandem.ClusterNode{
		{ID: "n0", URL: "ws://b/ws", FirstSeen: norm(at(0)), LastHeartbeat: norm(at(0))},
		{ID: "n1", URL: "ws://a/ws", Version: "1", FirstSeen: norm(at(0)), LastHeartbeat: norm(at(0)), DownAt: norm(at(time.Minute))},
	}
	if d := cmp.Diff(want, nodes, exactTime()); d != "" {
		t.Errorf("ClusterNodes (-want +got):\n%s", d)
	}
	update(t, s, func(tx tandem.Tx) error {
		return tx.PutClusterNode(ctx, &tandem.ClusterNode{ID: "n1", URL: "ws://c/ws", Version: "2", FirstSeen: at(time.Hour), LastHeartbeat: at(time.Hour)})
	})
	view(t, s, func(tx tandem.Tx) (err error) {
		nodes, err = tx.ClusterNodes(ctx)
		return err
	})
	want[1] = &tandem.ClusterNode{ID: "n1", URL: "ws://c/ws", Version: "2", FirstSeen: norm(at(0)), LastHeartbeat: norm(at(time.Hour))}
	if d := cmp.Diff(want, nodes, exactTime()); d != "" {
		t.Errorf("ClusterNodes after the node came back (-want +got):\n%s", d)
	}
	wantCode(t, s, tandem.ENotFound, "MarkNodeDown of an unknown node", func(ctx context.Context, tx tandem.Tx) error {
		return tx.MarkNodeDown(ctx, "nope", at(0))
	})
}

func testAccountBansFrom(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	createPlayers(t, s, newPlayer(1, "a", "", at(0)), newPlayer(2, "b", "", at(0)), newPlayer(3, "c", "", at(0)))
	now := at(time.Hour)
	bans := []*tandem.Ban{
		{PlayerID: pid(2), Scope: tandem.BanAccount, Reason: "in force", StartsAt: at(0), EndsAt: at(2 * time.Hour)},
		{PlayerID: pid(1), Scope: tandem.BanAccount, Reason: "permanent", StartsAt: at(0)},
		{PlayerID: pid(1), Scope: tandem.BanAccount, Reason: "to come", StartsAt: at(3 * time.Hour), EndsAt: at(4 * time.Hour)},
		{PlayerID: pid(3), Scope: tandem.BanAccount, Reason: "ended", StartsAt: at(0), EndsAt: at(time.Hour)},
		{PlayerID: pid(3), Scope: tandem.BanAccount, Reason: "lifted", StartsAt: at(0), LiftedAt: at(time.Minute)},
		{PlayerID: pid(3), Scope: tandem.BanDevice, DeviceHash: []byte{1}, Reason: "device", StartsAt: at(0)},
	}
	update(t, s, func(tx tandem.Tx) error {
		for _, b := range bans {
			if err := tx.CreateBan(ctx, b); err != nil {
				return err
			}
			if !b.LiftedAt.IsZero() {
				if err := tx.UpdateBan(ctx, b); err != nil {
					return err
				}
			}
		}
		return nil
	})
	var got []*tandem.Ban
	view(t, s, func(tx tandem.Tx) (err error) {
		got, err = tx.AccountBansFrom(ctx, now)
		return err
	})
	var reasons []string
	for _, b := range got {
		reasons = append(reasons, b.Reason)
	}
	if d := cmp.Diff([]string{"permanent", "to come", "in force"}, reasons); d != "" {
		t.Errorf("AccountBansFrom (-want +got):\n%s", d)
	}
}

func testTryLeaseIsExclusive(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	release, lost, ok, err := s.TryLease(ctx, "storetest-job")
	if err != nil || !ok {
		t.Fatalf("first TryLease: ok %v, err %v", ok, err)
	}
	if _, _, ok, err := s.TryLease(ctx, "storetest-job"); err != nil || ok {
		t.Fatalf("second TryLease while held: ok %v, err %v; want not granted", ok, err)
	}
	other, _, ok, err := s.TryLease(ctx, "storetest-other-job")
	if err != nil || !ok {
		t.Fatalf("TryLease of another name: ok %v, err %v", ok, err)
	}
	other()
	select {
	case <-lost:
		t.Fatal("lease lost while its holder lives")
	default:
	}
	release()
	release() // a second release is harmless
	again, _, ok, err := s.TryLease(ctx, "storetest-job")
	if err != nil || !ok {
		t.Fatalf("TryLease after release: ok %v, err %v", ok, err)
	}
	again()
}

func testRevocations(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	put := func(rs ...tandem.Revocation) {
		t.Helper()
		update(t, s, func(tx tandem.Tx) error {
			for _, r := range rs {
				if err := tx.PutRevocation(ctx, &r); err != nil {
					return err
				}
			}
			return nil
		})
	}
	from := func(now time.Time) []tandem.Revocation {
		t.Helper()
		var got []tandem.Revocation
		view(t, s, func(tx tandem.Tx) (err error) {
			got, err = tx.RevocationsFrom(ctx, now)
			return err
		})
		return got
	}
	put(
		tandem.Revocation{PlayerID: pid(2), IssuedBefore: at(0), ExpiresAt: at(10 * time.Minute)},
		tandem.Revocation{PlayerID: pid(1), IssuedBefore: at(time.Minute), ExpiresAt: at(11 * time.Minute)},
		tandem.Revocation{PlayerID: pid(3), IssuedBefore: at(-time.Hour), ExpiresAt: at(-50 * time.Minute)},
	)
	// An older revocation of pid(1) arriving late does not shorten the
	// stored one; a newer one of pid(2) replaces it.
	put(
		tandem.Revocation{PlayerID: pid(1), IssuedBefore: at(0), ExpiresAt: at(10 * time.Minute)},
		tandem.Revocation{PlayerID: pid(2), IssuedBefore: at(2 * time.Minute), ExpiresAt: at(12 * time.Minute)},
	)
	want := []tandem.Revocation{
		{PlayerID: pid(1), IssuedBefore: norm(at(time.Minute)), ExpiresAt: norm(at(11 * time.Minute))},
		{PlayerID: pid(2), IssuedBefore: norm(at(2 * time.Minute)), ExpiresAt: norm(at(12 * time.Minute))},
	}
	if d := cmp.Diff(want, from(at(0)), exactTime()); d != "" {
		t.Errorf("RevocationsFrom (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want[1:], from(at(11*time.Minute)), exactTime()); d != "" {
		t.Errorf("RevocationsFrom at the first one's expiry (-want +got):\n%s", d)
	}

	var n int
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.DeleteExpiredRevocations(ctx, at(11*time.Minute))
		return err
	})
	if n != 2 {
		t.Errorf("DeleteExpiredRevocations removed %d, want 2", n)
	}
	if d := cmp.Diff(want[1:], from(at(-time.Hour)), exactTime()); d != "" {
		t.Errorf("RevocationsFrom after the sweep (-want +got):\n%s", d)
	}
}

// A node's log message is raw text: PostgreSQL's text refuses NUL, which
// the store drops rather than refuse the event (and hold up the stream).
func testEventsWithNUL(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	e := tandem.Event{ID: "n1.b.1", Node: "n1", Kind: tandem.EventNodeLog, At: at(0), Level: "WARN",
		Reason: "bad\x00byte", Attrs: map[string]string{"k\x00": "v\x00"}}
	closedWithNUL := &tandem.RealtimeSession{ID: "s\x001", Node: "n1", PlayerID: pid(1), OpenedAt: at(0),
		ClosedAt: at(time.Second), Reason: "x\x00y"}
	update(t, s, func(tx tandem.Tx) error {
		if _, err := tx.InsertEvents(ctx, []tandem.Event{e}); err != nil {
			return err
		}
		return tx.CloseRealtimeSession(ctx, closedWithNUL)
	})
	got := nodeEvents(t, s, "n1")
	if len(got) != 1 || strings.ReplaceAll(got[0].Reason, "\x00", "") != "badbyte" ||
		strings.ReplaceAll(got[0].Attrs["k\x00"]+got[0].Attrs["k"], "\x00", "") != "v" {
		t.Errorf("stored events = %+v, want the log record (NUL dropped or kept)", got)
	}
	if got := sessionsOf(t, s, pid(1)); len(got) != 1 || strings.ReplaceAll(got[0].Reason, "\x00", "") != "xy" {
		t.Errorf("sessions = %+v, want the closed session", got)
	}
}

func nodeEvents(t *testing.T, s tandem.Store, node string) []tandem.Event {
	t.Helper()
	var out []tandem.Event
	view(t, s, func(tx tandem.Tx) (err error) {
		out, err = tx.NodeEvents(t.Context(), node, 100)
		return err
	})
	return out
}

func testDeleteOldClusterHistory(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	old, recent := at(0), at(48*time.Hour)
	cutoff := at(24 * time.Hour)
	update(t, s, func(tx tandem.Tx) error {
		if _, err := tx.InsertEvents(ctx, []tandem.Event{
			{ID: "e-old", Node: "n1", Kind: tandem.EventNodeLog, At: old},
			{ID: "e-new", Node: "n1", Kind: tandem.EventNodeLog, At: recent},
		}); err != nil {
			return err
		}
		pendingOld, deliveredOld, failedOld, deliveredNew := newCommand("c-pending", "n1", old), newCommand("c-delivered", "n1", old),
			newCommand("c-failed", "n1", old), newCommand("c-new", "n1", recent)
		deliveredOld.State, failedOld.State, deliveredNew.State = tandem.CommandDelivered, tandem.CommandFailed, tandem.CommandDelivered
		for _, c := range []*tandem.CommandRecord{pendingOld, deliveredOld, failedOld, deliveredNew} {
			if err := tx.CreateCommand(ctx, c); err != nil {
				return err
			}
		}
		for _, rs := range []*tandem.RealtimeSession{
			{ID: "s-closed-old", Node: "n1", PlayerID: pid(1), OpenedAt: old, ClosedAt: old.Add(time.Minute)},
			{ID: "s-closed-new", Node: "n1", PlayerID: pid(1), OpenedAt: old, ClosedAt: recent},
		} {
			if err := tx.CloseRealtimeSession(ctx, rs); err != nil {
				return err
			}
		}
		if _, err := tx.InsertMatches(ctx, []tandem.MatchRecord{
			{ID: "m-old", Queue: "duel", Teams: [][]string{{"a"}, {"b"}}, At: old},
			{ID: "m-new", Queue: "duel", Teams: [][]string{{"a"}, {"b"}}, At: recent},
		}); err != nil {
			return err
		}
		return tx.OpenRealtimeSession(ctx, &tandem.RealtimeSession{ID: "s-open-old", Node: "n1", PlayerID: pid(1), OpenedAt: old})
	})
	var n int
	update(t, s, func(tx tandem.Tx) (err error) {
		n, err = tx.DeleteOldClusterHistory(ctx, cutoff)
		return err
	})
	if n != 5 {
		t.Errorf("DeleteOldClusterHistory removed %d rows, want 5", n)
	}
	if got := nodeEvents(t, s, "n1"); len(got) != 1 || got[0].ID != "e-new" {
		t.Errorf("events left = %+v, want e-new", got)
	}
	view(t, s, func(tx tandem.Tx) error {
		cs, err := tx.Commands(ctx, 100)
		if err != nil {
			return err
		}
		if d := cmp.Diff([]string{"c-new", "c-pending"}, commandIDs(cs)); d != "" {
			t.Errorf("commands left (-want +got):\n%s", d)
		}
		ms, err := tx.RecentMatches(ctx, "duel", 10)
		if err != nil {
			return err
		}
		if len(ms) != 1 || ms[0].ID != "m-new" {
			t.Errorf("matches left = %+v, want m-new", ms)
		}
		return nil
	})
	var ids []string
	for _, rs := range sessionsOf(t, s, pid(1)) {
		ids = append(ids, rs.ID)
	}
	slices.Sort(ids)
	if d := cmp.Diff([]string{"s-closed-new", "s-open-old"}, ids); d != "" {
		t.Errorf("sessions left (-want +got):\n%s", d)
	}
}
