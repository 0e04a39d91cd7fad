package matchmaker

import (
	"fmt"
	"slices"
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

func TestPartyIsMatchedOnlyWithExactlyItsSize(t *testing.T) {
	q := tandem.MatchQueue{Name: "q", Teams: 2, TeamSize: 2}
	member := func(id string, age time.Duration, size int) tandem.MatchTicket {
		tk := searching(id, age, nil, nil)
		tk.Party, tk.PartySize = "x", size
		return tk
	}
	solo1, solo2 := searching("s1", time.Second, nil, nil), searching("s2", time.Second, nil, nil)
	for _, c := range []struct {
		name    string
		members []tandem.MatchTicket
	}{
		{"short of its size", []tandem.MatchTicket{member("p1", time.Minute, 2)}},
		{"more tickets than its size", []tandem.MatchTicket{member("p3", 10*time.Second, 2), member("p1", time.Minute, 2), member("p2", 20*time.Second, 2)}},
		{"members disagreeing on its size", []tandem.MatchTicket{member("p1", time.Minute, 2), member("p2", 20*time.Second, 3)}},
	} {
		if ms := Run(q, epoch, append(c.members, solo1, solo2), nil); len(ms) != 0 {
			t.Errorf("a party %s was matched: %v", c.name, ids(ms))
		}
	}
	got := ids(Run(q, epoch, []tandem.MatchTicket{solo1, member("p2", 20*time.Second, 2), solo2, member("p1", time.Minute, 2)}, nil))
	want := [][][]string{{{"p1", "p2"}, {"s1", "s2"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("matches (-want +got):\n%s", diff)
	}
}

// TestANegativeScoreIsNoPreference: BuildTicket refuses negative weights,
// but a ticket with one must not be preferred over one nobody asked for;
// the greedy as written puts it last.
func TestANegativeScoreIsNoPreference(t *testing.T) {
	q := tandem.MatchQueue{Name: "q", Teams: 2, TeamSize: 1}
	a := searching("a", time.Minute, map[string]string{"platform": "pc"}, nil)
	b := searching("b", 30*time.Second, nil, nil)
	c := searching("c", time.Second, nil, nil)
	c.Should = []tandem.MatchTerm{{Property: "platform", OneOf: []string{"pc"}, Weight: -100}}
	ts := []tandem.MatchTicket{c, b, a}
	want := [][][]string{{{"a"}, {"b"}}}
	if diff := cmp.Diff(want, ids(greedy(q, epoch, ts, nil))); diff != "" {
		t.Fatalf("the greedy as written (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, ids(Run(q, epoch, ts, nil))); diff != "" {
		t.Fatalf("matches (-want +got):\n%s", diff)
	}
}

// TestAPairBeyondTheScanCapIsMadeByALaterAnchor: the oldest ticket wants
// a map only the youngest has — and the tickets between them, which
// require a mode the oldest lacks. With maxScan-1 of them it finds the
// youngest; with maxScan it does not, and the youngest, as anchor, finds
// the oldest first.
func TestAPairBeyondTheScanCapIsMadeByALaterAnchor(t *testing.T) {
	q := tandem.MatchQueue{Name: "q", Teams: 2, TeamSize: 1}
	for _, c := range []struct {
		between int
		want    []string
	}{
		{maxScan - 1, []string{"a", "z"}},
		{maxScan, []string{"z", "a"}},
	} {
		a := searching("a", time.Hour, nil, nil)
		a.Must = []tandem.MatchTerm{{Property: "map", OneOf: []string{"x"}}}
		ts := []tandem.MatchTicket{a, searching("z", 0, map[string]string{"map": "x"}, nil)}
		for i := range c.between {
			f := searching(fmt.Sprintf("f%04d", i), time.Minute-time.Duration(i)*time.Millisecond, map[string]string{"map": "x"}, nil)
			f.Must = []tandem.MatchTerm{{Property: "mode", OneOf: []string{"solo"}}}
			ts = append(ts, f)
		}
		var got []string
		for _, m := range Run(q, epoch, ts, nil) {
			if id := m.Teams[0][0].ID; id == "a" || id == "z" {
				got = []string{id, m.Teams[1][0].ID}
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%d tickets between: match %v, want %v", c.between, got, c.want)
		}
	}
}

// TestOldTicketsNobodyMatchesHideNoPairThatRequiresAValue: 600 old
// tickets each require a map of their own (or a property nobody has),
// more than an anchor looks at; two young ones that require map x still
// find each other in one run, with or without a range rule, as an anchor
// looks only at the tickets that have a value it requires.
func TestOldTicketsNobodyMatchesHideNoPairThatRequiresAValue(t *testing.T) {
	region := tandem.MatchRule{Property: "region", Kind: tandem.RuleEqual}
	wide := tandem.MatchRule{Property: "skill", Kind: tandem.RuleRange, Base: 1e6}
	tk := func(id string, age time.Duration, m, requires string) tandem.MatchTicket {
		t := searching(id, age, map[string]string{"region": "eu", "map": m}, map[string]float64{"skill": float64(len(id))})
		t.Must = []tandem.MatchTerm{{Property: requires, OneOf: []string{m}}}
		return t
	}
	for _, ownProperty := range []bool{false, true} {
		for _, rules := range [][]tandem.MatchRule{{region}, {region, wide}} {
			q := tandem.MatchQueue{Name: "q", Teams: 2, TeamSize: 1, Rules: rules}
			ts := []tandem.MatchTicket{tk("y1", time.Second, "x", "map"), tk("y2", 0, "x", "map")}
			for i := range 600 {
				requires := "map"
				if ownProperty {
					requires = fmt.Sprintf("prop%04d", i)
				}
				ts = append(ts, tk(fmt.Sprintf("o%04d", i), time.Hour-time.Duration(i)*time.Millisecond, fmt.Sprintf("map%04d", i), requires))
			}
			want := [][][]string{{{"y1"}, {"y2"}}}
			if diff := cmp.Diff(want, ids(Run(q, epoch, ts, nil))); diff != "" {
				t.Errorf("own property %v, %d rules: matches (-want +got):\n%s", ownProperty, len(rules), diff)
			}
		}
	}
}

// TestHugeDurationsNeitherPanicNorOverflow: queues that ValidateQueue
// refuses, were they ever run: a step every 2^58 ms used to divide by
// zero, a fill wait of 9223372036855 ms to wrap to a negative Duration.
func TestHugeDurationsNeitherPanicNorOverflow(t *testing.T) {
	q := duel
	q.Rules = []tandem.MatchRule{{Property: "skill", Kind: tandem.RuleRange, Base: 50, Step: 25, EveryMS: 1 << 58}}
	ts := []tandem.MatchTicket{searching("a", time.Hour, nil, map[string]float64{"skill": 1000}), searching("b", time.Hour, nil, map[string]float64{"skill": 1040})}
	for i := range ts {
		ts[i].Queue = q.Name
	}
	if ms := Run(q, epoch, ts, nil); len(ms) != 1 {
		t.Errorf("every_ms 2^58: %v, want one match", ids(ms))
	}
	ffa := tandem.MatchQueue{Name: "q", MinPlayers: 2, MaxPlayers: 4, FillWaitMS: 9223372036855}
	if ms := Run(ffa, epoch, []tandem.MatchTicket{searching("a", time.Hour, nil, nil), searching("b", time.Hour, nil, nil)}, nil); len(ms) != 0 {
		t.Errorf("fill_wait_ms 9223372036855: a short match after an hour: %v", ids(ms))
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
