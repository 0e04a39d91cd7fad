package matchmaker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
)

// FuzzBuildTicket feeds BuildTicket what a client can send in a
// ticket_create (its properties, terms and party, JSON here plus two free
// numbers, since JSON has no NaN or infinities) against a claim: it must
// never panic, must refuse or keep the limits, and a ticket it accepts must
// not make Run panic. Run it with
//
//	go test -run XXX -fuzz FuzzBuildTicket -fuzztime 30s ./matchmaker/
//
// The seeds are below and in testdata/fuzz/FuzzBuildTicket.
func FuzzBuildTicket(f *testing.F) {
	f.Add([]byte(`{"claim":{"skill":"1500","region":"eu"},"strings":{"mode":"ctf"},"numbers":{"level":3},"must":[{"property":"region","one_of":["eu","us"]}],"should":[{"property":"mode","one_of":["ctf"],"weight":2}],"party":"p1","party_size":2}`), 10.0, 20.0)
	f.Add([]byte(`{"numbers":{"skill":99999},"must":[{"property":"level","min":1,"max":5}]}`), -1.0, 1e308)
	f.Add([]byte(`{"strings":{"region":"eu"}}`), 0.0, 0.0)
	f.Add([]byte(`{"must":[{"property":"map"}],"party_size":3}`), 1.0, 2.0)
	f.Fuzz(func(t *testing.T, data []byte, n1, n2 float64) {
		var in struct {
			Claim     map[string]string  `json:"claim"`
			Strings   map[string]string  `json:"strings"`
			Numbers   map[string]float64 `json:"numbers"`
			Must      []tandem.MatchTerm `json:"must"`
			Should    []tandem.MatchTerm `json:"should"`
			Party     string             `json:"party"`
			PartySize int                `json:"party_size"`
		}
		if json.Unmarshal(data, &in) != nil {
			return
		}
		if in.Numbers == nil {
			in.Numbers = map[string]float64{}
		}
		in.Numbers["level"] = n1
		in.Must = append(in.Must, tandem.MatchTerm{Property: "level", Min: &n1, Max: &n2})
		q := tandem.MatchQueue{
			Name: "fuzz", RoomType: "arena", Teams: 2, TeamSize: 3,
			Rules: []tandem.MatchRule{
				{Property: "region", Kind: tandem.RuleEqual},
				{Property: "skill", Kind: tandem.RuleRange, Base: 50, Step: 25, EveryMS: 5000, Max: 200},
			},
			ClientProperties: []string{"mode", "level", "region", "skill"},
		}
		now := time.Unix(1_800_000_000, 0)
		base := tandem.MatchTicket{ID: "t1", Queue: "fuzz", PlayerID: "p1", Party: in.Party, PartySize: in.PartySize,
			Must: in.Must, Should: in.Should, CreatedAt: now.Add(-time.Minute), State: tandem.TicketSearching}
		got, err := BuildTicket(q, base, in.Claim, in.Strings, in.Numbers)
		if err != nil {
			if tandem.ErrorCodeOf(err) != tandem.EValidation {
				t.Fatalf("refused with %v, want a validation error", err)
			}
			return
		}
		if len(got.Must) > 16 || len(got.Should) > 16 || len(got.Strings) > 32+len(in.Claim) {
			t.Fatalf("accepted beyond the limits: %d must, %d should, %d strings", len(got.Must), len(got.Should), len(got.Strings))
		}
		for k, v := range in.Claim {
			if got.Strings[k] != v {
				t.Fatalf("claim %s=%q became %q", k, v, got.Strings[k])
			}
		}
		other := got
		other.ID, other.PlayerID, other.CreatedAt = "t2", "p2", now
		Run(q, now, []tandem.MatchTicket{got, other}, []OpenRoom{{ID: "r", Members: []tandem.MatchTicket{got}, Free: []int{1, 1}}})
	})
}
