package matchmaker

import (
	"math"
	"slices"
	"time"

	"github.com/tandemhq/tandem"
)

// Window returns a range rule's window for a ticket that has waited wait:
// Base + Step*floor(wait/EveryMS), at most Max (Max 0: no cap; EveryMS 0:
// no widening; a negative wait: no step). The steps are counted in
// milliseconds, never by turning EveryMS into a Duration: that product
// overflows (to 0, a division by zero, for EveryMS = 2^58) on a queue
// ValidateQueue did not see.
func Window(r tandem.MatchRule, wait time.Duration) float64 {
	w := r.Base
	if r.EveryMS > 0 && wait > 0 {
		w += r.Step * float64(wait.Milliseconds()/r.EveryMS)
	}
	if r.Max > 0 && w > r.Max {
		w = r.Max
	}
	return w
}

// compatible reports whether a and b may play together: every queue rule
// holds between them (equal rules are skipped when the caller knows they
// hold) and each one's required terms hold on the other.
func (m *matcher) compatible(a, b *entry, equalKnown bool) bool {
	for i, r := range m.q.Rules {
		switch r.Kind {
		case tandem.RuleEqual:
			if !equalKnown && (a.has[i] != b.has[i] || a.str[i] != b.str[i]) {
				return false
			}
		case tandem.RuleRange:
			if a.has[i] != b.has[i] {
				return false
			}
			if a.has[i] {
				d := math.Abs(a.num[i] - b.num[i])
				// Written so that NaN fails.
				if !(d <= a.win[i] && d <= b.win[i]) {
					return false
				}
			}
		}
	}
	return allHold(a.t.Must, b.t) && allHold(b.t.Must, a.t)
}

func allHold(terms []tandem.MatchTerm, t *tandem.MatchTicket) bool {
	for i := range terms {
		if !holds(&terms[i], t) {
			return false
		}
	}
	return true
}

// holds reports whether term holds on t's properties; a term on a property
// t lacks does not.
func holds(term *tandem.MatchTerm, t *tandem.MatchTicket) bool {
	if len(term.OneOf) > 0 {
		v, ok := t.Strings[term.Property]
		if !ok || !slices.Contains(term.OneOf, v) {
			return false
		}
	}
	if term.Min != nil || term.Max != nil {
		v, ok := t.Numbers[term.Property]
		if !ok || (term.Min != nil && !(v >= *term.Min)) || (term.Max != nil && !(v <= *term.Max)) {
			return false
		}
	}
	if len(term.OneOf) == 0 && term.Min == nil && term.Max == nil {
		// BuildTicket refuses such a term; read it as "has the property".
		_, s := t.Strings[term.Property]
		_, n := t.Numbers[term.Property]
		return s || n
	}
	return true
}

// score is what b is worth to a as a candidate: the weights of a's optional
// terms that hold on b's tickets and of b's that hold on a's.
func score(a, b *unit) float64 {
	if !a.should && !b.should {
		return 0
	}
	var s float64
	for _, x := range a.members {
		for _, y := range b.members {
			s += weights(x.t.Should, y.t) + weights(y.t.Should, x.t)
		}
	}
	return s
}

func weights(terms []tandem.MatchTerm, t *tandem.MatchTicket) float64 {
	var s float64
	for i := range terms {
		if holds(&terms[i], t) {
			w := terms[i].Weight
			if w == 0 {
				w = 1
			}
			s += w
		}
	}
	return s
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
