package matchmaker

import (
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
