package matchmaker

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
)

// TestRunMatchesTheGreedyAsWritten compares Run with a plain, slow reading
// of the greedy: every unplaced unit is a candidate and is checked with the
// rules as written, so that partitions, windows and the cheaper scan
// orders change nothing.
func TestRunMatchesTheGreedyAsWritten(t *testing.T) {
	queues := []tandem.MatchQueue{duel, squads, brawl, race}
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 11))
		q := queues[seed%uint64(len(queues))]
		q.Backfill = seed%5 == 0
		g := &gen{r: r, q: q, now: epoch, maxWait: time.Duration(5+r.IntN(90)) * time.Second,
			skillSD: float64(50 + r.IntN(400)), termOdds: r.Float64() * 0.4,
			parties: q.Teams == 0 || q.TeamSize > 1, varied: true, otherOdds: 0.05}
		ts := g.tickets(r.IntN(300))
		var open []OpenRoom
		if q.Backfill {
			open = g.rooms(r.IntN(6))
		}
		if diff := gocmp.Diff(greedy(q, epoch, ts, open), Run(q, epoch, ts, open)); diff != "" {
			t.Fatalf("seed %d: Run differs from the greedy as written (-want +got):\n%s", seed, diff)
		}
	}
}

func greedy(q tandem.MatchQueue, now time.Time, ts []tandem.MatchTicket, open []OpenRoom) []Match {
	// Units as Run forms them (that part is plain already).
	m := newMatcher(q, now)
	m.addUnits(ts)
	type refUnit struct {
		ts     []tandem.MatchTicket
		placed bool
	}
	units := make([]*refUnit, len(m.units))
	for i, u := range m.units {
		units[i] = &refUnit{ts: tickets(u.members)}
	}
	ok := func(as, bs []tandem.MatchTicket) bool {
		for _, a := range as {
			for _, b := range bs {
				if pairFails(q, now, a, b) != "" {
					return false
				}
			}
		}
		return true
	}
	rooms := slices.Clone(open)
	for i := range rooms {
		rooms[i].Free, rooms[i].Members = slices.Clone(rooms[i].Free), slices.Clone(rooms[i].Members)
		if q.Teams == 0 {
			rooms[i].Free = rooms[i].Free[:min(1, len(rooms[i].Free))]
		}
	}
	slices.SortFunc(rooms, func(a, b OpenRoom) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	emptyTeams := func(n int) [][]tandem.MatchTicket {
		teams := make([][]tandem.MatchTicket, n)
		for i := range teams {
			teams[i] = []tandem.MatchTicket{}
		}
		return teams
	}
	var out []Match
next:
	for _, a := range units {
		if a.placed {
			continue
		}
		if q.Backfill {
			for i := range rooms {
				o := &rooms[i]
				if team := fit(o.Free, len(a.ts)); team >= 0 && ok(a.ts, o.Members) {
					a.placed = true
					o.Free[team] -= len(a.ts)
					o.Members = append(o.Members, a.ts...)
					match := Match{RoomID: o.ID, Teams: emptyTeams(len(o.Free))}
					match.Teams[team] = a.ts
					out = append(out, match)
					continue next
				}
			}
		}
		type cand struct {
			u     *refUnit
			score float64
			order int
		}
		var cs []cand
		for i, c := range units {
			if c != a && !c.placed && ok(a.ts, c.ts) {
				var s float64
				for _, x := range a.ts {
					for _, y := range c.ts {
						s += weights(x.Should, &y) + weights(y.Should, &x)
					}
				}
				cs = append(cs, cand{c, s, i})
			}
		}
		slices.SortFunc(cs, func(x, y cand) int { return cmp.Or(cmp.Compare(y.score, x.score), cmp.Compare(x.order, y.order)) })
		b := &building{free: []int{q.MaxPlayers}}
		if q.Teams > 0 {
			b.free = slices.Repeat([]int{q.TeamSize}, q.Teams)
		}
		var chosen []*refUnit
		var teams []int
		add := func(u *refUnit) {
			if team := fit(b.free, len(u.ts)); team >= 0 {
				b.free[team] -= len(u.ts)
				chosen, teams = append(chosen, u), append(teams, team)
			}
		}
		add(a)
		if len(chosen) == 0 {
			continue
		}
	cands:
		for _, c := range cs {
			if b.full() {
				break
			}
			for _, u := range chosen {
				if !ok(u.ts, c.u.ts) {
					continue cands
				}
			}
			add(c.u)
		}
		// The oldest ticket of the match: not always the anchor's, as an
		// older anchor may have failed to fill its match.
		oldest := a.ts[0].CreatedAt
		for _, u := range chosen {
			for _, tk := range u.ts {
				if tk.CreatedAt.Before(oldest) {
					oldest = tk.CreatedAt
				}
			}
		}
		short := q.Teams == 0 && q.MaxPlayers-b.free[0] >= q.MinPlayers && now.Sub(oldest) >= time.Duration(q.FillWaitMS)*time.Millisecond
		if !b.full() && !short {
			continue
		}
		match := Match{Teams: emptyTeams(len(b.free))}
		for i, u := range chosen {
			u.placed = true
			match.Teams[teams[i]] = append(match.Teams[teams[i]], u.ts...)
		}
		out = append(out, match)
	}
	return out
}
