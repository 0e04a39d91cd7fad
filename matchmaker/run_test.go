package matchmaker

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
)

func searching(id string, age time.Duration, strs map[string]string, nums map[string]float64) tandem.MatchTicket {
	return tandem.MatchTicket{ID: id, Queue: "q", PlayerID: "p" + id, State: tandem.TicketSearching,
		CreatedAt: epoch.Add(-age), Strings: strs, Numbers: nums}
}

func ids(ms []Match) [][][]string {
	out := make([][][]string, len(ms))
	for i, m := range ms {
		out[i] = make([][]string, len(m.Teams))
		for j, team := range m.Teams {
			out[i][j] = []string{}
			for _, t := range team {
				out[i][j] = append(out[i][j], t.ID)
			}
		}
	}
	return out
}

func TestAnchorPrefersTheBestScoredCandidateThenTheOldest(t *testing.T) {
	q := tandem.MatchQueue{Name: "q", Teams: 2, TeamSize: 1}
	a := searching("a", time.Minute, nil, nil)
	a.Should = []tandem.MatchTerm{{Property: "platform", OneOf: []string{"pc"}, Weight: 3}}
	older := searching("b", 50*time.Second, map[string]string{"platform": "console"}, nil)
	pc := searching("c", time.Second, map[string]string{"platform": "pc"}, nil)
	pc2 := searching("d", time.Second, map[string]string{"platform": "pc"}, nil)
	got := ids(Run(q, epoch, []tandem.MatchTicket{pc2, pc, older, a}, nil))
	want := [][][]string{{{"a"}, {"c"}}, {{"b"}, {"d"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("matches (-want +got):\n%s", diff)
	}
}

func TestPartyWaitsForItsSizeAndTakesItsOldestTickets(t *testing.T) {
	q := tandem.MatchQueue{Name: "q", Teams: 2, TeamSize: 2}
	party := func(id string, age time.Duration) tandem.MatchTicket {
		tk := searching(id, age, nil, nil)
		tk.Party, tk.PartySize = "x", 2
		return tk
	}
	solo1, solo2 := searching("s1", time.Second, nil, nil), searching("s2", time.Second, nil, nil)
	if ms := Run(q, epoch, []tandem.MatchTicket{party("p1", time.Minute), solo1, solo2}, nil); len(ms) != 0 {
		t.Fatalf("an incomplete party was matched: %v", ids(ms))
	}
	got := ids(Run(q, epoch, []tandem.MatchTicket{party("p3", 10*time.Second), solo1, party("p1", time.Minute), solo2, party("p2", 20*time.Second)}, nil))
	want := [][][]string{{{"p1", "p2"}, {"s1", "s2"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("matches (-want +got):\n%s", diff)
	}
}

func TestBackfillFillsTheOldestFittingRoomAtItsEmptiestTeam(t *testing.T) {
	q := tandem.MatchQueue{Name: "q", Teams: 2, TeamSize: 3, Backfill: true,
		Rules: []tandem.MatchRule{{Property: "region", Kind: tandem.RuleEqual}}}
	eu := map[string]string{"region": "eu"}
	open := []OpenRoom{
		{ID: "us", CreatedAt: epoch.Add(-time.Hour), Free: []int{2, 2}, Members: []tandem.MatchTicket{searching("m1", 0, map[string]string{"region": "us"}, nil)}},
		{ID: "eu-new", CreatedAt: epoch.Add(-time.Minute), Free: []int{1, 2}, Members: []tandem.MatchTicket{searching("m2", 0, eu, nil)}},
		{ID: "eu-old", CreatedAt: epoch.Add(-2 * time.Minute), Free: []int{0, 1}, Members: []tandem.MatchTicket{searching("m3", 0, eu, nil)}},
	}
	ts := []tandem.MatchTicket{searching("a", 3*time.Second, eu, nil), searching("b", 2*time.Second, eu, nil), searching("c", time.Second, eu, nil)}
	got := ids(Run(q, epoch, ts, open))
	want := [][][]string{{{}, {"a"}}, {{}, {"b"}}, {{"c"}, {}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("matches (-want +got):\n%s", diff)
	}
	ms := Run(q, epoch, ts, open)
	if rooms := []string{ms[0].RoomID, ms[1].RoomID, ms[2].RoomID}; !cmp.Equal(rooms, []string{"eu-old", "eu-new", "eu-new"}) {
		t.Fatalf("rooms %v", rooms)
	}
}

func TestFreeForAllMakesAShortMatchOnlyAfterTheFillWait(t *testing.T) {
	q := tandem.MatchQueue{Name: "q", MinPlayers: 3, MaxPlayers: 4, FillWaitMS: 10_000}
	ts := []tandem.MatchTicket{searching("a", 10*time.Second, nil, nil), searching("b", 5*time.Second, nil, nil), searching("c", time.Second, nil, nil)}
	if ms := Run(q, epoch.Add(-time.Millisecond), ts, nil); len(ms) != 0 {
		t.Fatalf("matched before the fill wait: %v", ids(ms))
	}
	if ms := Run(q, epoch, ts[1:], nil); len(ms) != 0 {
		t.Fatalf("matched short of min players: %v", ids(ms))
	}
	want := [][][]string{{{"a", "b", "c"}}}
	if diff := cmp.Diff(want, ids(Run(q, epoch, ts, nil))); diff != "" {
		t.Fatalf("matches (-want +got):\n%s", diff)
	}
	full := append(ts, searching("d", 0, nil, nil))
	want = [][][]string{{{"a", "b", "c", "d"}}}
	if diff := cmp.Diff(want, ids(Run(q, epoch.Add(-time.Hour), full, nil))); diff != "" {
		t.Fatalf("full match (-want +got):\n%s", diff)
	}
}
