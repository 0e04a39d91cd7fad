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
// the windows have moved.
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
// its window narrowed them): without it, a queue of tickets that each
// require something few others have costs a scan of the whole partition
// per anchor.
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
// is ever split over two matches. An anchor looks at most at maxScan (512)
// candidate units: a compatible unit beyond them is matched by a later
// anchor, or in a later run as the windows widen.
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
	placed       bool
}

// partition holds the units that agree on every equal rule's value and on
// having the first range rule's property: no unit is compatible with one of
// another partition. An anchor looks at its candidates in value order (a
// ranged partition: only those within its window) or in run order (until
// its match is full), whichever costs less.
type partition struct {
	byValue list // ranged: by (lo, order)
	byOrder list // run order
	scoring list // the units with optional terms: by value when ranged, else in run order
	ranged  bool
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
}

func newMatcher(q tandem.MatchQueue, now time.Time) *matcher {
	m := &matcher{q: q, now: now, firstRange: -1, keys: map[string]int{}}
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
	if p.ranged {
		lowest, upTo = a.hi-a.maxW, a.lo+a.maxW
	}
	if a.should {
		// a's optional terms may hold on any candidate: score them all.
		all := &p.byOrder
		if p.ranged {
			all = &p.byValue
		}
		for _, c := range m.candidates(a, all, p.ranged, lowest, upTo, anyScore) {
			if b.full() {
				return
			}
			try(c.u)
		}
		return
	}
	// Only units with optional terms of their own can score above 0: they
	// come first. The rest all score 0, so they come in run order.
	for _, c := range m.candidates(a, &p.scoring, p.ranged, lowest, upTo, aboveZero) {
		if b.full() {
			return
		}
		try(c.u)
	}
	if p.ranged {
		// Scanning the window costs its width; scanning in run order costs
		// about the seats left times the partition over the window, as a
		// unit in run order falls in the window that often.
		from, to := p.byValue.window(lowest, upTo)
		if span := to - from; span*span <= b.seatsLeft()*len(p.byOrder.units) {
			for _, c := range m.candidates(a, &p.byValue, true, lowest, upTo, zero) {
				if b.full() {
					return
				}
				try(c.u)
			}
			return
		}
	}
	l := &p.byOrder
	for i := l.find(0); i < len(l.units) && !b.full() && m.scan > 0; i = l.find(i + 1) {
		c := l.units[i]
		if c == a {
			continue
		}
		m.scan--
		if c.lo >= lowest && c.lo <= upTo && m.unitsCompatible(a, c) && (!c.should || score(a, c) <= 0) {
			try(c)
		}
	}
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

// candidates returns the unplaced units of l compatible with a whose score
// is as asked (zero: 0 or below, counted as 0), by (score desc, run
// order), among the first m.scan it looks at. When l is by value, only the
// units whose lo is in [lowest, upTo] are looked at.
func (m *matcher) candidates(a *unit, l *list, byValue bool, lowest, upTo float64, scores int) []candidate {
	from, to := 0, len(l.units)
	if byValue {
		from, to = l.window(lowest, upTo)
	}
	cs := m.cands[:0]
	for i := l.find(from); i < to && m.scan > 0; i = l.find(i + 1) {
		c := l.units[i]
		if c == a {
			continue
		}
		m.scan--
		if !m.unitsCompatible(a, c) {
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
