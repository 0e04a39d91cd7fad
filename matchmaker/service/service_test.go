package service

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/clustertest"
	"github.com/tandemhq/tandem/natsbus"
	"go.uber.org/goleak"
)

// Every matcher and watch a test starts must have ended when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a test clock the matchers read; tests move it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// world is a bus with a stand-in realtime node ("n1") that creates match
// rooms (seats only, no real room) and records the commands it gets.
type world struct {
	t     testing.TB
	bus   *natsbus.Bus
	clock *clock

	mu       sync.Mutex
	events   []tandem.Event
	commands []tandem.Command
	rooms    int
}

func newWorld(t testing.TB) *world {
	t.Helper()
	emb := clustertest.StartNATS(t)
	w := &world{t: t, clock: &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}}
	w.bus = clustertest.Connect(t, emb, natsbus.Config{Name: "test", MatchLeaseTTL: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	if err := w.bus.PutNode(ctx, tandem.NodeInfo{ID: "n1", URL: "ws://n1/ws"}); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		_ = w.bus.ServeMatchRooms(ctx, "n1", func(_ context.Context, r tandem.MatchRoomRequest) (tandem.MatchRoom, error) {
			w.mu.Lock()
			w.rooms++
			if r.RoomType == "no-such-type" {
				w.mu.Unlock()
				return tandem.MatchRoom{}, tandem.Errorf(tandem.ENotFound, "unknown room type %q", r.RoomType)
			}
			room := tandem.MatchRoom{RoomID: r.RoomID}
			if room.RoomID == "" {
				room.RoomID = fmt.Sprintf("room-%d", w.rooms)
			}
			w.mu.Unlock()
			for _, team := range r.Teams {
				for _, p := range team {
					room.Seats = append(room.Seats, tandem.Seat{
						Token: "seat-" + p, RoomID: room.RoomID, PlayerID: p, Node: "n1", NodeURL: "ws://n1/ws",
						ExpiresAt: w.clock.Now().Add(15 * time.Second), Queue: r.Queue,
					})
				}
			}
			return room, nil
		})
	})
	wg.Go(func() {
		_ = w.bus.ServeCommands(ctx, "n1", func(_ context.Context, c tandem.Command) tandem.CommandResult {
			w.mu.Lock()
			w.commands = append(w.commands, c)
			w.mu.Unlock()
			return tandem.CommandResult{ID: c.ID, Node: "n1", OK: true}
		})
	})
	return w
}

// service starts a node's matchmaking on the world's bus, stopped at the
// test's end.
func (w *world) service(node string) *Service {
	w.t.Helper()
	s := w.unstarted(node)
	if err := s.Start(w.t.Context()); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

func (w *world) unstarted(node string) *Service {
	return New(Config{
		Node: node, Bus: w.bus, Cluster: w.bus, Now: w.clock.Now, Tick: 20 * time.Millisecond,
		Emit: func(e tandem.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		},
	})
}

func (w *world) queue(q tandem.MatchQueue) {
	w.t.Helper()
	if err := w.bus.PutQueue(w.t.Context(), q); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) matches() []tandem.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []tandem.Event
	for _, e := range w.events {
		if e.Kind == tandem.EventMatch {
			out = append(out, e)
		}
	}
	return out
}

func (w *world) ticket(queue, player string) tandem.MatchTicket {
	w.t.Helper()
	t, err := w.bus.Ticket(w.t.Context(), queue, player)
	if err != nil {
		w.t.Fatalf("ticket of %s: %v", player, err)
	}
	return t
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond) // the pause of a poll with a deadline
	}
}

func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}

// waitPasses waits until the node's matchers made n more passes.
func waitPasses(t *testing.T, s *Service, n uint64) {
	t.Helper()
	_, start := histogram(s.cfg.Metrics.MatcherTick)
	eventually(t, "matcher passes", func() bool {
		_, now := histogram(s.cfg.Metrics.MatcherTick)
		return now >= start+n
	})
}

// waitFor waits until the service sees queue (its watch is asynchronous).
func waitFor(t *testing.T, s *Service, queue string) {
	eventually(t, "the node sees queue "+queue, func() bool { _, ok := s.Queue(queue); return ok })
}

var duel = tandem.MatchQueue{Name: "duel", RoomType: "arena", Teams: 2, TeamSize: 1}

func player(id string, skill int) *tandem.Player {
	return &tandem.Player{ID: id, MM: map[string]string{"skill": strconv.Itoa(skill)}}
}

func TestEveryTicketIsMatchedOnce(t *testing.T) {
	w := newWorld(t)
	w.queue(duel)
	a, b := w.service("a"), w.service("b")
	waitFor(t, a, "duel")
	waitFor(t, b, "duel")
	for i := range 20 {
		front := a
		if i%2 == 1 {
			front = b
		}
		if _, err := front.Create(t.Context(), player(fmt.Sprintf("p%02d", i), 1000), TicketRequest{Queue: "duel"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "10 matches", func() bool { return len(w.matches()) >= 10 })
	if a.Matching("duel") == b.Matching("duel") {
		t.Errorf("matching on a: %v, on b: %v; want exactly one node", a.Matching("duel"), b.Matching("duel"))
	}
	seen := map[string]string{}
	for _, e := range w.matches() {
		players := strings.FieldsFunc(e.Attrs["players"], func(r rune) bool { return r == ',' || r == '|' })
		if len(players) != 2 {
			t.Errorf("match %s has players %v, want 2", e.Attrs["match"], players)
		}
		for _, p := range players {
			if m, ok := seen[p]; ok {
				t.Errorf("%s is in match %s and %s", p, m, e.Attrs["match"])
			}
			seen[p] = e.Attrs["match"]
			if tk := w.ticket("duel", p); tk.State != tandem.TicketMatched || tk.MatchID != e.Attrs["match"] || tk.Seat == nil {
				t.Errorf("ticket of %s: %s in %q, want matched in %s with a seat", p, tk.State, tk.MatchID, e.Attrs["match"])
			}
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d players matched, want 20", len(seen))
	}
}

// Two matchers on one queue at once (one that lost its lease without
// knowing, say): their claims are compare-and-swap on each ticket's
// revision, so no ticket is ever committed to two matches.
func TestTwoMatchersAtOnceNeverPlaceAPlayerTwice(t *testing.T) {
	w := newWorld(t)
	q := tandem.MatchQueue{Name: "ffa", RoomType: "arena", MinPlayers: 3, MaxPlayers: 3}
	w.queue(q)
	front := w.service("front")
	waitFor(t, front, "ffa")
	// Two matchers run the queue without a lease between them.
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for _, node := range []string{"m1", "m2"} {
		s := w.unstarted(node)
		s.ctx, s.cancel = ctx, cancel
		m := newMatcher(s, q)
		wg.Go(m.run)
	}
	defer func() { cancel(); wg.Wait() }()
	const n = 60
	for i := range n {
		if _, err := front.Create(t.Context(), player(fmt.Sprintf("p%02d", i), 1000), TicketRequest{Queue: "ffa"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every ticket matched", func() bool {
		ts, err := w.bus.Tickets(t.Context(), "ffa")
		if err != nil {
			return false
		}
		return !slices.ContainsFunc(ts, func(t tandem.MatchTicket) bool { return t.State != tandem.TicketMatched })
	})
	cancel()
	wg.Wait()
	count := map[string]int{}
	for _, e := range w.matches() {
		for _, p := range strings.FieldsFunc(e.Attrs["players"], func(r rune) bool { return r == ',' || r == '|' }) {
			count[p]++
		}
	}
	for i := range n {
		p := fmt.Sprintf("p%02d", i)
		if count[p] != 1 {
			t.Errorf("%s committed to %d matches, want 1", p, count[p])
		}
	}
}

// A matcher that stopped between two claims leaves a claimed ticket: the
// next matcher puts it back after the claim timeout, and it is matched.
func TestAClaimLeftByAStoppedMatcherIsReleased(t *testing.T) {
	w := newWorld(t)
	w.queue(duel)
	s := w.service("a")
	waitFor(t, s, "duel")
	left, err := s.Create(t.Context(), player("left", 1000), TicketRequest{Queue: "duel"})
	if err != nil {
		t.Fatal(err)
	}
	left.State, left.MatchID, left.ClaimedAt = tandem.TicketClaimed, "m-dead", w.clock.Now()
	if _, err := w.bus.UpdateTicket(t.Context(), left); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(t.Context(), player("other", 1000), TicketRequest{Queue: "duel"}); err != nil {
		t.Fatal(err)
	}
	// Before the claim timeout the claimed ticket is left alone.
	// A pass that saw one ticket searching (the claimed one is not) made
	// no match with it.
	eventually(t, "a matcher pass over the queue", func() bool {
		return gauge(s.cfg.Metrics.QueueDepth.WithLabelValues("duel")) == 1
	})
	if got := w.ticket("duel", "left"); got.State != tandem.TicketClaimed || got.MatchID != "m-dead" {
		t.Fatalf("before the claim timeout: %s in %q", got.State, got.MatchID)
	}
	w.clock.Add(10 * time.Second)
	eventually(t, "both matched", func() bool {
		return w.ticket("duel", "left").State == tandem.TicketMatched && w.ticket("duel", "other").State == tandem.TicketMatched
	})
	if l, o := w.ticket("duel", "left"), w.ticket("duel", "other"); l.MatchID != o.MatchID || l.MatchID == "m-dead" {
		t.Errorf("matches %q and %q, want one new match", l.MatchID, o.MatchID)
	}
}

// Whoever does not take the seat in time is dropped; the others go back
// to the front of the queue (their creation time kept), and the room is
// closed.
func TestAnUnclaimedSeatReturnsTheOthersToTheQueue(t *testing.T) {
	w := newWorld(t)
	w.queue(duel)
	s := w.service("a")
	waitFor(t, s, "duel")
	created, err := s.Create(t.Context(), player("on-time", 1000), TicketRequest{Queue: "duel"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(t.Context(), player("late", 1000), TicketRequest{Queue: "duel"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "matched", func() bool { return w.ticket("duel", "late").State == tandem.TicketMatched })
	room := w.ticket("duel", "on-time").Seat.RoomID
	if err := s.Seated(t.Context(), "on-time", "duel", room); err != nil {
		t.Fatal(err)
	}
	if got := w.ticket("duel", "on-time").State; got != tandem.TicketSeated {
		t.Fatalf("on-time is %s, want seated", got)
	}
	w.clock.Add(18 * time.Second) // past the seat's 15 s and the grace
	eventually(t, "the match fell through", func() bool { return w.ticket("duel", "late").State == tandem.TicketExpired })
	late, back := w.ticket("duel", "late"), w.ticket("duel", "on-time")
	if late.Reason != "seat_expired" {
		t.Errorf("late's reason %q, want seat_expired", late.Reason)
	}
	if back.State != tandem.TicketSearching || back.MatchID != "" || back.Seat != nil || !back.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("on-time: %s, match %q, seat %v, created %s; want searching, no match, its old place (%s)",
			back.State, back.MatchID, back.Seat, back.CreatedAt, created.CreatedAt)
	}
	eventually(t, "the room closed", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return slices.ContainsFunc(w.commands, func(c tandem.Command) bool {
			return c.Kind == tandem.CommandCloseRoom && c.RoomID == room
		})
	})
	eventually(t, "a match.expired event naming late as expired and on-time as returned", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return slices.ContainsFunc(w.events, func(e tandem.Event) bool {
			return e.Kind == tandem.EventMatchExpired && e.Attrs["expired"] == "late" && e.Attrs["returned"] == "on-time"
		})
	})
}

func TestAMatchIsDoneOnceEveryPlayerIsSeated(t *testing.T) {
	w := newWorld(t)
	w.queue(duel)
	s := w.service("a")
	waitFor(t, s, "duel")
	for _, p := range []string{"x", "y"} {
		if _, err := s.Create(t.Context(), player(p, 1000), TicketRequest{Queue: "duel"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "matched", func() bool { return w.ticket("duel", "y").State == tandem.TicketMatched })
	for _, p := range []string{"x", "y"} {
		if err := s.Seated(t.Context(), p, "duel", w.ticket("duel", p).Seat.RoomID); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "done", func() bool {
		return w.ticket("duel", "x").State == tandem.TicketDone && w.ticket("duel", "y").State == tandem.TicketDone
	})
	// Done, the player may queue again.
	if _, err := s.Create(t.Context(), player("x", 1000), TicketRequest{Queue: "duel"}); err != nil {
		t.Errorf("queue again after a match: %v", err)
	}
}

func TestASearchingTicketTimesOut(t *testing.T) {
	w := newWorld(t)
	q := duel
	q.TimeoutMS = 30_000
	w.queue(q)
	s := w.service("a")
	waitFor(t, s, "duel")
	if _, err := s.Create(t.Context(), player("alone", 1000), TicketRequest{Queue: "duel"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node matches the queue", func() bool { return s.Matching("duel") })
	w.clock.Add(30 * time.Second)
	eventually(t, "expired", func() bool { return w.ticket("duel", "alone").State == tandem.TicketExpired })
	if got := w.ticket("duel", "alone").Reason; got != "timeout" {
		t.Errorf("reason %q, want timeout", got)
	}
}

// A queue without a timeout expires its tickets before the tickets
// bucket's one-hour limit would delete them without a word to the player.
func TestATicketOfAQueueWithoutTimeoutExpiresBeforeTheBucketDropsIt(t *testing.T) {
	w := newWorld(t)
	w.queue(duel)
	s := w.service("a")
	waitFor(t, s, "duel")
	if _, err := s.Create(t.Context(), player("alone", 1000), TicketRequest{Queue: "duel"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a matcher pass over the queue", func() bool {
		return s.Matching("duel") && gauge(s.cfg.Metrics.QueueDepth.WithLabelValues("duel")) == 1
	})
	w.clock.Add(54*time.Minute + 59*time.Second)
	waitPasses(t, s, 2)
	if got := w.ticket("duel", "alone").State; got != tandem.TicketSearching {
		t.Fatalf("before 55 minutes: %s", got)
	}
	w.clock.Add(time.Second)
	eventually(t, "expired at 55 minutes", func() bool { return w.ticket("duel", "alone").State == tandem.TicketExpired })
}

func TestTicketFront(t *testing.T) {
	w := newWorld(t)
	q := duel
	q.ClientProperties = []string{"skill", "mode"}
	w.queue(q)
	w.queue(tandem.MatchQueue{Name: "closed", RoomType: "arena", Teams: 2, TeamSize: 1, Disabled: true})
	// No matcher runs here: the front alone.
	s := w.unstarted("a")
	s.cfg.Tick = time.Hour
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	waitFor(t, s, "duel")
	waitFor(t, s, "closed")
	ctx := t.Context()
	p := player("ada", 1500)

	// The claim's skill wins over the client's; a property the queue lets
	// a client set is taken.
	got, err := s.Create(ctx, p, TicketRequest{Queue: "duel", Numbers: map[string]float64{"skill": 3000}, Strings: map[string]string{"mode": "ctf"}})
	if err != nil {
		t.Fatal(err)
	}
	stored := w.ticket("duel", "ada")
	if stored.Numbers["skill"] != 1500 || stored.Strings["mode"] != "ctf" || got.State != tandem.TicketSearching {
		t.Errorf("stored skill %v, mode %q, state %s; want the claim's 1500, ctf, searching", stored.Numbers["skill"], stored.Strings["mode"], got.State)
	}
	if _, err := s.Create(ctx, p, TicketRequest{Queue: "duel"}); tandem.ErrorCodeOf(err) != tandem.EConflict {
		t.Errorf("a second ticket in the queue: %v, want conflict", err)
	}
	if _, err := s.Create(ctx, player("bob", 1), TicketRequest{Queue: "duel", Strings: map[string]string{"region": "eu"}}); tandem.ErrorCodeOf(err) != tandem.EValidation {
		t.Errorf("a property the queue does not let a client set: %v, want validation", err)
	}
	if _, err := s.Create(ctx, p, TicketRequest{Queue: "nope"}); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("unknown queue: %v, want not found", err)
	}
	if _, err := s.Create(ctx, p, TicketRequest{Queue: "closed"}); tandem.ErrorCodeOf(err) != tandem.EUnavailable {
		t.Errorf("disabled queue: %v, want unavailable", err)
	}

	// Cancel, then queue again.
	if c, err := s.Cancel(ctx, "ada", "duel"); err != nil || c.State != tandem.TicketCancelled || c.Reason != "cancelled" {
		t.Fatalf("cancel: %+v, %v", c, err)
	}
	if _, err := s.Cancel(ctx, "ada", "duel"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("cancel twice: %v, want not found", err)
	}
	if _, err := s.Create(ctx, p, TicketRequest{Queue: "duel", Session: "s-ada"}); err != nil {
		t.Fatalf("queue again after a cancel: %v", err)
	}
	// A ticket being claimed cannot be cancelled.
	tk := w.ticket("duel", "ada")
	tk.State, tk.MatchID, tk.ClaimedAt = tandem.TicketClaimed, "m-1", w.clock.Now()
	if _, err := w.bus.UpdateTicket(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(ctx, "ada", "duel"); tandem.ErrorCodeOf(err) != tandem.EConflict {
		t.Errorf("cancel a claimed ticket: %v, want conflict", err)
	}
	// A session that ends cancels only the searching tickets it created;
	// a claimed one is to be tried again later.
	known := func(player string) func() bool {
		return func() bool { return slices.Contains(s.liveQueues(player), "duel") }
	}
	eventually(t, "the node knows ada's ticket", known("ada"))
	if again := s.SessionEnded(ctx, "ada", "s-ada"); !again {
		t.Error("a claimed ticket's session ended: not to be tried again")
	}
	if got := w.ticket("duel", "ada").State; got != tandem.TicketClaimed {
		t.Errorf("after the session ended, a claimed ticket is %s", got)
	}
	if _, err := s.Create(ctx, player("cy", 1), TicketRequest{Queue: "duel", Session: "s-cy"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node knows cy's ticket", known("cy"))
	// cy lives on in session s-cy when an earlier session's end is handled.
	if _, err := w.bus.ClaimPresence(ctx, tandem.Presence{PlayerID: "cy", Node: "a", SessionID: "s-cy", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.SessionEnded(ctx, "cy", "s-cy-before")
	if got := w.ticket("duel", "cy"); got.State != tandem.TicketSearching {
		t.Errorf("after an earlier session ended: %s, want the later session's ticket searching", got.State)
	}
	if again := s.SessionEnded(ctx, "cy", "s-cy"); again {
		t.Error("a searching ticket's session ended: to be tried again")
	}
	if got := w.ticket("duel", "cy"); got.State != tandem.TicketCancelled || got.Reason != "session_ended" {
		t.Errorf("after the session ended: %s (%s), want cancelled (session_ended)", got.State, got.Reason)
	}
}

// The node running a queue's matcher dies (its lease is not given up):
// once the lease lapses another node takes the queue over and matches the
// waiting tickets.
func TestAnotherNodeTakesOverAQueueWhenItsMatcherDies(t *testing.T) {
	w := newWorld(t)
	w.queue(duel)
	a := w.unstarted("a")
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a matches the queue", func() bool { return a.Matching("duel") })
	b := w.service("b")
	waitFor(t, b, "duel")
	// a dies: its goroutines end, its lease stays until it lapses.
	a.cancel()
	for _, stop := range a.stops {
		stop()
	}
	a.wg.Wait()
	for _, p := range []string{"u", "v"} {
		if _, err := b.Create(t.Context(), player(p, 1000), TicketRequest{Queue: "duel"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "b matches the waiting tickets", func() bool {
		return w.ticket("duel", "u").State == tandem.TicketMatched && w.ticket("duel", "v").State == tandem.TicketMatched
	})
	if !b.Matching("duel") {
		t.Error("b does not run the queue's matcher")
	}
}

// A commit the node refuses (an unknown room type, say) puts the tickets
// back, and new rooms wait out a backoff instead of claiming and
// releasing the same tickets every pass.
func TestFailedCommitsBackOff(t *testing.T) {
	w := newWorld(t)
	w.queue(tandem.MatchQueue{Name: "broken", RoomType: "no-such-type", Teams: 2, TeamSize: 1})
	s := w.service("a")
	waitFor(t, s, "broken")
	for _, p := range []string{"x", "y"} {
		if _, err := s.Create(t.Context(), player(p, 1000), TicketRequest{Queue: "broken"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "a room requested", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.rooms == 1
	})
	// The clock stands still: however many passes run, no second try.
	waitPasses(t, s, 5)
	w.mu.Lock()
	tries := w.rooms
	w.mu.Unlock()
	if tries != 1 {
		t.Errorf("%d room requests during the backoff, want 1", tries)
	}
	if x := w.ticket("broken", "x"); x.State != tandem.TicketSearching || x.MatchID != "" {
		t.Errorf("after the failed commit x is %s in %q, want searching", x.State, x.MatchID)
	}
	w.clock.Add(maxBackoff)
	eventually(t, "a second try after the backoff", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.rooms == 2
	})
}

// A ticket that changed since the matcher read it is read again and the
// decision made on what it is now.
func TestApplyDecidesAgainOnAChangedTicket(t *testing.T) {
	w := newWorld(t)
	// No matcher runs: the test plays one.
	s := w.unstarted("a")
	s.ctx, s.cancel = context.WithCancel(t.Context())
	defer s.cancel()
	if _, err := w.bus.CreateTicket(t.Context(), tandem.MatchTicket{ID: "t", Queue: "duel", PlayerID: "p", State: tandem.TicketSearching}); err != nil {
		t.Fatal(err)
	}
	stale := w.ticket("duel", "p")
	stale.State, stale.MatchID = tandem.TicketMatched, "m-1"
	stale.Seat = &tandem.MatchSeat{RoomID: "r"}
	stale, err := w.bus.UpdateTicket(t.Context(), stale)
	if err != nil {
		t.Fatal(err)
	}
	now := stale
	now.State = tandem.TicketSeated
	if _, err := w.bus.UpdateTicket(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	m := newMatcher(s, duel)
	var seen []tandem.TicketState
	got, ok := m.apply(stale, func(cur tandem.MatchTicket) (tandem.MatchTicket, bool) {
		seen = append(seen, cur.State)
		if cur.State == tandem.TicketSeated {
			return requeued(cur, w.clock.Now()), true
		}
		cur.State = tandem.TicketExpired
		return cur, true
	})
	if !ok || got.State != tandem.TicketSearching {
		t.Errorf("apply wrote %s (%v), want searching: decided on the seated ticket", got.State, ok)
	}
	if d := cmp.Diff([]tandem.TicketState{tandem.TicketMatched, tandem.TicketSeated}, seen); d != "" {
		t.Errorf("decisions (-want +got):\n%s", d)
	}
	// A ticket that left the match meanwhile is left alone.
	left := w.ticket("duel", "p")
	left.State, left.MatchID = tandem.TicketMatched, "m-2"
	if _, err := w.bus.UpdateTicket(t.Context(), left); err != nil {
		t.Fatal(err)
	}
	stale2 := left
	stale2.MatchID = "m-1"
	if _, ok := m.apply(stale2, func(cur tandem.MatchTicket) (tandem.MatchTicket, bool) { return requeued(cur, w.clock.Now()), true }); ok {
		t.Error("apply wrote a ticket that left the match")
	}
}

// Backfill offers a queue's settled rooms with the seats their players
// and the room's own limit leave.
func TestOpenRoomsCountTheRoomsOwnLimit(t *testing.T) {
	w := newWorld(t)
	q := tandem.MatchQueue{Name: "ffa", RoomType: "arena", MinPlayers: 2, MaxPlayers: 6, Backfill: true}
	s := w.unstarted("a")
	s.ctx, s.cancel = context.WithCancel(t.Context())
	defer s.cancel()
	m := newMatcher(s, q)
	put := func(r tandem.RoomEntry) {
		r.Node, r.Labels = "n1", map[string]string{LabelQueue: "ffa"}
		if err := w.bus.PutRoom(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	put(tandem.RoomEntry{ID: "small", Players: []string{"a", "b"}, MaxPlayers: 3}) // the room holds 3: 1 free
	put(tandem.RoomEntry{ID: "big", Players: []string{"c"}, MaxPlayers: 0})        // the queue's 6: 5 free
	put(tandem.RoomEntry{ID: "full", Players: []string{"d", "e"}, MaxPlayers: 2})  // none free
	put(tandem.RoomEntry{ID: "young", Players: []string{"f"}, MaxPlayers: 6})      // its match is not settled
	put(tandem.RoomEntry{ID: "locked", Players: []string{"g"}, MaxPlayers: 6, Locked: true})
	tickets := []tandem.MatchTicket{
		{Queue: "ffa", PlayerID: "f", State: tandem.TicketSeated, MatchID: "m", Seat: &tandem.MatchSeat{RoomID: "young"}},
		{Queue: "ffa", PlayerID: "h", State: tandem.TicketMatched, MatchID: "m2", Backfill: true, Seat: &tandem.MatchSeat{RoomID: "big"}},
	}
	free := map[string][]int{}
	for _, r := range m.openRooms(q, tickets, w.clock.Now()) {
		free[r.ID] = r.Free
	}
	// big: 6 - c - h's seat on its way.
	if d := cmp.Diff(map[string][]int{"small": {1}, "big": {4}}, free); d != "" {
		t.Errorf("open rooms' free seats (-want +got):\n%s", d)
	}
}

// flakyBus fails the write that would make one player's ticket matched.
type flakyBus struct {
	*natsbus.Bus
	mu   sync.Mutex
	fail string
}

func (f *flakyBus) UpdateTicket(ctx context.Context, t tandem.MatchTicket) (tandem.MatchTicket, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if t.PlayerID == fail && t.State == tandem.TicketMatched {
		return t, tandem.Errorf(tandem.EUnavailable, "the bus lost this write")
	}
	return f.Bus.UpdateTicket(ctx, t)
}

// A new room's match is all or nothing: when one player's seat cannot be
// written, the others go back to the queue and the room is closed; the
// left-over claim is released after the claim timeout, and they match again.
func TestAMatchWithASeatNotWrittenIsUndone(t *testing.T) {
	w := newWorld(t)
	w.queue(duel)
	bus := &flakyBus{Bus: w.bus, fail: "y"}
	s := New(Config{Node: "a", Bus: bus, Cluster: w.bus, Now: w.clock.Now, Tick: 20 * time.Millisecond,
		Emit: func(e tandem.Event) { w.mu.Lock(); w.events = append(w.events, e); w.mu.Unlock() }})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	waitFor(t, s, "duel")
	for _, p := range []string{"x", "y"} {
		if _, err := s.Create(t.Context(), player(p, 1000), TicketRequest{Queue: "duel"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the room closed", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return slices.ContainsFunc(w.commands, func(c tandem.Command) bool { return c.Kind == tandem.CommandCloseRoom })
	})
	if x := w.ticket("duel", "x"); x.State != tandem.TicketSearching || x.MatchID != "" {
		t.Errorf("x is %s in %q, want back to searching", x.State, x.MatchID)
	}
	if y := w.ticket("duel", "y"); y.State != tandem.TicketClaimed {
		t.Errorf("y is %s, want still claimed (its seat was not written)", y.State)
	}
	if n := len(w.matches()); n != 0 {
		t.Errorf("%d match events for a match undone, want 0", n)
	}
	bus.mu.Lock()
	bus.fail = ""
	bus.mu.Unlock()
	w.clock.Add(10 * time.Second)
	eventually(t, "both matched again", func() bool {
		return w.ticket("duel", "x").State == tandem.TicketMatched && w.ticket("duel", "y").State == tandem.TicketMatched
	})
}

// A session that ends right after creating a ticket finds it: the node
// knows its own tickets before the watch brings them.
func TestASessionEndingAtOnceCancelsTheTicketItJustMade(t *testing.T) {
	w := newWorld(t)
	w.queue(duel)
	s := w.unstarted("a")
	s.cfg.Tick = time.Hour // the front alone
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	waitFor(t, s, "duel")
	for i := range 20 {
		p := fmt.Sprintf("p%d", i)
		if _, err := s.Create(t.Context(), player(p, 1000), TicketRequest{Queue: "duel", Session: "s-" + p}); err != nil {
			t.Fatal(err)
		}
		s.SessionEnded(t.Context(), p, "s-"+p)
		if got := w.ticket("duel", p); got.State != tandem.TicketCancelled {
			t.Fatalf("%s's ticket is %s after its session ended, want cancelled", p, got.State)
		}
	}
}
