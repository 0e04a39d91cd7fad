package matchmaker

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
)

// fieldNames returns the fields of an EValidation error, failing the test
// for any other error.
func fieldNames(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *tandem.Error
	if !errors.As(err, &e) || e.Code != tandem.EValidation {
		t.Fatalf("error %v, want a validation error", err)
	}
	var fs []string
	for _, f := range e.Fields {
		fs = append(fs, f.Field)
	}
	return fs
}

func TestValidateQueue(t *testing.T) {
	const week = 7 * 24 * 3600 * 1000
	for _, c := range []struct {
		name   string
		change func(*tandem.MatchQueue)
		fields []string
	}{
		{"teams queue", func(q *tandem.MatchQueue) {}, nil},
		{"free-for-all", func(q *tandem.MatchQueue) { q.Teams, q.TeamSize, q.MinPlayers, q.MaxPlayers = 0, 0, 2, 100 }, nil},
		{"one team of two", func(q *tandem.MatchQueue) { q.Teams, q.TeamSize = 1, 2 }, nil},
		{"no name", func(q *tandem.MatchQueue) { q.Name = "" }, []string{"name"}},
		{"long name", func(q *tandem.MatchQueue) { q.Name = strings.Repeat("a", 65) }, []string{"name"}},
		{"odd name", func(q *tandem.MatchQueue) { q.Name = "ranked duel" }, []string{"name"}},
		{"no room type", func(q *tandem.MatchQueue) { q.RoomType = "" }, []string{"room_type"}},
		{"negative teams", func(q *tandem.MatchQueue) { q.Teams = -1 }, []string{"teams"}},
		{"no team size", func(q *tandem.MatchQueue) { q.TeamSize = 0 }, []string{"team_size"}},
		{"one player", func(q *tandem.MatchQueue) { q.Teams, q.TeamSize = 1, 1 }, []string{"team_size"}},
		{"too many players", func(q *tandem.MatchQueue) { q.Teams, q.TeamSize = 3, 34 }, []string{"team_size"}},
		{"huge team", func(q *tandem.MatchQueue) { q.TeamSize = math.MaxInt / 2 }, []string{"team_size"}},
		{"players with teams", func(q *tandem.MatchQueue) { q.MinPlayers, q.MaxPlayers = 2, 4 }, []string{"min_players", "max_players"}},
		{"free-for-all of one", func(q *tandem.MatchQueue) { q.Teams, q.TeamSize, q.MinPlayers, q.MaxPlayers = 0, 0, 1, 4 }, []string{"min_players"}},
		{"max below min", func(q *tandem.MatchQueue) { q.Teams, q.TeamSize, q.MinPlayers, q.MaxPlayers = 0, 0, 4, 3 }, []string{"max_players"}},
		{"max over 100", func(q *tandem.MatchQueue) { q.Teams, q.TeamSize, q.MinPlayers, q.MaxPlayers = 0, 0, 2, 101 }, []string{"max_players"}},
		{"team size without teams", func(q *tandem.MatchQueue) { q.Teams, q.MinPlayers, q.MaxPlayers = 0, 2, 4 }, []string{"team_size"}},
		{"negative waits", func(q *tandem.MatchQueue) { q.FillWaitMS, q.TimeoutMS = -1, -1 }, []string{"fill_wait_ms", "timeout_ms"}},
		{"waits of 7 days", func(q *tandem.MatchQueue) { q.FillWaitMS, q.TimeoutMS, q.Rules[1].EveryMS = week, week, week }, nil},
		{"waits over 7 days", func(q *tandem.MatchQueue) { q.FillWaitMS, q.TimeoutMS, q.Rules[1].EveryMS = week+1, week+1, week+1 },
			[]string{"fill_wait_ms", "timeout_ms", "rules[1].every_ms"}},
		// Both used to pass, and a Duration of them overflows: to 0 (a
		// division by zero in Window) and to a negative wait.
		{"every 2^58 ms", func(q *tandem.MatchQueue) { q.Rules[1].EveryMS = 1 << 58 }, []string{"rules[1].every_ms"}},
		{"fill wait past a Duration", func(q *tandem.MatchQueue) { q.FillWaitMS = 9223372036855 }, []string{"fill_wait_ms"}},
		{"range of 1e12", func(q *tandem.MatchQueue) { q.Rules[1].Base, q.Rules[1].Step, q.Rules[1].Max = 1e12, 1e12, 1e12 }, nil},
		{"range over 1e12", func(q *tandem.MatchQueue) { q.Rules[1].Base, q.Rules[1].Step, q.Rules[1].Max = 2e12, 1e13, 3e12 },
			[]string{"rules[1].base", "rules[1].step", "rules[1].max"}},
		{"max over 1e12", func(q *tandem.MatchQueue) { q.Rules[1].Max = math.MaxFloat64 }, []string{"rules[1].max"}},
		{"bad rule", func(q *tandem.MatchQueue) {
			q.Rules = append(q.Rules, tandem.MatchRule{Kind: "near"})
		}, []string{"rules[2].property", "rules[2].kind"}},
		{"bad range", func(q *tandem.MatchQueue) {
			q.Rules[1] = tandem.MatchRule{Property: "skill", Kind: tandem.RuleRange, Base: -1, Step: math.NaN(), EveryMS: -5, Max: 10}
		}, []string{"rules[1].base", "rules[1].step", "rules[1].every_ms"}},
		{"max below base", func(q *tandem.MatchQueue) { q.Rules[1].Max = 49 }, []string{"rules[1].max"}},
		{"infinite max", func(q *tandem.MatchQueue) { q.Rules[1].Max = math.Inf(1) }, []string{"rules[1].max"}},
		{"17 rules", func(q *tandem.MatchQueue) {
			for range 15 {
				q.Rules = append(q.Rules, q.Rules[0])
			}
		}, []string{"rules"}},
		{"client properties", func(q *tandem.MatchQueue) {
			q.ClientProperties = []string{"mode", "", strings.Repeat("x", 65), "mode"}
		}, []string{"client_properties[1]", "client_properties[2]", "client_properties[3]"}},
		{"33 client properties", func(q *tandem.MatchQueue) {
			for i := range 33 {
				q.ClientProperties = append(q.ClientProperties, strings.Repeat("p", i+1))
			}
		}, []string{"client_properties"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := duel
			q.Rules = slices.Clone(duel.Rules)
			c.change(&q)
			if diff := cmp.Diff(c.fields, fieldNames(t, ValidateQueue(q))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildTicketTakesClaimedPropertiesOverTheClients(t *testing.T) {
	q := duel
	q.ClientProperties = []string{"mode", "skill"}
	claim := map[string]string{"skill": "1850", "region": "eu", "rank": "gold", "odd": "NaN"}
	got, err := BuildTicket(q, tandem.MatchTicket{ID: "t", Queue: q.Name}, claim,
		map[string]string{"mode": "chaos", "region": "us", "skill": "9999"},
		map[string]float64{"skill": 9999})
	if err != nil {
		t.Fatal(err)
	}
	want := tandem.MatchTicket{ID: "t", Queue: q.Name,
		Strings: map[string]string{"skill": "1850", "region": "eu", "rank": "gold", "odd": "NaN", "mode": "chaos"},
		Numbers: map[string]float64{"skill": 1850}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ticket (-want +got):\n%s", diff)
	}
}

func TestBuildTicket(t *testing.T) {
	teams := squads
	teams.ClientProperties = []string{"mode", "level"}
	ffa := brawl
	ffa.ClientProperties = []string{"mode"}
	lo, hi, inf := 10.0, 5.0, math.Inf(1)
	term := func(p string, oneOf ...string) tandem.MatchTerm { return tandem.MatchTerm{Property: p, OneOf: oneOf} }
	terms := func(n int) []tandem.MatchTerm { return slices.Repeat([]tandem.MatchTerm{term("mode", "a")}, n) }
	typed := teams
	typed.Rules = append(slices.Clone(teams.Rules), tandem.MatchRule{Property: "mode", Kind: tandem.RuleEqual},
		tandem.MatchRule{Property: "level", Kind: tandem.RuleRange, Base: 1})
	weighted := func(w float64) tandem.MatchTerm {
		return tandem.MatchTerm{Property: "mode", OneOf: []string{"a"}, Weight: w}
	}
	// budget returns terms that bring the ticket's strings (9 bytes of
	// claim: skill, 1500) to 8 KiB and over.
	budget := func(over int) []tandem.MatchTerm {
		wide := term("mode", slices.Repeat([]string{strings.Repeat("v", 255)}, 32)...) // 4 + 8160 bytes
		return []tandem.MatchTerm{wide, term("mode", strings.Repeat("v", 8<<10-9-len("mode")*2-32*255+over))}
	}
	many := map[string]string{}
	for i := range 33 {
		many[strings.Repeat("m", i+1)] = "x"
	}
	for _, c := range []struct {
		name    string
		q       tandem.MatchQueue
		t       tandem.MatchTicket
		strs    map[string]string
		nums    map[string]float64
		fields  []string
		numbers map[string]float64 // when set: the ticket's numbers
	}{
		{name: "plain", q: teams, strs: map[string]string{"mode": "a"}, nums: map[string]float64{"level": 3},
			t: tandem.MatchTicket{Must: terms(16), Should: terms(16), Party: "p", PartySize: 3}, numbers: map[string]float64{"level": 3, "skill": 1500}},
		{name: "property the queue does not allow", q: teams, strs: map[string]string{"skill": "1", "mode": "a"}, nums: map[string]float64{"elo": 1},
			fields: []string{"numeric_properties.elo"}},
		{name: "unknown string property", q: teams, strs: map[string]string{"platform": "pc"}, fields: []string{"string_properties.platform"}},
		{name: "long value", q: teams, strs: map[string]string{"mode": strings.Repeat("v", 257)}, fields: []string{"string_properties.mode"}},
		{name: "long name", q: teams, strs: map[string]string{strings.Repeat("n", 65): "v"}, fields: []string{"string_properties." + strings.Repeat("n", 65)}},
		{name: "not finite", q: teams, nums: map[string]float64{"level": math.NaN()}, fields: []string{"numeric_properties.level"}},
		// A list over its limit is one error, its items unchecked.
		{name: "33 properties", q: ffa, strs: many, fields: []string{"properties"}},
		{name: "17 terms", q: teams, t: tandem.MatchTicket{Must: terms(17), Should: terms(17)}, fields: []string{"must", "should"}},
		{name: "17 bad terms", q: teams, t: tandem.MatchTicket{Must: slices.Repeat([]tandem.MatchTerm{{}}, 17)}, fields: []string{"must"}},
		{name: "33 long values", q: teams, t: tandem.MatchTicket{Must: []tandem.MatchTerm{term("mode", slices.Repeat([]string{strings.Repeat("v", 257)}, 33)...)}},
			fields: []string{"must[0].one_of", "ticket"}},
		{name: "8 KiB of strings", q: teams, t: tandem.MatchTicket{Should: budget(0)}},
		{name: "past 8 KiB of strings", q: teams, t: tandem.MatchTicket{Should: budget(1)}, fields: []string{"ticket"}},
		{name: "weights", q: teams, t: tandem.MatchTicket{
			Must:   []tandem.MatchTerm{weighted(0), weighted(1)},
			Should: []tandem.MatchTerm{weighted(0), weighted(0.5), weighted(1000), weighted(-1), weighted(1001), weighted(math.NaN()), weighted(math.Inf(1))},
		}, fields: []string{"must[1].weight", "should[3].weight", "should[4].weight", "should[5].weight", "should[6].weight"}},
		// A value of the type the queue's rules do not compare it as.
		{name: "typed properties", q: typed, strs: map[string]string{"mode": "a", "level": "3"}, nums: map[string]float64{"mode": 1, "level": 3},
			fields: []string{"string_properties.level", "numeric_properties.mode"}},
		{name: "typed properties of the right type", q: typed, strs: map[string]string{"mode": "a"}, nums: map[string]float64{"level": 3}},
		{name: "bad terms", q: teams, t: tandem.MatchTicket{Must: []tandem.MatchTerm{
			{Property: "", OneOf: []string{"a"}},
			{Property: "mode"},
			{Property: "mode", OneOf: []string{"a"}, Min: &lo},
			{Property: "skill", Min: &lo, Max: &hi},
			{Property: "skill", Max: &inf},
			{Property: "mode", OneOf: slices.Repeat([]string{"a"}, 33)},
			{Property: "mode", OneOf: []string{strings.Repeat("v", 257)}, Weight: math.NaN()},
		}}, fields: []string{"must[0].property", "must[1].one_of", "must[2].one_of", "must[3].max", "must[4].max", "must[5].one_of", "must[6].one_of", "must[6].weight"}},
		{name: "party of one", q: teams, t: tandem.MatchTicket{Party: "p", PartySize: 1}, fields: []string{"party_size"}},
		{name: "party larger than a team", q: teams, t: tandem.MatchTicket{Party: "p", PartySize: 4}, fields: []string{"party_size"}},
		{name: "party without size", q: teams, t: tandem.MatchTicket{Party: "p"}, fields: []string{"party_size"}},
		{name: "size without party", q: teams, t: tandem.MatchTicket{PartySize: 2}, fields: []string{"party_size"}},
		{name: "long party", q: teams, t: tandem.MatchTicket{Party: strings.Repeat("p", 65), PartySize: 2}, fields: []string{"party"}},
		{name: "free-for-all party", q: ffa, t: tandem.MatchTicket{Party: "p", PartySize: 8}},
		{name: "free-for-all party too large", q: ffa, t: tandem.MatchTicket{Party: "p", PartySize: 9}, fields: []string{"party_size"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := BuildTicket(c.q, c.t, map[string]string{"skill": "1500"}, c.strs, c.nums)
			if diff := cmp.Diff(c.fields, fieldNames(t, err)); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if c.numbers != nil {
				if diff := cmp.Diff(c.numbers, got.Numbers); diff != "" {
					t.Errorf("numbers (-want +got):\n%s", diff)
				}
			}
		})
	}
}
