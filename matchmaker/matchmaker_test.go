package matchmaker

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
)

// TestRunKeepsEveryInvariantOverRandomTickets runs a few hundred random
// ticket sets through every queue shape, with and without backfill, and
// checks each result against the rules directly (not through the
// matcher's own code), and that shuffling the input changes nothing.
func TestRunKeepsEveryInvariantOverRandomTickets(t *testing.T) {
	queues := []tandem.MatchQueue{duel, squads, brawl, race}
	var matched, total int
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 7))
		q := queues[seed%uint64(len(queues))]
		q.Backfill = seed%3 == 0
		g := &gen{r: r, q: q, now: epoch, maxWait: time.Duration(5+r.IntN(90)) * time.Second,
			skillSD: float64(50 + r.IntN(400)), termOdds: r.Float64() * 0.5,
			parties: q.Teams == 0 || q.TeamSize > 1, varied: true, otherOdds: 0.1}
		ts := g.tickets(r.IntN(80))
		var open []OpenRoom
		if q.Backfill {
			open = g.rooms(r.IntN(5))
		}
		ms := Run(q, epoch, ts, open)
		checkMatches(t, seed, q, epoch, ts, open, ms)
		for _, m := range ms {
			for _, team := range m.Teams {
				matched += len(team)
			}
		}
		total += len(ts)

		shuffled := shuffle(r, ts, open)
		if diff := cmp.Diff(ms, Run(q, epoch, shuffled, shuffledRooms(r, open))); diff != "" {
			t.Errorf("seed %d: shuffled input gives other matches (-first +shuffled):\n%s", seed, diff)
		}
		if !q.Backfill && q.Name == duel.Name {
			checkNoPairLeft(t, seed, q, epoch, ts, ms)
		}
	}
	// Guard against a vacuous pass: the sets are built so that many match.
	if matched < total/4 {
		t.Errorf("only %d of %d tickets matched", matched, total)
	}
}

func shuffle(r *rand.Rand, ts []tandem.MatchTicket, _ []OpenRoom) []tandem.MatchTicket {
	s := slices.Clone(ts)
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

func shuffledRooms(r *rand.Rand, open []OpenRoom) []OpenRoom {
	s := slices.Clone(open)
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

// reporter is what the checks report to: a *testing.T, or a recorder in
// the tests of the checks themselves.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// checkMatches checks the matches ms of a run against the rules.
func checkMatches(t reporter, seed uint64, q tandem.MatchQueue, now time.Time, ts []tandem.MatchTicket, open []OpenRoom, ms []Match) {
	t.Helper()
	byID := map[string]tandem.MatchTicket{}
	partyCount := map[string]int{}
	partyMatch := map[string]int{} // the match a party is in
	for _, tk := range ts {
		byID[tk.ID] = tk
	}
	rooms := map[string]*OpenRoom{}
	for i := range open {
		o := open[i]
		o.Members, o.Free = slices.Clone(o.Members), slices.Clone(o.Free)
		rooms[o.ID] = &o
	}
	seen, seenPlayer := map[string]bool{}, map[string]bool{}
	for mi, m := range ms {
		var all []tandem.MatchTicket
		partyTeam := map[string]int{}
		for team, tks := range m.Teams {
			for _, tk := range tks {
				in, ok := byID[tk.ID]
				switch {
				case !ok:
					t.Fatalf("seed %d match %d: ticket %s was not given", seed, mi, tk.ID)
				case in.State != tandem.TicketSearching || in.Queue != q.Name:
					t.Errorf("seed %d match %d: ticket %s is %s in queue %s", seed, mi, tk.ID, in.State, in.Queue)
				case seen[tk.ID]:
					t.Errorf("seed %d match %d: ticket %s is in two matches", seed, mi, tk.ID)
				case seenPlayer[tk.PlayerID]:
					t.Errorf("seed %d match %d: player %s is in two matches", seed, mi, tk.PlayerID)
				}
				seen[tk.ID], seenPlayer[tk.PlayerID] = true, true
				if tk.Party != "" {
					if pt, ok := partyTeam[tk.Party]; ok && pt != team {
						t.Errorf("seed %d match %d: party %s is split over teams", seed, mi, tk.Party)
					}
					if pm, ok := partyMatch[tk.Party]; ok && pm != mi {
						t.Errorf("seed %d match %d: party %s is in match %d too", seed, mi, tk.Party, pm)
					}
					partyTeam[tk.Party], partyMatch[tk.Party] = team, mi
					partyCount[tk.Party]++
				}
				all = append(all, tk)
			}
		}
		if m.RoomID == "" {
			checkSizes(t, seed, mi, q, now, m)
		} else {
			o := rooms[m.RoomID]
			if o == nil {
				t.Fatalf("seed %d match %d: backfill of unknown room %s", seed, mi, m.RoomID)
			}
			if len(m.Teams) != len(o.Free) && !(q.Teams == 0 && len(m.Teams) == 1) {
				t.Errorf("seed %d match %d: %d teams for a room with %d", seed, mi, len(m.Teams), len(o.Free))
			}
			for team, tks := range m.Teams {
				if len(tks) > o.Free[team] {
					t.Errorf("seed %d match %d: %d tickets into team %d of room %s with %d free", seed, mi, len(tks), team, o.ID, o.Free[team])
				}
				o.Free[team] -= len(tks)
			}
			for _, tk := range all {
				for _, mem := range o.Members {
					checkPair(t, seed, mi, q, now, tk, mem)
				}
			}
			o.Members = append(o.Members, all...)
		}
		for i, a := range all {
			for _, b := range all[i+1:] {
				if a.Party == "" || a.Party != b.Party {
					checkPair(t, seed, mi, q, now, a, b)
				}
			}
		}
	}
	// A matched party is whole: all its searching tickets, exactly its
	// size, all agreeing on it.
	for p, n := range partyCount {
		var members []tandem.MatchTicket
		for _, tk := range ts {
			if tk.Party == p && tk.State == tandem.TicketSearching && tk.Queue == q.Name {
				members = append(members, tk)
			}
		}
		if n != len(members) {
			t.Errorf("seed %d: party %s matched with %d of its %d tickets", seed, p, n, len(members))
		}
		for _, tk := range members {
			if tk.PartySize != len(members) {
				t.Errorf("seed %d: party %s of %d tickets matched, but %s says its size is %d", seed, p, len(members), tk.ID, tk.PartySize)
			}
		}
	}
}

func checkSizes(t reporter, seed uint64, mi int, q tandem.MatchQueue, now time.Time, m Match) {
	t.Helper()
	if q.Teams > 0 {
		if len(m.Teams) != q.Teams {
			t.Errorf("seed %d match %d: %d teams, want %d", seed, mi, len(m.Teams), q.Teams)
		}
		for i, team := range m.Teams {
			if len(team) != q.TeamSize {
				t.Errorf("seed %d match %d: team %d has %d players, want %d", seed, mi, i, len(team), q.TeamSize)
			}
		}
		return
	}
	if len(m.Teams) != 1 {
		t.Fatalf("seed %d match %d: %d teams in a free-for-all", seed, mi, len(m.Teams))
	}
	n := len(m.Teams[0])
	if n < q.MinPlayers || n > q.MaxPlayers {
		t.Errorf("seed %d match %d: %d players, want %d to %d", seed, mi, n, q.MinPlayers, q.MaxPlayers)
	}
	if n < q.MaxPlayers {
		oldest := m.Teams[0][0].CreatedAt
		for _, tk := range m.Teams[0] {
			if tk.CreatedAt.Before(oldest) {
				oldest = tk.CreatedAt
			}
		}
		if now.Sub(oldest) < time.Duration(q.FillWaitMS)*time.Millisecond {
			t.Errorf("seed %d match %d: %d players before the fill wait", seed, mi, n)
		}
	}
}

// checkPair checks that a and b may play together, from the rules as
// written.
func checkPair(t reporter, seed uint64, mi int, q tandem.MatchQueue, now time.Time, a, b tandem.MatchTicket) {
	t.Helper()
	if why := pairFails(q, now, a, b); why != "" {
		t.Errorf("seed %d match %d: %s and %s: %s", seed, mi, a.ID, b.ID, why)
	}
}

func pairFails(q tandem.MatchQueue, now time.Time, a, b tandem.MatchTicket) string {
	for _, r := range q.Rules {
		switch r.Kind {
		case tandem.RuleEqual:
			va, oka := a.Strings[r.Property]
			vb, okb := b.Strings[r.Property]
			if oka != okb || va != vb {
				return "rule " + r.Property + " fails"
			}
		case tandem.RuleRange:
			va, oka := a.Numbers[r.Property]
			vb, okb := b.Numbers[r.Property]
			if oka != okb {
				return "rule " + r.Property + ": only one has it"
			}
			d := math.Abs(va - vb)
			if oka && (d > Window(r, now.Sub(a.CreatedAt)) || d > Window(r, now.Sub(b.CreatedAt))) {
				return "rule " + r.Property + ": too far apart"
			}
		}
	}
	for _, x := range [][2]tandem.MatchTicket{{a, b}, {b, a}} {
		for _, term := range x[0].Must {
			if s, ok := x[1].Strings[term.Property]; len(term.OneOf) > 0 && (!ok || !slices.Contains(term.OneOf, s)) {
				return "required one_of on " + term.Property + " fails"
			}
			n, ok := x[1].Numbers[term.Property]
			if (term.Min != nil || term.Max != nil) && !ok ||
				term.Min != nil && n < *term.Min || term.Max != nil && n > *term.Max {
				return "required range on " + term.Property + " fails"
			}
		}
	}
	return ""
}

// checkNoPairLeft checks, for a 1v1 queue, that the greedy run left no two
// compatible searching tickets unmatched.
func checkNoPairLeft(t *testing.T, seed uint64, q tandem.MatchQueue, now time.Time, ts []tandem.MatchTicket, ms []Match) {
	t.Helper()
	placed := map[string]bool{}
	for _, m := range ms {
		for _, team := range m.Teams {
			for _, tk := range team {
				placed[tk.ID] = true
			}
		}
	}
	var left []tandem.MatchTicket
	for _, tk := range ts {
		if !placed[tk.ID] && tk.State == tandem.TicketSearching && tk.Queue == q.Name {
			left = append(left, tk)
		}
	}
	for i, a := range left {
		for _, b := range left[i+1:] {
			if pairFails(q, now, a, b) == "" {
				t.Errorf("seed %d: %s and %s could play but were left", seed, a.ID, b.ID)
			}
		}
	}
}

// TestRangeRuleWidensUntilTheExactMoment: 300 apart, base 50, +25 every
// 5 s: the window reaches 300 after 10 steps, 50 s. The later ticket
// decides.
func TestRangeRuleWidensUntilTheExactMoment(t *testing.T) {
	a := tandem.MatchTicket{ID: "a", Queue: duel.Name, State: tandem.TicketSearching, CreatedAt: epoch,
		Numbers: map[string]float64{"skill": 1000}}
	b := tandem.MatchTicket{ID: "b", Queue: duel.Name, State: tandem.TicketSearching, CreatedAt: epoch.Add(7 * time.Second),
		Numbers: map[string]float64{"skill": 1300}}
	matchAt := epoch.Add(7*time.Second + 50*time.Second)
	for _, c := range []struct {
		name  string
		at    time.Time
		match bool
	}{
		{"at 0 s", b.CreatedAt, false},
		{"just before", matchAt.Add(-time.Millisecond), false},
		{"at the moment", matchAt, true},
		{"later", matchAt.Add(time.Hour), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ms := Run(duel, c.at, []tandem.MatchTicket{b, a}, nil)
			if got := len(ms) == 1; got != c.match {
				t.Fatalf("matched: %v, want %v (%v)", got, c.match, ms)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	for _, c := range []struct {
		r    tandem.MatchRule
		wait time.Duration
		want float64
	}{
		{skillRule, 0, 50},
		{skillRule, 4999 * time.Millisecond, 50},
		{skillRule, 5 * time.Second, 75},
		{skillRule, 49 * time.Second, 275},
		{skillRule, time.Hour, 400},
		{skillRule, -time.Minute, 50},
		{tandem.MatchRule{Base: 10, Step: 5, EveryMS: 1000}, time.Hour, 10 + 5*3600},
		{tandem.MatchRule{Base: 10, Step: 5}, time.Hour, 10},
		{tandem.MatchRule{Base: 10, Step: 5, EveryMS: 1000}, -time.Hour, 10},
		// A Duration of 2^58 ms is 0: Window used to divide by it.
		{tandem.MatchRule{Base: 10, Step: 5, EveryMS: 1 << 58}, time.Hour, 10},
		{tandem.MatchRule{Base: 10, Step: 5, EveryMS: 1 << 58}, time.Duration(math.MaxInt64), 10},
		{tandem.MatchRule{Base: 10, Step: 1, EveryMS: 1}, time.Duration(math.MaxInt64), 10 + float64(math.MaxInt64/1_000_000)},
	} {
		if got := Window(c.r, c.wait); got != c.want {
			t.Errorf("Window(%+v, %v) = %v, want %v", c.r, c.wait, got, c.want)
		}
	}
}

// recorder is a reporter that keeps what the checks report. Fatalf ends
// the goroutine the check runs in, as testing.T's does.
type recorder struct{ failures []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// failures runs check with a recorder and returns what it reported.
func failures(check func(reporter)) []string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.failures
}

func TestCheckMatchesCatchesAPartyOrAPlayerInTwoMatches(t *testing.T) {
	q := tandem.MatchQueue{Name: "q", MinPlayers: 2, MaxPlayers: 2}
	member := func(id string) tandem.MatchTicket {
		tk := searching(id, time.Second, nil, nil)
		tk.Party, tk.PartySize = "x", 2
		return tk
	}
	p1, p2, s1, s2 := member("p1"), member("p2"), searching("s1", 0, nil, nil), searching("s2", 0, nil, nil)
	ts := []tandem.MatchTicket{p1, p2, s1, s2}
	whole := []Match{{Teams: [][]tandem.MatchTicket{{p1, p2}}}, {Teams: [][]tandem.MatchTicket{{s1, s2}}}}
	if got := failures(func(r reporter) { checkMatches(r, 0, q, epoch, ts, nil, whole) }); len(got) != 0 {
		t.Fatalf("a good run fails the checks: %q", got)
	}
	split := []Match{{Teams: [][]tandem.MatchTicket{{p1, s1}}}, {Teams: [][]tandem.MatchTicket{{p2, s2}}}}
	if got := failures(func(r reporter) { checkMatches(r, 0, q, epoch, ts, nil, split) }); len(got) == 0 {
		t.Errorf("a party split over two matches passes the checks")
	}
	again, s3 := s2, searching("s3", 0, nil, nil)
	again.ID = "s2-again" // another ticket of s2's player
	twice := []Match{{Teams: [][]tandem.MatchTicket{{s1, s2}}}, {Teams: [][]tandem.MatchTicket{{again, s3}}}}
	if got := failures(func(r reporter) { checkMatches(r, 0, q, epoch, append(ts, again, s3), nil, twice) }); len(got) == 0 {
		t.Errorf("a player in two matches passes the checks")
	}
}
