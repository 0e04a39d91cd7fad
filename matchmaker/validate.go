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
	if q.FillWaitMS < 0 {
		fs.add("fill_wait_ms", "must not be negative")
	}
	if q.TimeoutMS < 0 {
		fs.add("timeout_ms", "must not be negative")
	}
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
			if !(r.Base >= 0) || !finite(r.Base) {
				fs.add(f+"base", "must be a number ≥ 0")
			}
			if !(r.Step >= 0) || !finite(r.Step) {
				fs.add(f+"step", "must be a number ≥ 0")
			}
			if r.EveryMS < 0 {
				fs.add(f+"every_ms", "must not be negative")
			}
			if !finite(r.Max) || (r.Max != 0 && !(r.Max >= r.Base)) {
				fs.add(f+"max", "must be 0 (no cap) or at least base")
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

// BuildTicket fills t.Strings and t.Numbers from the token's mm claim and
// the client's properties and checks the ticket against q: an EValidation
// error naming every bad field otherwise. A claimed property always wins
// (the client's value for it is ignored, so a player cannot set their own
// skill); every claim value is a string property, and a numeric one too
// when it parses as a finite number. A client may set only the properties
// q.ClientProperties names.
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
	}
	// Sorted, so that the fields come in the same order every time.
	for _, k := range sortedKeys(clientStrings) {
		v := clientStrings[k]
		if _, ok := claim[k]; ok {
			continue
		}
		if f := "string_properties." + k; checkProperty(&fs, f, q, k) {
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
		if f := "numeric_properties." + k; checkProperty(&fs, f, q, k) {
			if !finite(v) {
				fs.add(f, "must be a finite number")
				continue
			}
			t.Numbers[k] = v
		}
	}
	checkTerms(&fs, "must", t.Must)
	checkTerms(&fs, "should", t.Should)
	checkParty(&fs, q, t)
	return t, tandem.Invalid(fs)
}

// checkProperty reports whether a client may set property k of q.
func checkProperty(fs *fields, f string, q tandem.MatchQueue, k string) bool {
	switch {
	case k == "" || len(k) > maxNameBytes:
		fs.add(f, "the name must be 1 to %d bytes", maxNameBytes)
	case !slices.Contains(q.ClientProperties, k):
		fs.add(f, "queue %s does not let a client set %s", q.Name, k)
	default:
		return true
	}
	return false
}

func checkTerms(fs *fields, name string, terms []tandem.MatchTerm) {
	if len(terms) > maxTerms {
		fs.add(name, "at most %d terms", maxTerms)
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
		}
		for _, v := range term.OneOf {
			if len(v) > maxValueBytes {
				fs.add(f+"one_of", "values must be at most %d bytes", maxValueBytes)
				break
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
		if !finite(term.Weight) {
			fs.add(f+"weight", "must be a finite number")
		}
	}
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
