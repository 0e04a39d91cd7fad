package service

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tandemhq/tandem"
)

// BenchmarkMatchThroughJetStream: 10k tickets waiting in four queues on
// an embedded nats-server when the matchers start; how fast they are
// matched and committed (claims, room requests, seats: every step a
// JetStream write), the time to the first match and the matcher passes'
// time. Run it once per figure:
//
//	go test -run XXX -bench MatchThroughJetStream -benchtime 1x ./matchmaker/service/
func BenchmarkMatchThroughJetStream(b *testing.B) {
	const n = 10_000
	queues := []tandem.MatchQueue{
		{Name: "duel", RoomType: "arena", Teams: 2, TeamSize: 1,
			Rules: []tandem.MatchRule{{Property: "skill", Kind: tandem.RuleRange, Base: 100, Step: 50, EveryMS: 1000, Max: 400}}},
		{Name: "squads", RoomType: "arena", Teams: 2, TeamSize: 4,
			Rules: []tandem.MatchRule{{Property: "region", Kind: tandem.RuleEqual}}},
		{Name: "ffa", RoomType: "arena", MinPlayers: 4, MaxPlayers: 8},
		{Name: "ranked", RoomType: "arena", Teams: 2, TeamSize: 2,
			Rules: []tandem.MatchRule{{Property: "region", Kind: tandem.RuleEqual}, {Property: "skill", Kind: tandem.RuleRange, Base: 200}}},
	}
	for range b.N {
		b.StopTimer()
		w := newWorld(b)
		rng := rand.New(rand.NewPCG(1, 2))
		ctx := b.Context()
		for _, q := range queues {
			if err := w.bus.PutQueue(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		// The tickets, written by 16 writers as nodes would.
		work := make(chan tandem.MatchTicket)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for t := range work {
					if _, err := w.bus.CreateTicket(ctx, t); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for i := range n {
			q := queues[i%len(queues)]
			work <- tandem.MatchTicket{
				ID: fmt.Sprintf("t-%d", i), Queue: q.Name, PlayerID: fmt.Sprintf("p%05d", i), State: tandem.TicketSearching,
				CreatedAt: w.clock.Now().Add(-time.Duration(rng.IntN(10_000)) * time.Millisecond),
				Strings:   map[string]string{"region": []string{"eu", "us", "ap"}[rng.IntN(3)]},
				Numbers:   map[string]float64{"skill": float64(1000 + rng.IntN(1000))},
			}
		}
		close(work)
		wg.Wait()
		s := w.unstarted("bench")
		s.cfg.Tick = 50 * time.Millisecond
		players, seen := 0, 0
		matched := func() int { // only the events since the last call are read
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, e := range w.events[seen:] {
				if e.Kind == tandem.EventMatch {
					for _, team := range splitTeams(e.Attrs["players"]) {
						players += len(team)
					}
				}
			}
			seen = len(w.events)
			return players
		}
		b.StartTimer()
		start := time.Now()
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		var first time.Duration
		last, lastChange := 0, time.Now()
		for {
			m := matched()
			if m > 0 && first == 0 {
				first = time.Since(start)
			}
			if m != last {
				last, lastChange = m, time.Now()
			}
			// Done once nothing more was matched for three passes.
			if m > 0 && time.Since(lastChange) > 3*s.cfg.Tick {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatal("no end to matching in 2 minutes")
			}
			time.Sleep(5 * time.Millisecond) // the pause of a poll
		}
		took := lastChange.Sub(start)
		b.StopTimer()
		s.Stop(ctx)
		b.ReportMetric(float64(last)/took.Seconds(), "tickets/s")
		b.ReportMetric(float64(last)*100/n, "%matched")
		b.ReportMetric(first.Seconds()*1000, "ms-to-first-match")
		sum, count := histogram(s.cfg.Metrics.MatcherTick)
		b.ReportMetric(sum/float64(count)*1000, "ms/pass")
		b.ReportMetric(0, "ns/op")
	}
}

// splitTeams reads an event's players attribute.
func splitTeams(s string) [][]string {
	var out [][]string
	team := []string{}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' || s[i] == '|' {
			if i > start {
				team = append(team, s[start:i])
			}
			start = i + 1
			if i == len(s) || s[i] == '|' {
				out = append(out, team)
				team = []string{}
			}
		}
	}
	return out
}

// histogram sums a histogram vector's observations over its labels.
func histogram(h *prometheus.HistogramVec) (sum float64, count uint64) {
	ch := make(chan prometheus.Metric, 16)
	go func() { h.Collect(ch); close(ch) }()
	for m := range ch {
		var d dto.Metric
		_ = m.Write(&d)
		sum += d.GetHistogram().GetSampleSum()
		count += d.GetHistogram().GetSampleCount()
	}
	return sum, count
}
