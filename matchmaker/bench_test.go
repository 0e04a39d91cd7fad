package matchmaker

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
)

// BenchmarkRun: 10,000 waiting tickets over the four queue shapes, spread
// so that most match (skill ±300 around 1500, waits up to a minute, some
// terms and parties).
func BenchmarkRun(b *testing.B) {
	benchRun(b, []tandem.MatchQueue{duel, squads, brawl, race}, 300, 0.1)
}

// BenchmarkRunFewMatch: the worst common case, where few can match: a wide
// skill spread and narrow windows that hardly widen, so every anchor scans
// its window and finds nobody.
func BenchmarkRunFewMatch(b *testing.B) {
	narrow := func(q tandem.MatchQueue) tandem.MatchQueue {
		q.Rules = []tandem.MatchRule{{Property: "region", Kind: tandem.RuleEqual},
			{Property: "skill", Kind: tandem.RuleRange, Base: 2, Step: 1, EveryMS: 60_000, Max: 4}}
		q.FillWaitMS = 3_600_000
		return q
	}
	benchRun(b, []tandem.MatchQueue{narrow(duel), narrow(squads), narrow(brawl), narrow(race)}, 5000, 0.5)
}

func benchRun(b *testing.B, queues []tandem.MatchQueue, skillSD, termOdds float64) {
	const n = 10_000
	r := rand.New(rand.NewPCG(1, 2))
	tickets := make([][]tandem.MatchTicket, len(queues))
	for i, q := range queues {
		g := &gen{r: r, q: q, now: epoch, maxWait: time.Minute, skillSD: skillSD, termOdds: termOdds,
			parties: q.Teams > 0 && q.TeamSize > 1}
		tickets[i] = g.tickets(n / len(queues))
	}
	var matched int
	b.ReportAllocs()
	for b.Loop() {
		matched = 0
		for i, q := range queues {
			for _, m := range Run(q, epoch, tickets[i], nil) {
				for _, team := range m.Teams {
					matched += len(team)
				}
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tickets/s")
	b.ReportMetric(100*float64(matched)/n, "%matched")
}

// BenchmarkRunRequiredTerms: the worst case of required terms: 10,000
// tickets of one region in a 1v1 queue, each requiring its own map out of
// 2,000, so that an anchor's partition holds thousands of candidates of
// which a handful are compatible.
func BenchmarkRunRequiredTerms(b *testing.B) {
	const n, maps = 10_000, 2_000
	q := tandem.MatchQueue{Name: "maps", RoomType: "duel", Teams: 2, TeamSize: 1,
		Rules: []tandem.MatchRule{{Property: "region", Kind: tandem.RuleEqual}}}
	r := rand.New(rand.NewPCG(1, 2))
	tickets := make([]tandem.MatchTicket, n)
	for i := range tickets {
		m := fmt.Sprintf("map%04d", r.IntN(maps))
		tickets[i] = tandem.MatchTicket{ID: fmt.Sprintf("t%05d", i), Queue: q.Name, PlayerID: fmt.Sprintf("p%05d", i),
			State: tandem.TicketSearching, CreatedAt: epoch.Add(-time.Duration(r.Int64N(int64(time.Minute)))),
			Strings: map[string]string{"region": "eu", "map": m},
			Must:    []tandem.MatchTerm{{Property: "map", OneOf: []string{m}}}}
	}
	var matched int
	b.ReportAllocs()
	for b.Loop() {
		matched = 0
		for _, m := range Run(q, epoch, tickets, nil) {
			matched += len(m.Teams[0]) + len(m.Teams[1])
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tickets/s")
	b.ReportMetric(100*float64(matched)/n, "%matched")
}
