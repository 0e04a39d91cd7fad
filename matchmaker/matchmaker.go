// Package matchmaker owns the matching itself: which searching tickets of a
// queue play together, in which team, and which open rooms they fill. It is
// pure — no I/O, no clock (the time is an argument), no goroutines — and
// deterministic: the same queue, time, tickets and rooms give the same
// matches whatever their order. The leased service in matchmaker/service
// feeds it from JetStream and seats what it returns; docs/matchmaking.md
// describes the whole flow.
//
// A party is matched only whole: exactly its PartySize searching tickets,
// all agreeing on PartySize; otherwise it waits. The work of a run is
// bounded: an anchor looks at most at maxScan candidate units, so a
// compatible pair beyond that is made later, by another anchor or once
// the windows have moved. The candidates come narrowed first, so that the
// bound seldom binds: to the anchor's partition (the equal rules), its
// window (the first range rule), and the units whose value of a string
// property is one of those a required one_of term of the anchor names
// (its most selective such term), whichever leaves the fewest.
package matchmaker

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/tandemhq/tandem"
)

// OpenRoom is a room of the queue with free seats (backfill).
type OpenRoom struct {
	ID        string
	Members   []tandem.MatchTicket // the tickets of its players: rules and required terms hold against them too
	Free      []int                // free seats per team (free-for-all: one entry)
	CreatedAt time.Time
}

// Match is a group of tickets to seat together.
type Match struct {
	RoomID string                 // backfill: the open room's id; "" a new room
	Teams  [][]tandem.MatchTicket // per team (free-for-all: one team); for backfill: only the new tickets, at their team index
}

// maxScan is how many candidate units an anchor looks at in a run (after
// its window or its required one_of terms narrowed them): without it, a
// queue of tickets that each require something few others have — on a
// property no one_of names, or a candidate's own terms — costs a scan of
// the whole partition per anchor.
const maxScan = 512

// Run groups the searching tickets of q (State == TicketSearching; others,
// and tickets of another queue, are ignored) into matches at now: greedily,
// oldest unit (a ticket, or a whole party) first, each into the first open
// room it fits when q.Backfill, otherwise into a new match with its best
// scored compatible units (a score above 0 first, then run order).
//
// A party is a unit only when exactly PartySize of its searching tickets
// are given and all agree on PartySize; a party short of its size, with
// more tickets than it, or whose members disagree waits, so that no party
// is ever split over two matches. An anchor's candidates are the units of
// its partition, narrowed to its window or, when fewer, to the units whose
// value of a string property is one of those its most selective required
// one_of term names; it looks at most at maxScan (512) of them: a
// compatible unit beyond them is matched by a later anchor, or in a later
// run as the windows widen. So tickets nobody can match, however many and
// however old, hide no pair that requires a value they lack.
func Run(q tandem.MatchQueue, now time.Time, tickets []tandem.MatchTicket, open []OpenRoom) []Match {
	m := newMatcher(q, now)
	m.addUnits(tickets)
	if q.Backfill {
		m.addRooms(open)
	}
	var out []Match
	for _, a := range m.units {
		if a.placed {
			continue
		}
		if q.Backfill {
			if match, ok := m.backfill(a); ok {
				out = append(out, match)
				continue
			}
		}
		if match, ok := m.newMatch(a); ok {
			out = append(out, match)
		}
	}
	return out
}

// entry is a ticket with what the rules need precomputed for now.
type entry struct {
	t    *tandem.MatchTicket
	wait time.Duration
	has  []bool    // per queue rule: the ticket has the rule's property
	str  []string  // per equal rule: the value
	num  []float64 // per range rule: the value
	win  []float64 // per range rule: the ticket's window
}

// unit is what is matched as one: a ticket, or a complete party.
type unit struct {
	members []*entry // by (CreatedAt, ID)
	oldest  time.Time
	minID   string
	order   int // position in the run's order: (oldest, minID)
	part    int // the partition: only units of one partition can be compatible
	// lo, hi: the members' values of the queue's first range rule;
	// maxW: the widest of their windows.
	lo, hi, maxW float64
	should       bool // a member has optional terms
	oneOf        bool // a member has a required one_of term
	placed       bool
}

// partition holds the units that agree on every equal rule's value and on
// having the first range rule's property: no unit is compatible with one of
// another partition. An anchor looks at its candidates in value order (a
// ranged partition: only those within its window) or in run order (until
// its match is full), whichever costs less; or, when it requires one_of
// values of a string property and fewer units have them than its window
// holds, at those units only.
type partition struct {
	byValue list // ranged: by (lo, order)
	byOrder list // run order
	scoring list // the units with optional terms: by value when ranged, else in run order
	ranged  bool
	// index: per string property, then value, the units whose first
	// member has it (a unit's members all need a value the term names,
	// so its first one's is enough to find it). Built the first time an
	// anchor requires one_of values of the property.
	index map[string]map[string]*valueLists
}

// valueLists are the unplaced units of a partition (when it was built) with
// one value of a property, in run order: all of them, and those with
// optional terms.
type valueLists struct {
	all, scoring list
}

// list is units in some order, with skip pointers over placed ones.
type list struct {
	units []*unit
	next  []int
}

func (l *list) seal() {
	l.next = make([]int, len(l.units))
	for i := range l.next {
		l.next[i] = i + 1
	}
}

// find returns the index of the first unplaced unit at or after i, and
// shortens the path over placed units for later calls.
func (l *list) find(i int) int {
	r := i
	for r < len(l.units) && l.units[r].placed {
		r = l.next[r]
	}
	for i < r {
		n := l.next[i]
		l.next[i] = r
		i = n
	}
	return r
}

// window returns the indexes [from, to) of the units of l (by value) whose
// lo is within [lowest, upTo].
func (l *list) window(lowest, upTo float64) (from, to int) {
	byLo := func(u *unit, v float64) int { return cmp.Compare(u.lo, v) }
	from, _ = slices.BinarySearchFunc(l.units, lowest, byLo)
	to, found := slices.BinarySearchFunc(l.units[from:], upTo, byLo)
	for to += from; found && to < len(l.units) && l.units[to].lo == upTo; to++ {
	}
	return from, to
}

type room struct {
	id      string
	created time.Time
	members []*entry
	free    []int
	part    int // partAny while it has no members
}

const partAny = -1

type matcher struct {
	q          tandem.MatchQueue
	now        time.Time
	firstRange int // index in q.Rules of the first range rule, -1 when none
	keys       map[string]int
	parts      []*partition
	units      []*unit
	rooms      []*room
	cands      []candidate // candidates' buffer, reused by every anchor
	scan       int         // candidate units the current anchor may still look at
	// named: the properties required one_of terms name; when there are
	// more than maxNamed, true for those some unit's first member has
	// (found with the first index), so that a term on a property nobody
	// has costs no pass over a partition.
	named   map[string]bool
	present bool    // named says which are present
	src     source  // the current anchor's source of candidates
	terms   []*list // the lists of the current anchor's most selective term
	scoring []*list // the same, of units with optional terms
}

func newMatcher(q tandem.MatchQueue, now time.Time) *matcher {
	m := &matcher{q: q, now: now, firstRange: -1, keys: map[string]int{}, named: map[string]bool{}}
	for i, r := range q.Rules {
		if r.Kind == tandem.RuleRange {
			m.firstRange = i
			break
		}
	}
	return m
}

func (m *matcher) newEntry(t *tandem.MatchTicket) *entry {
	n := len(m.q.Rules)
	e := &entry{t: t, wait: m.now.Sub(t.CreatedAt), has: make([]bool, n)}
	for i, r := range m.q.Rules {
		switch r.Kind {
		case tandem.RuleEqual:
			if e.str == nil {
				e.str = make([]string, n)
			}
			e.str[i], e.has[i] = t.Strings[r.Property]
		case tandem.RuleRange:
			if e.num == nil {
				e.num, e.win = make([]float64, n), make([]float64, n)
			}
			e.num[i], e.has[i] = t.Numbers[r.Property]
			e.win[i] = Window(r, e.wait)
		}
	}
	return e
}

// key is the partition key of e: the equal rules' values and whether it has
// the first range rule's property. ok is false when its first range value
// is not finite: such a ticket is compatible with no other that has one.
func (m *matcher) key(e *entry) (key string, ok bool) {
	var b []byte
	for i, r := range m.q.Rules {
		switch {
		case r.Kind == tandem.RuleEqual && e.has[i]:
			b = append(b, 's')
			b = appendLen(b, len(e.str[i]))
			b = append(b, e.str[i]...)
		case r.Kind == tandem.RuleEqual:
			b = append(b, '-')
		case i == m.firstRange && e.has[i]:
			if !finite(e.num[i]) {
				return "", false
			}
			b = append(b, 'n')
		case i == m.firstRange:
			b = append(b, '-')
		}
	}
	return string(b), true
}

func appendLen(b []byte, n int) []byte {
	return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// partOf returns the partition of a group of entries: the shared one of
// their key, or a new one of their own when they disagree (it is then
// compatible with nothing).
func (m *matcher) partOf(es []*entry) (id int, shared bool) {
	var k0 string
	for i, e := range es {
		k, ok := m.key(e)
		if !ok || (i > 0 && k != k0) {
			return m.newPart(), false
		}
		k0 = k
	}
	if id, ok := m.keys[k0]; ok {
		return id, true
	}
	id = m.newPart()
	m.keys[k0] = id
	return id, true
}

func (m *matcher) newPart() int {
	m.parts = append(m.parts, &partition{})
	return len(m.parts) - 1
}

// addUnits turns the searching tickets of the queue into units, in run
// order, and sorts them into their partitions.
func (m *matcher) addUnits(tickets []tandem.MatchTicket) {
	ts := make([]*tandem.MatchTicket, 0, len(tickets))
	for i := range tickets {
		if t := &tickets[i]; t.State == tandem.TicketSearching && t.Queue == m.q.Name {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, compareTickets)
	parties := map[string]*unit{}
	for _, t := range ts {
		if t.Party == "" {
			m.units = append(m.units, &unit{members: []*entry{m.newEntry(t)}})
			continue
		}
		u := parties[t.Party]
		if u == nil {
			u = &unit{}
			parties[t.Party] = u
			m.units = append(m.units, u)
		}
		u.members = append(u.members, m.newEntry(t))
	}
	// A party with more tickets than its size (or members that disagree
	// on it) waits rather than being cut: which tickets to leave out would
	// be a guess, and the ones left out would put the party in a second
	// match later.
	m.units = slices.DeleteFunc(m.units, func(u *unit) bool {
		return u.members[0].t.Party != "" && !whole(u.members)
	})
	for _, u := range m.units {
		u.oldest, u.minID = u.members[0].t.CreatedAt, u.members[0].t.ID
		for _, e := range u.members {
			u.minID = min(u.minID, e.t.ID)
			u.should = u.should || len(e.t.Should) > 0
			for i := range e.t.Must {
				if len(e.t.Must[i].OneOf) > 0 {
					u.oneOf = true
					m.named[e.t.Must[i].Property] = false
				}
			}
		}
	}
	slices.SortStableFunc(m.units, func(a, b *unit) int {
		return cmp.Or(a.oldest.Compare(b.oldest), cmp.Compare(a.minID, b.minID))
	})
	for i, u := range m.units {
		u.order = i
		var shared bool
		u.part, shared = m.partOf(u.members)
		p := m.parts[u.part]
		p.byOrder.units = append(p.byOrder.units, u)
		if u.should {
			p.scoring.units = append(p.scoring.units, u)
		}
		if m.firstRange >= 0 && shared && u.members[0].has[m.firstRange] {
			p.ranged = true
			r := m.firstRange
			u.lo, u.hi, u.maxW = u.members[0].num[r], u.members[0].num[r], u.members[0].win[r]
			for _, e := range u.members[1:] {
				u.lo, u.hi, u.maxW = min(u.lo, e.num[r]), max(u.hi, e.num[r]), max(u.maxW, e.win[r])
			}
		}
	}
	byValue := func(a, b *unit) int { return cmp.Or(cmp.Compare(a.lo, b.lo), cmp.Compare(a.order, b.order)) }
	for _, p := range m.parts {
		if p.ranged {
			p.byValue.units = slices.SortedFunc(slices.Values(p.byOrder.units), byValue)
			slices.SortFunc(p.scoring.units, byValue)
		}
		p.byValue.seal()
		p.byOrder.seal()
		p.scoring.seal()
	}
}

// whole reports whether a party's tickets are exactly its size.
func whole(members []*entry) bool {
	for _, e := range members {
		if e.t.PartySize != len(members) {
			return false
		}
	}
	return true
}

// compareTickets orders tickets by (CreatedAt, ID) and then by enough of
// the rest that the order never depends on the input's.
func compareTickets(a, b *tandem.MatchTicket) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID),
		cmp.Compare(a.PlayerID, b.PlayerID), cmp.Compare(a.Party, b.Party))
}

func (m *matcher) addRooms(open []OpenRoom) {
	for _, o := range open {
		r := &room{id: o.ID, created: o.CreatedAt, free: slices.Clone(o.Free), part: partAny}
		if m.q.Teams == 0 && len(r.free) > 1 {
			r.free = r.free[:1]
		}
		for i := range o.Members {
			r.members = append(r.members, m.newEntry(&o.Members[i]))
		}
		if len(r.members) > 0 {
			r.part, _ = m.partOf(r.members)
		}
		m.rooms = append(m.rooms, r)
	}
	slices.SortStableFunc(m.rooms, func(a, b *room) int {
		return cmp.Or(a.created.Compare(b.created), cmp.Compare(a.id, b.id))
	})
}

// backfill places a in the first open room it fits and is compatible with.
func (m *matcher) backfill(a *unit) (Match, bool) {
	for _, r := range m.rooms {
		if r.part != partAny && r.part != a.part {
			continue
		}
		team := fit(r.free, len(a.members))
		if team < 0 || !m.compatibleWith(a.members, r.members) {
			continue
		}
		a.placed = true
		r.free[team] -= len(a.members)
		r.members = append(r.members, a.members...)
		if r.part == partAny {
			r.part = a.part
		}
		match := Match{RoomID: r.id, Teams: make([][]tandem.MatchTicket, len(r.free))}
		for i := range match.Teams {
			match.Teams[i] = []tandem.MatchTicket{}
		}
		match.Teams[team] = tickets(a.members)
		return match, true
	}
	return Match{}, false
}

// fit returns the team with the most free seats that holds n more players
// (lowest index on ties), or -1 when none does.
func fit(free []int, n int) int {
	best := -1
	for i, f := range free {
		if f >= n && (best < 0 || f > free[best]) {
			best = i
		}
	}
	return best
}

// building is a new match being put together around an anchor.
type building struct {
	units []*unit
	teams []int // per unit: its team
	free  []int // per team: free seats (free-for-all: one team of MaxPlayers)
}

func (b *building) add(u *unit) bool {
	team := fit(b.free, len(u.members))
	if team < 0 {
		return false
	}
	b.units = append(b.units, u)
	b.teams = append(b.teams, team)
	b.free[team] -= len(u.members)
	return true
}

func (b *building) seatsLeft() int {
	n := 0
	for _, f := range b.free {
		n += f
	}
	return n
}

func (b *building) full() bool {
	for _, f := range b.free {
		if f > 0 {
			return false
		}
	}
	return true
}

// newMatch builds a match around anchor a from the unplaced units
// compatible with it, best score first, and reports whether it is made.
func (m *matcher) newMatch(a *unit) (Match, bool) {
	b := &building{}
	if m.q.Teams > 0 {
		b.free = make([]int, m.q.Teams)
		for i := range b.free {
			b.free[i] = m.q.TeamSize
		}
	} else {
		b.free = []int{m.q.MaxPlayers}
	}
	if !b.add(a) {
		return Match{}, false
	}
	m.scan = maxScan
	try := func(c *unit) {
		for _, u := range b.units[1:] {
			if !m.unitsCompatible(u, c) {
				return
			}
		}
		b.add(c)
	}
	m.fill(a, b, try)
	if !b.full() && !m.fillable(b) {
		return Match{}, false
	}
	match := Match{Teams: make([][]tandem.MatchTicket, len(b.free))}
	for i := range match.Teams {
		match.Teams[i] = []tandem.MatchTicket{}
	}
	for i, u := range b.units {
		u.placed = true
		match.Teams[b.teams[i]] = append(match.Teams[b.teams[i]], tickets(u.members)...)
	}
	return match, true
}

// fillable reports whether a free-for-all match short of MaxPlayers may be
// made now: it has MinPlayers and its oldest ticket waited FillWaitMS.
func (m *matcher) fillable(b *building) bool {
	if m.q.Teams > 0 || m.q.MaxPlayers-b.free[0] < m.q.MinPlayers {
		return false
	}
	oldest := b.units[0].oldest
	for _, u := range b.units[1:] {
		if u.oldest.Before(oldest) {
			oldest = u.oldest
		}
	}
	return waited(m.now.Sub(oldest), m.q.FillWaitMS)
}

// waited reports whether wait is at least ms milliseconds, without turning
// ms into a Duration (which overflows past 292 years).
func waited(wait time.Duration, ms int64) bool {
	return wait >= 0 && wait.Milliseconds() >= ms
}

// fill tries the candidates of anchor a on b, best first: by (score desc,
// run order), until b is full or a has looked at maxScan units. A score
// counts only above 0 (BuildTicket refuses negative weights; one here
// scores as 0).
func (m *matcher) fill(a *unit, b *building, try func(*unit)) {
	p := m.parts[a.part]
	lowest, upTo := math.Inf(-1), math.Inf(1)
	from, to := 0, len(p.byOrder.units)
	if p.ranged {
		lowest, upTo = a.hi-a.maxW, a.lo+a.maxW
		from, to = p.byValue.window(lowest, upTo)
	}
	// The units a's most selective required one_of term leaves: used
	// where they are fewer than the window (or partition) holds, and in
	// place of the partition in run order, of which they are a part.
	var indexed bool
	var n, nScoring int
	if to-from >= minIndexed {
		indexed, n, nScoring = m.selectTerm(a, p)
	}
	if a.should {
		// a's optional terms may hold on any candidate: score them all.
		src := m.over(&p.byOrder, 0, len(p.byOrder.units))
		switch {
		case indexed && n < to-from:
			src = m.merged(m.terms)
		case p.ranged:
			src = m.over(&p.byValue, from, to)
		}
		for _, c := range m.candidates(a, src, lowest, upTo, anyScore) {
			if b.full() {
				return
			}
			try(c.u)
		}
		return
	}
	// Only units with optional terms of their own can score above 0: they
	// come first. The rest all score 0, so they come in run order.
	sFrom, sTo := 0, len(p.scoring.units)
	if p.ranged {
		sFrom, sTo = p.scoring.window(lowest, upTo)
	}
	src := m.over(&p.scoring, sFrom, sTo)
	if indexed && nScoring < sTo-sFrom {
		src = m.merged(m.scoring)
	}
	for _, c := range m.candidates(a, src, lowest, upTo, aboveZero) {
		if b.full() {
			return
		}
		try(c.u)
	}
	if p.ranged && !(indexed && n < to-from) {
		// Scanning the window costs its width; scanning in run order costs
		// about the seats left times the partition over the window, as a
		// unit in run order falls in the window that often.
		if span := to - from; span*span <= b.seatsLeft()*len(p.byOrder.units) {
			for _, c := range m.candidates(a, m.over(&p.byValue, from, to), lowest, upTo, zero) {
				if b.full() {
					return
				}
				try(c.u)
			}
			return
		}
	}
	src = m.over(&p.byOrder, 0, len(p.byOrder.units))
	if indexed {
		src = m.merged(m.terms)
	}
	for !b.full() && m.scan > 0 {
		c := src.next()
		if c == nil {
			return
		}
		if c == a {
			continue
		}
		m.scan--
		if c.lo >= lowest && c.lo <= upTo && m.unitsCompatible(a, c) && (!c.should || score(a, c) <= 0) {
			try(c)
		}
	}
}

// minIndexed is the fewest units an anchor's window (or partition) holds
// for it to look its required terms up in the index: scanning fewer costs
// about as much as the look-up.
const minIndexed = 32

// maxNamed is how many properties required one_of terms may name before
// the first index looks up which of them any unit has: each absent one
// would otherwise cost a pass over a partition.
const maxNamed = 8

// selectTerm finds a's most selective required one_of term: the one whose
// values the fewest units of p have. It sets m.terms and m.scoring to the
// lists of those units (all, and those with optional terms) and returns
// how many units each holds; indexed is false when a has no such term.
func (m *matcher) selectTerm(a *unit, p *partition) (indexed bool, n, nScoring int) {
	if !a.oneOf {
		return false, 0, 0
	}
	var best *tandem.MatchTerm
	for _, e := range a.members {
		for i := range e.t.Must {
			term := &e.t.Must[i]
			if len(term.OneOf) == 0 {
				continue
			}
			idx, k := m.index(p, term.Property), 0
			for j, v := range term.OneOf {
				if vl := idx[v]; vl != nil && !slices.Contains(term.OneOf[:j], v) {
					k += len(vl.all.units)
				}
			}
			if best == nil || k < n {
				best, n = term, k
			}
		}
	}
	if best == nil {
		return false, 0, 0
	}
	m.terms, m.scoring = m.terms[:0], m.scoring[:0]
	idx := m.index(p, best.Property)
	for j, v := range best.OneOf {
		if vl := idx[v]; vl != nil && !slices.Contains(best.OneOf[:j], v) {
			m.terms = append(m.terms, &vl.all)
			if len(vl.scoring.units) > 0 {
				m.scoring = append(m.scoring, &vl.scoring)
				nScoring += len(vl.scoring.units)
			}
		}
	}
	return true, n, nScoring
}

// index returns p's index of property prop, building it the first time.
func (m *matcher) index(p *partition, prop string) map[string]*valueLists {
	if idx, ok := p.index[prop]; ok {
		return idx
	}
	if len(m.named) > maxNamed {
		if !m.present {
			m.findPresent()
		}
		if !m.named[prop] {
			return nil
		}
	}
	idx := map[string]*valueLists{}
	for _, u := range p.byOrder.units {
		v, ok := u.members[0].t.Strings[prop]
		if !ok || u.placed {
			continue
		}
		vl := idx[v]
		if vl == nil {
			vl = &valueLists{}
			idx[v] = vl
		}
		vl.all.units = append(vl.all.units, u)
		if u.should {
			vl.scoring.units = append(vl.scoring.units, u)
		}
	}
	for _, vl := range idx {
		vl.all.seal()
		vl.scoring.seal()
	}
	if p.index == nil {
		p.index = map[string]map[string]*valueLists{}
	}
	p.index[prop] = idx
	return idx
}

// findPresent marks in m.named the properties some unit's first member
// has, looking each up or going over the member's properties, whichever
// are fewer: one pass over the units, however many properties terms name.
func (m *matcher) findPresent() {
	m.present = true
	for _, u := range m.units {
		strs := u.members[0].t.Strings
		if len(strs) < len(m.named) {
			for k := range strs {
				if _, ok := m.named[k]; ok {
					m.named[k] = true
				}
			}
			continue
		}
		for k, found := range m.named {
			if _, ok := strs[k]; ok && !found {
				m.named[k] = true
			}
		}
	}
}

// source yields the unplaced units of a window of one list, or of several
// lists in run order merged into run order. An anchor uses one at a time:
// the matcher keeps one and its buffers.
type source struct {
	lists   []*list
	at, end []int
}

// over returns m's source set to the units of l in [from, to).
func (m *matcher) over(l *list, from, to int) *source {
	s := &m.src
	s.lists = append(s.lists[:0], l)
	s.at, s.end = append(s.at[:0], from), append(s.end[:0], to)
	return s
}

// merged returns m's source set to the units of ls, each in run order.
func (m *matcher) merged(ls []*list) *source {
	s := &m.src
	s.lists, s.at, s.end = append(s.lists[:0], ls...), s.at[:0], s.end[:0]
	for _, l := range ls {
		s.at, s.end = append(s.at, 0), append(s.end, len(l.units))
	}
	return s
}

// next returns the next unplaced unit, or nil when there is none.
func (s *source) next() *unit {
	best := -1
	for i, l := range s.lists {
		s.at[i] = l.find(s.at[i])
		if s.at[i] < s.end[i] && (best < 0 || l.units[s.at[i]].order < s.lists[best].units[s.at[best]].order) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	u := s.lists[best].units[s.at[best]]
	s.at[best]++
	return u
}

type candidate struct {
	u     *unit
	score float64
}

// The candidates that candidates returns, by score.
const (
	anyScore = iota
	aboveZero
	zero
)

// candidates returns the unplaced units of src compatible with a whose lo
// is in [lowest, upTo] and whose score is as asked (zero: 0 or below,
// counted as 0), by (score desc, run order), among the first m.scan it
// looks at.
func (m *matcher) candidates(a *unit, src *source, lowest, upTo float64, scores int) []candidate {
	cs := m.cands[:0]
	for m.scan > 0 {
		c := src.next()
		if c == nil {
			break
		}
		if c == a {
			continue
		}
		m.scan--
		if c.lo < lowest || c.lo > upTo || !m.unitsCompatible(a, c) {
			continue
		}
		switch s := score(a, c); {
		case scores == anyScore, scores == aboveZero && s > 0:
			cs = append(cs, candidate{c, s})
		case scores == zero && s <= 0:
			cs = append(cs, candidate{c, 0})
		}
	}
	slices.SortFunc(cs, func(x, y candidate) int {
		return cmp.Or(cmp.Compare(y.score, x.score), cmp.Compare(x.u.order, y.u.order))
	})
	m.cands = cs
	return cs
}

// unitsCompatible reports whether every cross pair of a's and b's tickets
// is compatible.
func (m *matcher) unitsCompatible(a, b *unit) bool {
	if a.part != b.part {
		return false
	}
	// One shared partition: the equal rules hold by construction.
	for _, x := range a.members {
		for _, y := range b.members {
			if !m.compatible(x, y, true) {
				return false
			}
		}
	}
	return true
}

func (m *matcher) compatibleWith(as, bs []*entry) bool {
	for _, x := range as {
		for _, y := range bs {
			if !m.compatible(x, y, false) {
				return false
			}
		}
	}
	return true
}

func tickets(es []*entry) []tandem.MatchTicket {
	ts := make([]tandem.MatchTicket, len(es))
	for i, e := range es {
		ts[i] = *e.t
	}
	return ts
}
