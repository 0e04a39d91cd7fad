package matchmaker

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/tandemhq/tandem"
)

// The queue shapes the property tests and benchmarks run over.
var (
	skillRule = tandem.MatchRule{Property: "skill", Kind: tandem.RuleRange, Base: 50, Step: 25, EveryMS: 5000, Max: 400}
	duel      = tandem.MatchQueue{Name: "duel", RoomType: "duel", Teams: 2, TeamSize: 1,
		Rules: []tandem.MatchRule{{Property: "region", Kind: tandem.RuleEqual}, skillRule}}
	squads = tandem.MatchQueue{Name: "squads", RoomType: "arena", Teams: 2, TeamSize: 3,
		Rules: []tandem.MatchRule{{Property: "region", Kind: tandem.RuleEqual}, skillRule}}
	brawl = tandem.MatchQueue{Name: "brawl", RoomType: "brawl", MinPlayers: 2, MaxPlayers: 8, FillWaitMS: 10_000,
		Rules: []tandem.MatchRule{{Property: "mode", Kind: tandem.RuleEqual}}}
	// race: free-for-all with a range rule, so that the ranged scan runs
	// without teams too.
	race = tandem.MatchQueue{Name: "race", RoomType: "race", MinPlayers: 3, MaxPlayers: 6, FillWaitMS: 20_000,
		Rules: []tandem.MatchRule{{Property: "mode", Kind: tandem.RuleEqual},
			{Property: "skill", Kind: tandem.RuleRange, Base: 100, Step: 50, EveryMS: 4000, Max: 600}}}
)

var (
	regions   = []string{"eu", "us", "asia"}
	modes     = []string{"classic", "chaos"}
	platforms = []string{"pc", "console", "mobile"}
	maps      = []string{"docks", "dunes", "keep", "tundra"}
	// termWeights: weights BuildTicket accepts, from its least (0 counts as 1) to its most.
	termWeights = []float64{0, 0.25, 1, 2, 3.5, 40, 999.75, 1000}
)

var epoch = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// gen makes random tickets for a queue.
type gen struct {
	r         *rand.Rand
	q         tandem.MatchQueue
	now       time.Time
	maxWait   time.Duration
	skillSD   float64
	termOdds  float64 // chance of each kind of random term
	parties   bool
	otherOdds float64 // chance of a ticket not searching or of another queue
	// varied: optional terms weigh from 0 to 1000 (not 0 to 2), required
	// terms bound skill from above too and name maps, and some parties
	// disagree on their size. The benchmarks leave it off, so that their figures compare
	// with earlier ones.
	varied bool
	n      int
}

func (g *gen) ticket() tandem.MatchTicket {
	g.n++
	t := tandem.MatchTicket{
		ID:        fmt.Sprintf("t%05d", g.n),
		Queue:     g.q.Name,
		PlayerID:  fmt.Sprintf("p%05d", g.n),
		Strings:   map[string]string{},
		Numbers:   map[string]float64{},
		CreatedAt: g.now.Add(-time.Duration(g.r.Int64N(int64(g.maxWait)))).Truncate(time.Millisecond),
		State:     tandem.TicketSearching,
	}
	if g.r.Float64() < 0.95 {
		t.Strings["region"] = regions[g.r.IntN(len(regions))]
	}
	t.Strings["mode"] = modes[g.r.IntN(len(modes))]
	t.Strings["platform"] = platforms[g.r.IntN(len(platforms))]
	if g.r.Float64() < 0.97 {
		t.Numbers["skill"] = math.Round(1500 + g.r.NormFloat64()*g.skillSD)
	}
	if g.r.Float64() < g.termOdds {
		t.Must = append(t.Must, tandem.MatchTerm{Property: "platform", OneOf: pick(g.r, platforms, 2)})
	}
	if g.r.Float64() < g.termOdds/2 {
		lo := 1200 + float64(g.r.IntN(300))
		t.Must = append(t.Must, tandem.MatchTerm{Property: "skill", Min: &lo})
	}
	if g.varied && g.r.Float64() < g.termOdds/2 {
		hi := 1500 + float64(g.r.IntN(400))
		t.Must = append(t.Must, tandem.MatchTerm{Property: "skill", Max: &hi})
	}
	if g.varied {
		// A map most have, required by some with one or two values (or
		// one twice): a required one_of more selective than the
		// platform's, so that anchors choose between the two.
		if g.r.Float64() < 0.9 {
			t.Strings["map"] = maps[g.r.IntN(len(maps))]
		}
		if g.r.Float64() < g.termOdds {
			oneOf := pick(g.r, maps, 1+g.r.IntN(2))
			if g.r.IntN(4) == 0 {
				oneOf = append(oneOf, oneOf[0])
			}
			t.Must = append(t.Must, tandem.MatchTerm{Property: "map", OneOf: oneOf})
		}
	}
	if g.r.Float64() < g.termOdds {
		w := float64(g.r.IntN(3))
		if g.varied {
			w = termWeights[g.r.IntN(len(termWeights))]
		}
		t.Should = append(t.Should, tandem.MatchTerm{Property: "platform", OneOf: pick(g.r, platforms, 1), Weight: w})
	}
	if g.r.Float64() < g.termOdds/2 {
		hi := 1500 + float64(g.r.IntN(300))
		w := 2.0
		if g.varied {
			w = termWeights[g.r.IntN(len(termWeights))]
		}
		t.Should = append(t.Should, tandem.MatchTerm{Property: "skill", Max: &hi, Weight: w})
	}
	switch x := g.r.Float64(); {
	case x < g.otherOdds/2:
		t.State = []tandem.TicketState{tandem.TicketClaimed, tandem.TicketMatched, tandem.TicketCancelled}[g.r.IntN(3)]
	case x < g.otherOdds:
		t.Queue = "elsewhere"
	}
	return t
}

func pick(r *rand.Rand, from []string, n int) []string {
	p := r.Perm(len(from))[:n]
	out := make([]string, n)
	for i, j := range p {
		out[i] = from[j]
	}
	return out
}

// tickets makes n tickets (counting party members); with parties, about a
// third come in parties of 2–3 (at most a team, or a free-for-all match),
// some incomplete, some with one ticket too many and, varied, some whose
// last member says another size.
func (g *gen) tickets(n int) []tandem.MatchTicket {
	limit := g.q.TeamSize
	if g.q.Teams == 0 {
		limit = g.q.MaxPlayers
	}
	var ts []tandem.MatchTicket
	for len(ts) < n {
		t := g.ticket()
		if !g.parties || g.r.IntN(3) > 0 {
			ts = append(ts, t)
			continue
		}
		size := 2 + g.r.IntN(min(2, limit-1))
		have, lastSize := size, size
		switch g.r.IntN(6) {
		case 0:
			have = size - 1
		case 1:
			have = size + 1
		case 2:
			if g.varied {
				lastSize = size + 1
			}
		}
		t.Party, t.PartySize = "party-"+t.ID, size
		ts = append(ts, t)
		for i := range have - 1 {
			o := g.ticket()
			o.Party, o.PartySize = t.Party, size
			if i == have-2 {
				o.PartySize = lastSize
			}
			o.Strings["region"], o.Numbers["skill"] = t.Strings["region"], t.Numbers["skill"]+float64(g.r.IntN(40)-20)
			if g.varied {
				o.Strings["mode"] = t.Strings["mode"] // so that free-for-all parties can match
			}
			ts = append(ts, o)
		}
	}
	return ts
}

// rooms makes open rooms of the queue with a member or two and random free
// seats.
func (g *gen) rooms(n int) []OpenRoom {
	rs := make([]OpenRoom, n)
	for i := range rs {
		r := OpenRoom{ID: fmt.Sprintf("room%03d", i), CreatedAt: g.now.Add(-time.Duration(g.r.IntN(600)) * time.Second)}
		for range 1 + g.r.IntN(2) {
			t := g.ticket()
			t.State, t.Must, t.Should = tandem.TicketSeated, nil, nil
			r.Members = append(r.Members, t)
		}
		if g.q.Teams == 0 {
			r.Free = []int{g.r.IntN(4)}
		} else {
			r.Free = make([]int, g.q.Teams)
			for j := range r.Free {
				r.Free[j] = g.r.IntN(g.q.TeamSize + 1)
			}
		}
		rs[i] = r
	}
	return rs
}
