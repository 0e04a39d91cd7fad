package natsbus_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
)

func searching(queue, player string) tandem.MatchTicket {
	return tandem.MatchTicket{
		ID:        queue + "/" + player,
		Queue:     queue,
		PlayerID:  player,
		Strings:   map[string]string{"region": "eu"},
		Numbers:   map[string]float64{"skill": 1500},
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
		Node:      "n1",
		State:     tandem.TicketSearching,
	}
}

func createTicket(t *testing.T, b *natsbus.Bus, tk tandem.MatchTicket) tandem.MatchTicket {
	t.Helper()
	got, err := b.CreateTicket(t.Context(), tk)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision == 0 {
		t.Fatalf("created ticket %s has no revision", tk.ID)
	}
	return got
}

func TestCreateTicketRefusesALiveTicketAndReplacesAnEndedOne(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	first := createTicket(t, b, searching("duel", "alice"))
	got, err := b.Ticket(ctx, "duel", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("ticket read back (-want +got):\n%s", diff)
	}

	_, err = b.CreateTicket(ctx, searching("duel", "alice"))
	wantCode(t, err, tandem.EConflict)
	// Another queue, another player: independent.
	createTicket(t, b, searching("ffa", "alice"))
	createTicket(t, b, searching("duel", "bob"))

	first.State, first.Reason = tandem.TicketCancelled, "cancelled"
	if _, err := b.UpdateTicket(ctx, first); err != nil {
		t.Fatal(err)
	}
	again := searching("duel", "alice")
	again.ID = "second"
	again = createTicket(t, b, again)
	got, err = b.Ticket(ctx, "duel", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(again, got); diff != "" {
		t.Errorf("replacing ticket (-want +got):\n%s", diff)
	}

	_, err = b.Ticket(ctx, "duel", "carol")
	wantCode(t, err, tandem.ENotFound)
	_, err = b.CreateTicket(ctx, tandem.MatchTicket{Queue: "duel"})
	wantCode(t, err, tandem.EInvalid)
}

func TestUpdateTicketIsCompareAndSwap(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	tk := createTicket(t, b, searching("duel", "alice"))

	claimed := tk
	claimed.State, claimed.MatchID = tandem.TicketClaimed, "m1"
	claimed, err := b.UpdateTicket(ctx, claimed)
	if err != nil {
		t.Fatal(err)
	}
	if claimed.Revision <= tk.Revision {
		t.Errorf("revision after update %d, before %d", claimed.Revision, tk.Revision)
	}
	// A second matcher holding the old revision loses.
	rival := tk
	rival.State, rival.MatchID = tandem.TicketClaimed, "m2"
	_, err = b.UpdateTicket(ctx, rival)
	wantCode(t, err, tandem.EConflict)
	rival.Revision = 0
	_, err = b.UpdateTicket(ctx, rival)
	wantCode(t, err, tandem.EConflict)
	got, err := b.Ticket(ctx, "duel", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.MatchID != "m1" || got.Revision != claimed.Revision {
		t.Errorf("ticket after the lost update: match %q revision %d, want m1 %d", got.MatchID, got.Revision, claimed.Revision)
	}

	// Gone, or never there: not found, and an update does not create it.
	if err := b.DeleteTicket(ctx, "duel", "alice", claimed.Revision); err != nil {
		t.Fatal(err)
	}
	_, err = b.UpdateTicket(ctx, claimed)
	wantCode(t, err, tandem.ENotFound)
	ghost := searching("duel", "nobody")
	_, err = b.UpdateTicket(ctx, ghost)
	wantCode(t, err, tandem.ENotFound)
	ghost.Revision = 1
	_, err = b.UpdateTicket(ctx, ghost)
	wantCode(t, err, tandem.ENotFound)
	_, err = b.Ticket(ctx, "duel", "nobody")
	wantCode(t, err, tandem.ENotFound)
}

func TestDeleteTicketIsCompareAndSwap(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	tk := createTicket(t, b, searching("duel", "alice"))
	newer, err := b.UpdateTicket(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.DeleteTicket(ctx, "duel", "alice", tk.Revision), tandem.EConflict)
	if _, err := b.Ticket(ctx, "duel", "alice"); err != nil {
		t.Fatalf("ticket after a stale delete: %v", err)
	}
	if err := b.DeleteTicket(ctx, "duel", "alice", newer.Revision); err != nil {
		t.Fatal(err)
	}
	_, err = b.Ticket(ctx, "duel", "alice")
	wantCode(t, err, tandem.ENotFound)
	wantCode(t, b.DeleteTicket(ctx, "duel", "alice", newer.Revision), tandem.ENotFound)
	// The player may queue again.
	createTicket(t, b, searching("duel", "alice"))
}

func TestTicketsAreListedByQueueAndPlayer(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	// Ids that are not plain, and one that looks like a key separator.
	for _, qp := range [][2]string{{"ffa", "zoe"}, {"duel", "bob"}, {"du.el", "x"}, {"duel", "ålice"}, {"ffa", "a.b"}} {
		createTicket(t, b, searching(qp[0], qp[1]))
	}
	ids := func(ts []tandem.MatchTicket) []string {
		var s []string
		for _, tk := range ts {
			if tk.Revision == 0 {
				t.Errorf("listed ticket %s without a revision", tk.ID)
			}
			s = append(s, tk.Queue+"/"+tk.PlayerID)
		}
		return s
	}
	all, err := b.Tickets(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"du.el/x", "duel/bob", "duel/ålice", "ffa/a.b", "ffa/zoe"}, ids(all)); diff != "" {
		t.Errorf("every ticket (-want +got):\n%s", diff)
	}
	duel, err := b.Tickets(ctx, "duel")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"duel/bob", "duel/ålice"}, ids(duel)); diff != "" {
		t.Errorf("queue duel (-want +got):\n%s", diff)
	}
	none, err := b.Tickets(ctx, "empty")
	if err != nil || len(none) != 0 {
		t.Errorf("empty queue: %v, %v", none, err)
	}
}

// changeLog records what a watch passed on, as "queue/player state deleted".
type changeLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *changeLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, s)
}

func (l *changeLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}

func (l *changeLog) waitFor(t *testing.T, want []string) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if got := l.snapshot(); !slices.Equal(got, want) {
			return fmt.Errorf("seen %q, want %q", got, want)
		}
		return nil
	})
}

func TestWatchTicketsSeesItsQueueOnlyWithDeletes(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	alice := createTicket(t, b, searching("duel", "alice"))
	createTicket(t, b, searching("ffa", "bob"))
	var duel, every changeLog
	watch := func(queue string, l *changeLog) {
		stop, err := b.WatchTickets(ctx, queue, func(tk tandem.MatchTicket, deleted bool) {
			if !deleted && tk.Revision == 0 {
				t.Errorf("watched ticket %s without a revision", tk.ID)
			}
			l.add(fmt.Sprintf("%s/%s %s %v", tk.Queue, tk.PlayerID, tk.State, deleted))
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	watch("duel", &duel)
	watch("", &every)
	if got := duel.snapshot(); !slices.Equal(got, []string{"duel/alice searching false"}) {
		t.Errorf("duel's tickets before WatchTickets returned: %q", got)
	}

	createTicket(t, b, searching("ffa", "carol"))
	createTicket(t, b, searching("duel", "dave"))
	alice.State = tandem.TicketClaimed
	alice, err := b.UpdateTicket(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	// A key-value watch passes on the entry's latest value: a change
	// replaced before the watcher read it is skipped. So the delete waits
	// until both watchers saw the claim.
	duel.waitFor(t, []string{"duel/alice searching false", "duel/dave searching false", "duel/alice claimed false"})
	every.waitFor(t, []string{
		"duel/alice searching false", "ffa/bob searching false", "ffa/carol searching false",
		"duel/dave searching false", "duel/alice claimed false",
	})
	if err := b.DeleteTicket(ctx, "duel", "alice", alice.Revision); err != nil {
		t.Fatal(err)
	}
	duel.waitFor(t, []string{
		"duel/alice searching false",
		"duel/dave searching false",
		"duel/alice claimed false",
		"duel/alice  true",
	})
	every.waitFor(t, []string{
		"duel/alice searching false",
		"ffa/bob searching false",
		"ffa/carol searching false",
		"duel/dave searching false",
		"duel/alice claimed false",
		"duel/alice  true",
	})
}

func TestRacingHoldersGetALeaseExactlyOnce(t *testing.T) {
	srv := startServer(t, "", "")
	buses := []*natsbus.Bus{
		connect(t, natsbus.Config{Server: srv, Name: "m1"}),
		connect(t, natsbus.Config{Server: srv, Name: "m2"}),
	}
	holders := []string{"m1", "m2"}
	ctx := t.Context()
	for round := range 100 {
		var got [2]bool
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				var err error
				if got[i], err = buses[i].HoldLease(ctx, "queue duel", holders[i]); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got[0] == got[1] {
			t.Fatalf("round %d: holds %v, want exactly one", round, got)
		}
		w := 0
		if got[1] {
			w = 1
		}
		// The winner renews; the loser still may not take it.
		if ok, err := buses[w].HoldLease(ctx, "queue duel", holders[w]); err != nil || !ok {
			t.Fatalf("round %d: renewal by %s: %v, %v", round, holders[w], ok, err)
		}
		if ok, err := buses[1-w].HoldLease(ctx, "queue duel", holders[1-w]); err != nil || ok {
			t.Fatalf("round %d: %s took a held lease: %v, %v", round, holders[1-w], ok, err)
		}
		// Releasing someone else's lease does nothing.
		if err := buses[1-w].ReleaseLease(ctx, "queue duel", holders[1-w]); err != nil {
			t.Fatal(err)
		}
		if err := buses[w].ReleaseLease(ctx, "queue duel", holders[w]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReleasedLeaseIsFreeAtOnce(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	if ok, err := b.HoldLease(ctx, "duel", "m1"); err != nil || !ok {
		t.Fatalf("first hold: %v, %v", ok, err)
	}
	if ok, err := b.HoldLease(ctx, "duel", "m2"); err != nil || ok {
		t.Fatalf("m2 took m1's lease: %v, %v", ok, err)
	}
	if ok, err := b.HoldLease(ctx, "ffa", "m2"); err != nil || !ok {
		t.Fatalf("m2 on another lease: %v, %v", ok, err)
	}
	if err := b.ReleaseLease(ctx, "duel", "m2"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.HoldLease(ctx, "duel", "m2"); err != nil || ok {
		t.Fatalf("m2 took m1's lease after releasing it for m1: %v, %v", ok, err)
	}
	if err := b.ReleaseLease(ctx, "duel", "m1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.HoldLease(ctx, "duel", "m2"); err != nil || !ok {
		t.Fatalf("m2 after m1 released: %v, %v", ok, err)
	}
	_, err := b.HoldLease(ctx, "duel", "")
	wantCode(t, err, tandem.EInvalid)
}

func TestUnrenewedLeaseExpiresAndAnotherTakesIt(t *testing.T) {
	srv := startServer(t, "", "")
	b := connect(t, natsbus.Config{Server: srv, MatchLeaseTTL: time.Second})
	ctx := t.Context()
	if ok, err := b.HoldLease(ctx, "duel", "m1"); err != nil || !ok {
		t.Fatalf("first hold: %v, %v", ok, err)
	}
	eventually(t, 10*time.Second, func() error {
		ok, err := b.HoldLease(ctx, "duel", "m2")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("m1's lease has not expired")
		}
		return nil
	})
}

func TestConnectRefusesAMatchLeaseTTLUnderASecond(t *testing.T) {
	srv := startServer(t, "", "")
	_, err := natsbus.Connect(t.Context(), natsbus.Config{Server: srv, MatchLeaseTTL: 500 * time.Millisecond})
	wantCode(t, err, tandem.EInvalid)
}

func TestMatchRoomRequestRoundTripsSeatsAndErrors(t *testing.T) {
	srv := startServer(t, "", "")
	n1 := connect(t, natsbus.Config{Server: srv, Name: "n1"})
	n2 := connect(t, natsbus.Config{Server: srv, Name: "n2"})
	exp := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- n2.ServeMatchRooms(ctx, "n2", func(_ context.Context, r tandem.MatchRoomRequest) (tandem.MatchRoom, error) {
			if r.RoomID == "gone" {
				return tandem.MatchRoom{}, tandem.Errorf(tandem.ENotFound, "room gone has ended")
			}
			room := tandem.MatchRoom{RoomID: "room-" + r.MatchID}
			for _, team := range r.Teams {
				for _, p := range team {
					room.Seats = append(room.Seats, tandem.Seat{Token: "tok-" + p, RoomID: room.RoomID, PlayerID: p, Node: "n2", NodeURL: "ws://n2/ws", ExpiresAt: exp, Queue: r.Queue})
				}
			}
			return room, nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	req := tandem.MatchRoomRequest{MatchID: "m1", Queue: "duel", RoomType: "arena", Teams: [][]string{{"alice"}, {"bob"}}}
	var room tandem.MatchRoom
	eventually(t, 10*time.Second, func() error {
		var err error
		room, err = n1.CreateMatchRoom(t.Context(), "n2", req)
		return err
	})
	seat := func(p string) tandem.Seat {
		return tandem.Seat{Token: "tok-" + p, RoomID: "room-m1", PlayerID: p, Node: "n2", NodeURL: "ws://n2/ws", ExpiresAt: exp, Queue: "duel"}
	}
	want := tandem.MatchRoom{RoomID: "room-m1", Seats: []tandem.Seat{seat("alice"), seat("bob")}}
	if diff := cmp.Diff(want, room); diff != "" {
		t.Errorf("match room (-want +got):\n%s", diff)
	}

	req.RoomID = "gone"
	_, err := n1.CreateMatchRoom(t.Context(), "n2", req)
	wantCode(t, err, tandem.ENotFound)
	if tandem.ErrorMessageOf(err) != "room gone has ended" {
		t.Errorf("message %q", tandem.ErrorMessageOf(err))
	}
	_, err = n1.CreateMatchRoom(t.Context(), "n3", req)
	wantCode(t, err, tandem.EUnavailable)
}

func TestQueuesArePutListedWatchedAndDeleted(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	ffa := tandem.MatchQueue{Name: "ffa", RoomType: "relay", MinPlayers: 2, MaxPlayers: 8, FillWaitMS: 5000}
	duel := tandem.MatchQueue{
		Name: "duel", RoomType: "arena", Teams: 2, TeamSize: 1,
		Rules:     []tandem.MatchRule{{Property: "skill", Kind: tandem.RuleRange, Base: 50, Step: 25, EveryMS: 5000, Max: 200}},
		UpdatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	for _, q := range []tandem.MatchQueue{ffa, duel} {
		if err := b.PutQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, b.PutQueue(ctx, tandem.MatchQueue{}), tandem.EInvalid)
	got, err := b.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tandem.MatchQueue{duel, ffa}, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("queues (-want +got):\n%s", diff)
	}

	var l changeLog
	stop, err := b.WatchQueues(ctx, func(q tandem.MatchQueue, deleted bool) {
		l.add(fmt.Sprintf("%s %s %v", q.Name, q.RoomType, deleted))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ffa.Disabled = true
	ffa.RoomType = "chat"
	if err := b.PutQueue(ctx, ffa); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteQueue(ctx, "duel"); err != nil {
		t.Fatal(err)
	}
	// Present entries come in the order they were written.
	l.waitFor(t, []string{"ffa relay false", "duel arena false", "ffa chat false", "duel  true"})
	got, err = b.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tandem.MatchQueue{ffa}, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("queues after the delete (-want +got):\n%s", diff)
	}
}

// benchBus returns a bus on a fresh in-process server.
func benchBus(b *testing.B) *natsbus.Bus {
	b.Helper()
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	bus, err := natsbus.Connect(b.Context(), natsbus.Config{Server: srv, Name: b.Name()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bus.Close() })
	return bus
}

// BenchmarkTicketCAS measures a ticket's create and one claim by
// compare-and-swap: the bucket writes a matched player costs at least.
func BenchmarkTicketCAS(b *testing.B) {
	bus := benchBus(b)
	ctx := b.Context()
	for i := 0; b.Loop(); i++ {
		tk := searching("duel", fmt.Sprint("p", i))
		tk, err := bus.CreateTicket(ctx, tk)
		if err != nil {
			b.Fatal(err)
		}
		tk.State, tk.MatchID = tandem.TicketClaimed, "m"
		if _, err := bus.UpdateTicket(ctx, tk); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkTickets10k measures listing a queue of 10,000 tickets.
func BenchmarkTickets10k(b *testing.B) {
	bus := benchBus(b)
	ctx := b.Context()
	for i := range 10000 {
		if _, err := bus.CreateTicket(ctx, searching("duel", fmt.Sprint("p", i))); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		ts, err := bus.Tickets(ctx, "duel")
		if err != nil {
			b.Fatal(err)
		}
		if len(ts) != 10000 {
			b.Fatalf("listed %d tickets", len(ts))
		}
	}
}
