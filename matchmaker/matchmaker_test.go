package matchmaker

import (
	"math"
	"math/rand/v2"
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
			parties: q.Teams > 0 && q.TeamSize > 1, otherOdds: 0.1}
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

// checkMatches checks the matches ms of a run against the rules.
func checkMatches(t *testing.T, seed uint64, q tandem.MatchQueue, now time.Time, ts []tandem.MatchTicket, open []OpenRoom, ms []Match) {
	t.Helper()
	byID := map[string]tandem.MatchTicket{}
	partyCount := map[string]int{}
	for _, tk := range ts {
		byID[tk.ID] = tk
	}
	rooms := map[string]*OpenRoom{}
	for i := range open {
		o := open[i]
		o.Members, o.Free = slices.Clone(o.Members), slices.Clone(o.Free)
		rooms[o.ID] = &o
	}
	seen := map[string]bool{}
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
				}
				seen[tk.ID] = true
				if tk.Party != "" {
					if pt, ok := partyTeam[tk.Party]; ok && pt != team {
						t.Errorf("seed %d match %d: party %s is split over teams", seed, mi, tk.Party)
					}
					partyTeam[tk.Party] = team
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
	for p, n := range partyCount {
		var size int
		var members []tandem.MatchTicket
		for _, tk := range ts {
			if tk.Party == p && tk.State == tandem.TicketSearching && tk.Queue == q.Name {
				members = append(members, tk)
			}
		}
		slices.SortFunc(members, func(a, b tandem.MatchTicket) int { return compareTickets(&a, &b) })
		size = members[0].PartySize
		if n != size {
			t.Errorf("seed %d: party %s matched with %d of its %d tickets", seed, p, n, size)
		}
	}
}

func checkSizes(t *testing.T, seed uint64, mi int, q tandem.MatchQueue, now time.Time, m Match) {
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
func checkPair(t *testing.T, seed uint64, mi int, q tandem.MatchQueue, now time.Time, a, b tandem.MatchTicket) {
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
			if len(term.OneOf) > 0 && !slices.Contains(term.OneOf, x[1].Strings[term.Property]) {
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
	} {
		if got := Window(c.r, c.wait); got != c.want {
			t.Errorf("Window(%+v, %v) = %v, want %v", c.r, c.wait, got, c.want)
		}
	}
}
