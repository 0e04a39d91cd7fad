package tandem

import (
	"context"
	"time"
)

// Matchmaking: players put tickets in queues; one matcher per queue (a
// realtime node holding the queue's lease) groups them into matches with
// matchmaker.Run, claims the tickets by compare-and-swap, has a node create
// the match's room with a seat reserved per player and hands each player a
// seat reservation. Tickets, queue configurations and leases live in
// JetStream (natsbus/); docs/matchmaking.md describes the whole flow.

// MatchQueue is a matchmaking queue's configuration. The web server writes
// it (admin page, audited) to the queue bucket; realtime nodes watch it.
type MatchQueue struct {
	Name     string `json:"name"`
	RoomType string `json:"room_type"` // the room type a match's room is created as
	// Teams > 0: a match is Teams teams of exactly TeamSize players each.
	Teams    int `json:"teams,omitempty"`
	TeamSize int `json:"team_size,omitempty"`
	// Teams == 0: a free-for-all match of MinPlayers to MaxPlayers.
	MinPlayers int `json:"min_players,omitempty"`
	MaxPlayers int `json:"max_players,omitempty"`
	// FillWaitMS (free-for-all): a match with at least MinPlayers but
	// fewer than MaxPlayers is made once its oldest ticket has waited
	// this long; until then the matcher waits for a full one.
	FillWaitMS int64 `json:"fill_wait_ms,omitempty"`
	// Rules every two tickets of a match must satisfy.
	Rules []MatchRule `json:"rules,omitempty"`
	// ClientProperties names the properties a client may set on its
	// ticket. Every other property comes from the realtime token's mm
	// claim (the web server's player record); a claimed property always
	// wins over a client's value.
	ClientProperties []string `json:"client_properties,omitempty"`
	// Backfill: rooms of this queue with open seats are filled before new
	// rooms are made.
	Backfill bool `json:"backfill,omitempty"`
	// TimeoutMS: a ticket still searching after this long expires
	// (0, or over 55 minutes: 55 minutes, before the tickets bucket's
	// one-hour limit drops it).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Disabled: the queue takes no new tickets (its tickets stay).
	Disabled  bool      `json:"disabled,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// MatchRuleKind is what a queue rule compares.
type MatchRuleKind string

// The queue rules.
const (
	// RuleEqual: two tickets match when their string values of Property
	// are equal (region, platform, mode).
	RuleEqual MatchRuleKind = "equal"
	// RuleRange: two tickets match when their numeric values of Property
	// differ by at most each ticket's window: Base, widened by Step every
	// EveryMS the ticket has waited, up to Max (skill ±50, +25 every 5 s,
	// to ±200).
	RuleRange MatchRuleKind = "range"
)

// MatchRule is one rule of a queue.
type MatchRule struct {
	Property string        `json:"property"`
	Kind     MatchRuleKind `json:"kind"`
	Base     float64       `json:"base,omitempty"`
	Step     float64       `json:"step,omitempty"`
	EveryMS  int64         `json:"every_ms,omitempty"`
	Max      float64       `json:"max,omitempty"`
}

// MatchTerm is one term of a ticket's query. A required term must hold for
// every other ticket of the match; an optional one raises a candidate's
// score by Weight (0 counts as 1). A term on a property the other ticket
// lacks does not hold.
type MatchTerm struct {
	Property string   `json:"property"`
	OneOf    []string `json:"one_of,omitempty"` // the string value is one of these (one value: equals)
	Min      *float64 `json:"min,omitempty"`    // the numeric value is at least Min
	Max      *float64 `json:"max,omitempty"`    // the numeric value is at most Max
	Weight   float64  `json:"weight,omitempty"`
}

// TicketState is where a ticket is in its life.
type TicketState string

// The ticket states. Searching → claimed (by a matcher, for one match) →
// matched (a seat is reserved) → seated (the player took it) → done; or
// back to searching (a claim released, a match that fell through) or
// ended: cancelled (by the player, or its session ended) or expired
// (timeout, seat not taken in time). Ended tickets stay readable a
// little while, then go.
const (
	TicketSearching TicketState = "searching"
	TicketClaimed   TicketState = "claimed"
	TicketMatched   TicketState = "matched"
	TicketSeated    TicketState = "seated"
	TicketDone      TicketState = "done"
	TicketCancelled TicketState = "cancelled"
	TicketExpired   TicketState = "expired"
)

// Ended reports whether s is a final state: the player may queue again.
func (s TicketState) Ended() bool {
	return s == TicketDone || s == TicketCancelled || s == TicketExpired
}

// MatchTicket is a player's ticket in one queue: at most one live ticket
// per player per queue (the bucket's key is queue and player).
type MatchTicket struct {
	ID       string `json:"id"`
	Queue    string `json:"queue"`
	PlayerID string `json:"player_id"`
	// Party: tickets with the same Party land in the same match and team;
	// the party is matched once its PartySize tickets are all in.
	Party     string             `json:"party,omitempty"`
	PartySize int                `json:"party_size,omitempty"`
	Strings   map[string]string  `json:"strings,omitempty"`
	Numbers   map[string]float64 `json:"numbers,omitempty"`
	Must      []MatchTerm        `json:"must,omitempty"`
	Should    []MatchTerm        `json:"should,omitempty"`
	CreatedAt time.Time          `json:"created_at"` // waiting starts here; a match that fell through keeps it (front of the queue)
	Node      string             `json:"node"`       // the node that accepted it
	Session   string             `json:"session"`    // the session that created it: its end for good cancels it

	State     TicketState `json:"state"`
	Reason    string      `json:"reason,omitempty"`   // ended: why (cancelled, timeout, seat_expired, session_ended, queue_deleted)
	MatchID   string      `json:"match_id,omitempty"` // claimed and later
	ClaimedAt time.Time   `json:"claimed_at,omitzero"`
	Team      int         `json:"team,omitempty"`
	Backfill  bool        `json:"backfill,omitempty"` // the match seats it in a room already running
	Seat      *MatchSeat  `json:"seat,omitempty"`     // matched: where to go
	UpdatedAt time.Time   `json:"updated_at,omitzero"`

	// Revision is the bucket entry's revision when read: UpdateTicket
	// writes only over it (compare-and-swap).
	Revision uint64 `json:"-"`
}

// MatchSeat is the seat a matched ticket holds: the SeatReservation the
// player follows.
type MatchSeat struct {
	RoomID    string    `json:"room_id"`
	Node      string    `json:"node"`
	NodeURL   string    `json:"node_url"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// MatchRoomRequest asks a node to create (or, backfilling, to use) a
// match's room and to reserve a seat in it for every player.
type MatchRoomRequest struct {
	MatchID  string     `json:"match_id"`
	Queue    string     `json:"queue"`
	RoomType string     `json:"room_type"`
	RoomID   string     `json:"room_id,omitempty"` // backfill: a room of the node; empty: create one
	Teams    [][]string `json:"teams"`             // player ids per team (free-for-all: one team)
	// TimeoutMS: the matcher gives up after this long; the node stops
	// there too (and undoes what it made), so no room outlives it.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// MatchRoom is a node's answer: the room and one seat per player, in the
// order of the request's teams.
type MatchRoom struct {
	RoomID string `json:"room_id"`
	Seats  []Seat `json:"seats"`
}

// MatchInfo is what a match's room gets as its creation options (JSON),
// so that a room type can seat its teams.
type MatchInfo struct {
	MatchID string     `json:"match_id"`
	Queue   string     `json:"queue"`
	Teams   [][]string `json:"teams"`
}

// QueueBucket holds the queue configurations.
type QueueBucket interface {
	PutQueue(ctx context.Context, q MatchQueue) error
	DeleteQueue(ctx context.Context, name string) error
	// Queues lists the queues, by name.
	Queues(ctx context.Context) ([]MatchQueue, error)
	// WatchQueues calls fn with every queue present, then with every
	// change (deleted: only Name is set) until ctx ends or stop is
	// called. It returns once the present entries have been passed to fn.
	WatchQueues(ctx context.Context, fn func(q MatchQueue, deleted bool)) (stop func(), err error)
}

// TicketBucket holds the tickets.
type TicketBucket interface {
	// CreateTicket stores t as the player's ticket in t.Queue. EConflict
	// when the player has a live ticket there (an ended one is replaced).
	// It returns t with its Revision.
	CreateTicket(ctx context.Context, t MatchTicket) (MatchTicket, error)
	// Ticket returns the player's ticket in queue; ENotFound when none.
	Ticket(ctx context.Context, queue, playerID string) (MatchTicket, error)
	// UpdateTicket stores t over the entry if its revision is still
	// t.Revision (compare-and-swap); EConflict otherwise, ENotFound when
	// it is gone. It returns t with its new Revision.
	UpdateTicket(ctx context.Context, t MatchTicket) (MatchTicket, error)
	// DeleteTicket removes the entry if its revision is still revision.
	DeleteTicket(ctx context.Context, queue, playerID string, revision uint64) error
	// Tickets lists a queue's tickets ("" for every queue), by queue and
	// player.
	Tickets(ctx context.Context, queue string) ([]MatchTicket, error)
	// WatchTickets calls fn with every ticket of queue ("" for every
	// queue) present, then with every change (deleted: only Queue and
	// PlayerID are set) until ctx ends or stop is called. It returns once
	// the present entries have been passed to fn.
	WatchTickets(ctx context.Context, queue string, fn func(t MatchTicket, deleted bool)) (stop func(), err error)
}

// MatcherLease elects one matcher per queue.
type MatcherLease interface {
	// HoldLease takes the lease name for holder, or renews it when holder
	// has it, and reports whether holder has it now: false while another
	// holder's lease lives. A lease not renewed within the bucket's TTL
	// expires.
	HoldLease(ctx context.Context, name, holder string) (bool, error)
	// ReleaseLease gives the lease up if holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// MatchBroker carries match room requests to a node.
type MatchBroker interface {
	CreateMatchRoom(ctx context.Context, node string, r MatchRoomRequest) (MatchRoom, error)
	// ServeMatchRooms answers node's match room requests with create until
	// ctx ends.
	ServeMatchRooms(ctx context.Context, node string, create func(context.Context, MatchRoomRequest) (MatchRoom, error)) error
}

// Matchmaking is the part of the bus matchmaking runs on.
type Matchmaking interface {
	QueueBucket
	TicketBucket
	MatcherLease
	MatchBroker
}

// EventMatch is published by a matcher for every committed match: RoomID,
// Attrs queue, match, node (the room's), players (by team: teams separated
// by '|', players by ','), wait_ms (the longest wait of its tickets,
// milliseconds) and backfill ("true" when into a room already running).
const EventMatch EventKind = "match.committed"

// EventMatchExpired is published when a match falls through: Attrs queue,
// match, expired (players who did not take their seat), returned (players
// sent back to the queue).
const EventMatchExpired EventKind = "match.expired"
