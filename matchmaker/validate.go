package matchmaker

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/tandemhq/tandem"
)

// Limits on a queue and on a ticket: they bound the work one ticket costs
// a matcher.
const (
	maxRules         = 16
	maxProperties    = 32
	maxNameBytes     = 64
	maxValueBytes    = 256
	maxTerms         = 16
	maxOneOf         = 32
	maxMatchPlayers  = 100
	maxQueueNameSize = 64
	// maxTicketStrings bounds a ticket's property and term strings
	// together: the lists' own limits multiply to ~270 KiB.
	maxTicketStrings = 8 << 10
	// maxWaitMS bounds every duration of a queue (7 days): far beyond any
	// real wait, and far from overflowing a Duration.
	maxWaitMS = 7 * 24 * 60 * 60 * 1000
	// maxRuleValue bounds a range rule's numbers, so that a window stays
	// finite however long a ticket waits.
	maxRuleValue = 1e12
	maxWeight    = 1000
)

// ValidateQueue checks a queue configuration: an EValidation error naming
// every bad field ("teams", "rules[1].max"), or nil.
func ValidateQueue(q tandem.MatchQueue) error {
	var fs fields
	switch {
	case q.Name == "":
		fs.add("name", "is required")
	case len(q.Name) > maxQueueNameSize:
		fs.add("name", "must be at most %d bytes", maxQueueNameSize)
	case !plainName(q.Name):
		fs.add("name", "may hold only letters, digits, _ and -")
	}
	if q.RoomType == "" {
		fs.add("room_type", "is required")
	}
	switch {
	case q.Teams < 0:
		fs.add("teams", "must not be negative")
	case q.Teams > 0:
		if q.TeamSize < 1 {
			fs.add("team_size", "must be at least 1")
		} else if q.Teams > maxMatchPlayers || q.TeamSize > maxMatchPlayers || q.Teams*q.TeamSize > maxMatchPlayers {
			fs.add("team_size", "teams × team_size must be at most %d", maxMatchPlayers)
		} else if q.Teams*q.TeamSize < 2 {
			fs.add("team_size", "teams × team_size must be at least 2")
		}
		if q.MinPlayers != 0 {
			fs.add("min_players", "must be 0 with teams (a match is teams × team_size)")
		}
		if q.MaxPlayers != 0 {
			fs.add("max_players", "must be 0 with teams (a match is teams × team_size)")
		}
	default:
		if q.TeamSize != 0 {
			fs.add("team_size", "must be 0 without teams")
		}
		if q.MinPlayers < 2 {
			fs.add("min_players", "must be at least 2")
		}
		if q.MaxPlayers < q.MinPlayers || q.MaxPlayers > maxMatchPlayers {
			fs.add("max_players", "must be between min_players and %d", maxMatchPlayers)
		}
	}
	checkMS(&fs, "fill_wait_ms", q.FillWaitMS)
	checkMS(&fs, "timeout_ms", q.TimeoutMS)
	if len(q.Rules) > maxRules {
		fs.add("rules", "at most %d rules", maxRules)
	}
	for i, r := range q.Rules {
		f := fmt.Sprintf("rules[%d].", i)
		if r.Property == "" || len(r.Property) > maxNameBytes {
			fs.add(f+"property", "must be 1 to %d bytes", maxNameBytes)
		}
		switch r.Kind {
		case tandem.RuleEqual:
		case tandem.RuleRange:
			// Written so that NaN fails.
			if !(r.Base >= 0 && r.Base <= maxRuleValue) {
				fs.add(f+"base", "must be a number from 0 to %g", maxRuleValue)
			}
			if !(r.Step >= 0 && r.Step <= maxRuleValue) {
				fs.add(f+"step", "must be a number from 0 to %g", maxRuleValue)
			}
			checkMS(&fs, f+"every_ms", r.EveryMS)
			if !(r.Max == 0 || r.Max >= r.Base && r.Max <= maxRuleValue) {
				fs.add(f+"max", "must be 0 (no cap) or from base to %g", maxRuleValue)
			}
		default:
			fs.add(f+"kind", "must be equal or range")
		}
	}
	if len(q.ClientProperties) > maxProperties {
		fs.add("client_properties", "at most %d properties", maxProperties)
	}
	for i, p := range q.ClientProperties {
		f := fmt.Sprintf("client_properties[%d]", i)
		switch {
		case p == "" || len(p) > maxNameBytes:
			fs.add(f, "must be 1 to %d bytes", maxNameBytes)
		case slices.Contains(q.ClientProperties[:i], p):
			fs.add(f, "%s is listed twice", p)
		}
	}
	return tandem.Invalid(fs)
}

// checkMS checks a queue's duration in milliseconds.
func checkMS(fs *fields, f string, ms int64) {
	if ms < 0 || ms > maxWaitMS {
		fs.add(f, "must be from 0 to %d (7 days)", int64(maxWaitMS))
	}
}

// BuildTicket fills t.Strings and t.Numbers from the token's mm claim and
// the client's properties and checks the ticket against q: an EValidation
// error naming every bad field otherwise. A claimed property always wins
// (the client's value for it is ignored, so a player cannot set their own
// skill); every claim value is a string property, and a numeric one too
// when it parses as a finite number. A client may set only the properties
// q.ClientProperties names, and only of the type q's rules compare them
// as. A list over its limit is one error, its items unchecked; the
// ticket's property and term strings together are bounded too ("ticket"),
// as the lists' limits multiply to far more than a matcher should carry
// per ticket.
func BuildTicket(q tandem.MatchQueue, t tandem.MatchTicket, claim map[string]string, clientStrings map[string]string, clientNumbers map[string]float64) (tandem.MatchTicket, error) {
	var fs fields
	t.Strings = make(map[string]string, len(claim)+len(clientStrings))
	t.Numbers = map[string]float64{}
	for k, v := range claim {
		t.Strings[k] = v
		if n, err := strconv.ParseFloat(v, 64); err == nil && finite(n) {
			t.Numbers[k] = n
		}
	}
	if len(clientStrings)+len(clientNumbers) > maxProperties {
		fs.add("properties", "at most %d properties", maxProperties)
	} else {
		setClientProperties(&fs, q, &t, claim, clientStrings, clientNumbers)
	}
	checkTerms(&fs, "must", t.Must, false)
	checkTerms(&fs, "should", t.Should, true)
	checkParty(&fs, q, t)
	if n := ticketStrings(t); n > maxTicketStrings {
		fs.add("ticket", "the properties and terms hold %d bytes of names and values; at most %d", n, maxTicketStrings)
	}
	return t, tandem.Invalid(fs)
}

func setClientProperties(fs *fields, q tandem.MatchQueue, t *tandem.MatchTicket, claim, clientStrings map[string]string, clientNumbers map[string]float64) {
	// Sorted, so that the fields come in the same order every time.
	for _, k := range sortedKeys(clientStrings) {
		v := clientStrings[k]
		if _, ok := claim[k]; ok {
			continue
		}
		if f := "string_properties." + k; checkProperty(fs, f, q, k, tandem.RuleRange) {
			if len(v) > maxValueBytes {
				fs.add(f, "must be at most %d bytes", maxValueBytes)
				continue
			}
			t.Strings[k] = v
		}
	}
	for _, k := range sortedKeys(clientNumbers) {
		v := clientNumbers[k]
		if _, ok := claim[k]; ok {
			continue
		}
		if f := "numeric_properties." + k; checkProperty(fs, f, q, k, tandem.RuleEqual) {
			if !finite(v) {
				fs.add(f, "must be a finite number")
				continue
			}
			t.Numbers[k] = v
		}
	}
}

// checkProperty reports whether a client may set property k of q, given
// that a rule of kind other compares k as the other type: a value nothing
// reads would only make the ticket look compatible where it is not meant
// to be.
func checkProperty(fs *fields, f string, q tandem.MatchQueue, k string, other tandem.MatchRuleKind) bool {
	switch {
	case k == "" || len(k) > maxNameBytes:
		fs.add(f, "the name must be 1 to %d bytes", maxNameBytes)
	case !slices.Contains(q.ClientProperties, k):
		fs.add(f, "queue %s does not let a client set %s", q.Name, k)
	case slices.ContainsFunc(q.Rules, func(r tandem.MatchRule) bool { return r.Property == k && r.Kind == other }):
		as := "a number"
		if other == tandem.RuleEqual {
			as = "a string"
		}
		fs.add(f, "queue %s compares %s as %s", q.Name, k, as)
	default:
		return true
	}
	return false
}

// checkTerms checks a ticket's required (optional false) or optional
// terms. Only an optional term has a weight, never negative: a negative
// score would put a candidate behind those nobody asked for, which the
// matcher's shortcuts do not expect.
func checkTerms(fs *fields, name string, terms []tandem.MatchTerm, optional bool) {
	if len(terms) > maxTerms {
		fs.add(name, "at most %d terms", maxTerms)
		return
	}
	for i, term := range terms {
		f := fmt.Sprintf("%s[%d].", name, i)
		if term.Property == "" || len(term.Property) > maxNameBytes {
			fs.add(f+"property", "must be 1 to %d bytes", maxNameBytes)
		}
		ranged := term.Min != nil || term.Max != nil
		switch {
		case len(term.OneOf) > 0 && ranged:
			fs.add(f+"one_of", "give one_of or min/max, not both")
		case len(term.OneOf) == 0 && !ranged:
			fs.add(f+"one_of", "give one_of or min/max")
		case len(term.OneOf) > maxOneOf:
			fs.add(f+"one_of", "at most %d values", maxOneOf)
		default:
			for _, v := range term.OneOf {
				if len(v) > maxValueBytes {
					fs.add(f+"one_of", "values must be at most %d bytes", maxValueBytes)
					break
				}
			}
		}
		if term.Min != nil && !finite(*term.Min) {
			fs.add(f+"min", "must be a finite number")
		}
		if term.Max != nil && !finite(*term.Max) {
			fs.add(f+"max", "must be a finite number")
		}
		if term.Min != nil && term.Max != nil && *term.Min > *term.Max {
			fs.add(f+"max", "must be at least min")
		}
		switch {
		case !optional && term.Weight != 0:
			fs.add(f+"weight", "must be 0 on a required term")
		case optional && !(term.Weight >= 0 && term.Weight <= maxWeight): // NaN fails
			fs.add(f+"weight", "must be a number from 0 to %d", maxWeight)
		}
	}
}

// ticketStrings returns the bytes of t's property names and values and of
// its terms' names and values (a property both a string and a number
// counts once).
func ticketStrings(t tandem.MatchTicket) int {
	n := 0
	for k, v := range t.Strings {
		n += len(k) + len(v)
	}
	for k := range t.Numbers {
		if _, ok := t.Strings[k]; !ok {
			n += len(k)
		}
	}
	for _, terms := range [][]tandem.MatchTerm{t.Must, t.Should} {
		for _, term := range terms {
			n += len(term.Property)
			for _, v := range term.OneOf {
				n += len(v)
			}
		}
	}
	return n
}

func checkParty(fs *fields, q tandem.MatchQueue, t tandem.MatchTicket) {
	if t.Party == "" {
		if t.PartySize != 0 {
			fs.add("party_size", "needs a party")
		}
		return
	}
	if len(t.Party) > maxNameBytes {
		fs.add("party", "must be at most %d bytes", maxNameBytes)
	}
	limit, where := q.MaxPlayers, "max_players"
	if q.Teams > 0 {
		limit, where = q.TeamSize, "the team size"
	}
	if t.PartySize < 2 || t.PartySize > limit {
		fs.add("party_size", "must be between 2 and %s (%d)", where, limit)
	}
}

// fields collects the invalid fields of a request.
type fields []tandem.FieldError

func (fs *fields) add(field, format string, args ...any) {
	*fs = append(*fs, tandem.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func plainName(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
