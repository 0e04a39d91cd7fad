package tandem

import (
	"context"
	"crypto/ed25519"
	"time"
)

// The cluster: realtime nodes and web replicas share state and messages
// through the bus (NATS JetStream in natsbus/). The realtime side and the
// web side meet only through these interfaces and protocol/.

// NodeInfo is a realtime node's entry in the node registry. The node
// rewrites it at every heartbeat; an entry not rewritten within the
// registry's TTL disappears (the node is down).
type NodeInfo struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"` // --advertise-url: where clients connect (ws:// or wss://…/ws)
	Version     string    `json:"version"`
	Draining    bool      `json:"draining"`
	Connections int       `json:"connections"`
	Rooms       int       `json:"rooms"`
	StartedAt   time.Time `json:"started_at"`
	// Heartbeat is when the node wrote this entry, by the node's clock:
	// for display only. Liveness is the entry's presence in the registry
	// (its TTL), never a comparison with another clock.
	Heartbeat time.Time `json:"heartbeat"`
}

// RoomEntry is a room's entry in the room directory, written by the node
// that runs the room.
type RoomEntry struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Node       string            `json:"node"`
	Players    []string          `json:"players"` // in join order
	MaxPlayers int               `json:"max_players"`
	Labels     map[string]string `json:"labels,omitempty"`
	Open       bool              `json:"open"`   // takes joins by room type (join-or-create)
	Locked     bool              `json:"locked"` // an operator locked it: no joins at all
	CreatedAt  time.Time         `json:"created_at"`
}

// Presence says which session of a player is the live one, cluster-wide.
// The newest login wins by compare-and-swap; the node holding the older
// session sees the entry change and ends it (duplicate_session, or moved
// when Moved is set: the player followed a seat reservation).
type Presence struct {
	PlayerID  string    `json:"player_id"`
	Node      string    `json:"node"`
	SessionID string    `json:"session_id"`
	Moved     bool      `json:"moved,omitempty"`
	Since     time.Time `json:"since"` // the session's start: of two sessions, the later start wins
}

// Seat is a seat reserved in a room for one player, created by the room's
// node and used once: claimed by compare-and-swap delete. Token is the
// secret the client presents (SeatReservation.seat_token).
type Seat struct {
	Token     string    `json:"-"`
	RoomID    string    `json:"room_id"`
	PlayerID  string    `json:"player_id"`
	Node      string    `json:"node"`
	NodeURL   string    `json:"node_url"`
	ExpiresAt time.Time `json:"expires_at"`
	// Queue is set on a match's seat: taking it seats the player's
	// ticket in that queue.
	Queue string `json:"queue,omitempty"`
}

// SeatRequest asks a room's node to reserve a seat for a player who is
// connected to another node.
type SeatRequest struct {
	RoomID   string `json:"room_id"`
	PlayerID string `json:"player_id"`
	FromNode string `json:"from_node"`
}

// BanEntry is an account ban in force (or starting later) as the realtime
// nodes see it: the bans bucket holds one per banned player, expiring with
// the ban. Zero Until: permanent.
type BanEntry struct {
	PlayerID string    `json:"player_id"`
	Start    time.Time `json:"start"`
	Until    time.Time `json:"until,omitzero"`
	Reason   string    `json:"reason,omitempty"`
}

// InForce reports whether the ban applies at now.
func (b BanEntry) InForce(now time.Time) bool {
	return !now.Before(b.Start) && (b.Until.IsZero() || now.Before(b.Until))
}

// Revocation refuses the realtime tokens issued to a player before a
// moment: the web server writes one when it logs the player out everywhere
// or deletes the account. Nodes refuse such tokens at connect and end the
// player's sessions opened with one. It expires when the last such token
// has (issue time + the longest token lifetime).
type Revocation struct {
	PlayerID     string    `json:"player_id"`
	IssuedBefore time.Time `json:"issued_before"` // tokens with an iat (whole seconds) before this are refused
	ExpiresAt    time.Time `json:"expires_at"`
}

// Revokes reports whether a token of the player issued at iat (Unix
// seconds) is refused.
func (r Revocation) Revokes(iat int64) bool { return time.Unix(iat, 0).Before(r.IssuedBefore) }

// LivePlayer is a node's answer about one player's session.
type LivePlayer struct {
	PlayerID  string    `json:"player_id"`
	SessionID string    `json:"session_id"`
	Connected bool      `json:"connected"` // false: held for a resume
	RTTMillis float64   `json:"rtt_ms"`    // median of the recent pings; 0 before the first
	Rooms     []string  `json:"rooms"`
	Since     time.Time `json:"since"` // the session's start
}

// RoomInspection is a node's answer about one of its rooms, for the
// console.
type RoomInspection struct {
	Room    RoomEntry    `json:"room"`
	Players []LivePlayer `json:"players"` // members, in join order
	// Snapshot is the room's state as its first member sees it (the room
	// type's Snapshot; JSON for the built-in types), nil without members.
	Snapshot []byte `json:"snapshot"`
}

// CommandKind is what a node command does.
type CommandKind string

// The node commands (web → one node).
const (
	CommandKick       CommandKind = "kick"        // end PlayerID's session (kicked)
	CommandNotice     CommandKind = "notice"      // a system notice: to PlayerID, to RoomID's players, or to every session of the node
	CommandCloseRoom  CommandKind = "close_room"  // close RoomID: its players get leave(room_closed)
	CommandLockRoom   CommandKind = "lock_room"   // RoomID takes no joins
	CommandUnlockRoom CommandKind = "unlock_room" // RoomID takes joins again
	CommandDrain      CommandKind = "drain"       // the node drains
)

// Command is an operator's action addressed to one realtime node. Nodes
// remember command ids (24 h), so a command delivered twice acts once.
type Command struct {
	ID        string      `json:"id"`
	Node      string      `json:"node"`
	Kind      CommandKind `json:"kind"`
	PlayerID  string      `json:"player_id,omitempty"`
	RoomID    string      `json:"room_id,omitempty"`
	Text      string      `json:"text,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
}

// CommandResult is a node's acknowledgement of a command. OK false with
// Error: the node got the command and could not apply it (an unknown
// room, say); delivered all the same, never retried.
type CommandResult struct {
	ID    string `json:"id"`
	Node  string `json:"node"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// EventKind is the kind of a cluster event.
type EventKind string

// The events realtime nodes publish for the web server.
const (
	EventSessionOpened EventKind = "session.opened"
	EventSessionClosed EventKind = "session.closed"
	EventRoomCreated   EventKind = "room.created"
	EventRoomClosed    EventKind = "room.closed"
	EventRoomJoined    EventKind = "room.joined"
	EventRoomLeft      EventKind = "room.left"
	EventNodeUp        EventKind = "node.up"
	EventNodeDown      EventKind = "node.down" // a node's own drain/shutdown, or the web server declaring it down
	EventNodeLog       EventKind = "node.log"  // a node log record at WARN or above
)

// Event is something that happened on a realtime node. ID is unique
// cluster-wide (node id, boot, sequence), so storing an event delivered
// twice stores it once.
type Event struct {
	ID        string            `json:"id"`
	Node      string            `json:"node"`
	Kind      EventKind         `json:"kind"`
	At        time.Time         `json:"at"`
	SessionID string            `json:"session_id,omitempty"`
	PlayerID  string            `json:"player_id,omitempty"`
	RoomID    string            `json:"room_id,omitempty"`
	RoomType  string            `json:"room_type,omitempty"`
	Reason    string            `json:"reason,omitempty"`     // leave reason, close reason, log message
	CloseCode int               `json:"close_code,omitempty"` // session.closed
	Duration  time.Duration     `json:"duration,omitempty"`   // session.closed: how long the session lived
	RTTMillis []float64         `json:"rtt_ms,omitempty"`     // session.closed: RTT p50, p99, max in ms
	Level     string            `json:"level,omitempty"`      // node.log
	Attrs     map[string]string `json:"attrs,omitempty"`      // node.log attributes, room labels
}

// NodeRegistry is the node registry bucket.
type NodeRegistry interface {
	// PutNode writes n (a heartbeat). The entry expires unless rewritten
	// within the registry's TTL.
	PutNode(ctx context.Context, n NodeInfo) error
	// RemoveNode deletes a node's entry (a node that stops cleanly).
	RemoveNode(ctx context.Context, id string) error
	// Nodes lists the live nodes, by id.
	Nodes(ctx context.Context) ([]NodeInfo, error)
	// Node returns one node; ENotFound when it is not registered.
	Node(ctx context.Context, id string) (NodeInfo, error)
	// WatchNodes calls fn with every entry present, then with every
	// change (deleted: removed or expired; only ID is set) until ctx ends
	// or stop is called. It returns once the present entries have been
	// passed to fn. An entry not rewritten within the TTL is passed as
	// deleted when the registry expires it.
	WatchNodes(ctx context.Context, fn func(n NodeInfo, deleted bool)) (stop func(), err error)
}

// RoomDirectory is the room directory bucket.
type RoomDirectory interface {
	PutRoom(ctx context.Context, r RoomEntry) error
	RemoveRoom(ctx context.Context, id string) error
	// Room returns one room; ENotFound when the directory has none.
	Room(ctx context.Context, id string) (RoomEntry, error)
	// Rooms lists every room, by id.
	Rooms(ctx context.Context) ([]RoomEntry, error)
	// WatchRooms calls fn with every entry present, then with every change
	// (deleted: only ID is set) until ctx ends or stop is called. It
	// returns once the present entries have been passed to fn.
	WatchRooms(ctx context.Context, fn func(r RoomEntry, deleted bool)) (stop func(), err error)
}

// PresenceBucket holds each player's live session.
type PresenceBucket interface {
	// ClaimPresence makes p the player's live session (compare-and-swap,
	// retried until it holds) and returns the entry it replaced (zero
	// when none). The newest session wins: when the entry names another
	// session whose Since (its start) is after p.Since, it is left alone
	// and returned with an EConflict error.
	ClaimPresence(ctx context.Context, p Presence) (Presence, error)
	// ReleasePresence deletes the player's entry if it still names
	// sessionID; a newer session's entry is left alone.
	ReleasePresence(ctx context.Context, playerID, sessionID string) error
	// Presence returns the player's entry; ENotFound when offline.
	Presence(ctx context.Context, playerID string) (Presence, error)
	// WatchPresence calls fn for every later change of any entry
	// (deleted: the player went offline) until ctx ends or stop is
	// called. It returns once the watch is in place.
	WatchPresence(ctx context.Context, fn func(p Presence, deleted bool)) (stop func(), err error)
}

// SeatBucket holds seat reservations.
type SeatBucket interface {
	// CreateSeat stores s under s.Token until s.ExpiresAt.
	CreateSeat(ctx context.Context, s Seat) error
	// ClaimSeat takes the seat of token for playerID on node, once
	// (compare-and-swap delete): ENotFound when it is unknown, expired,
	// already claimed, or another player's or node's — which leaves it to
	// its owner.
	ClaimSeat(ctx context.Context, token, playerID, node string) (Seat, error)
}

// BanBucket holds account bans and the realtime keys nodes trust.
type BanBucket interface {
	PutBan(ctx context.Context, b BanEntry) error
	// DeleteBan lifts playerID's entry.
	DeleteBan(ctx context.Context, playerID string) error
	// WatchBans calls fn with every entry (deleted false), then with
	// every change until ctx ends or stop is called. It returns once the
	// entries present at the call have been passed to fn.
	WatchBans(ctx context.Context, fn func(b BanEntry, deleted bool)) (stop func(), err error)
}

// RevocationBucket holds token revocations (in the bans bucket).
type RevocationBucket interface {
	PutRevocation(ctx context.Context, r Revocation) error
	// WatchRevocations is WatchBans for revocations; an expired entry is
	// passed as deleted.
	WatchRevocations(ctx context.Context, fn func(r Revocation, deleted bool)) (stop func(), err error)
}

// KeyBucket mirrors the public keys realtime tokens are signed with.
type KeyBucket interface {
	// PutKeys replaces the published set.
	PutKeys(ctx context.Context, keys map[string]ed25519.PublicKey) error
	// WatchKeys calls fn with the current set (if any) and with every
	// later one, until ctx ends or stop is called.
	WatchKeys(ctx context.Context, fn func(map[string]ed25519.PublicKey)) (stop func(), err error)
}

// CommandBus carries commands to one node and its acknowledgement back.
type CommandBus interface {
	// SendCommand delivers c to c.Node and waits for its result; an error
	// means not delivered (the node is unknown, down or slow): retry with
	// the same id.
	SendCommand(ctx context.Context, c Command) (CommandResult, error)
	// ServeCommands answers node's commands with handle until ctx ends.
	// A command id seen in the last 24 h is answered with its first
	// result, never handled twice.
	ServeCommands(ctx context.Context, node string, handle func(context.Context, Command) CommandResult) error
}

// SeatBroker carries seat requests between nodes.
type SeatBroker interface {
	// RequestSeat asks node to reserve a seat (SeatRequest.RoomID on it).
	RequestSeat(ctx context.Context, node string, r SeatRequest) (Seat, error)
	// ServeSeats answers node's seat requests with reserve until ctx ends.
	ServeSeats(ctx context.Context, node string, reserve func(context.Context, SeatRequest) (Seat, error)) error
}

// Inspector carries the console's read-only questions to the node that
// holds a room or a player.
type Inspector interface {
	// InspectRoom asks node about roomID; ENotFound when it has no such
	// room.
	InspectRoom(ctx context.Context, node, roomID string) (RoomInspection, error)
	// InspectPlayer asks node about playerID's session; ENotFound when it
	// holds none.
	InspectPlayer(ctx context.Context, node, playerID string) (LivePlayer, error)
	// ServeInspections answers node's questions with h until ctx ends.
	ServeInspections(ctx context.Context, node string, h InspectHandler) error
}

// InspectHandler is how a node answers the console's questions.
type InspectHandler interface {
	InspectRoom(ctx context.Context, roomID string) (RoomInspection, error)
	InspectPlayer(ctx context.Context, playerID string) (LivePlayer, error)
}

// EventStream is the durable stream of cluster events.
type EventStream interface {
	// PublishEvent stores e in the stream (deduplicated by e.ID).
	PublishEvent(ctx context.Context, e Event) error
	// ConsumeEvents hands the stream's events to handle in order, in
	// batches, under the durable consumer name, until ctx ends; a batch
	// is acknowledged when handle returns nil and redelivered otherwise.
	ConsumeEvents(ctx context.Context, durable string, handle func(context.Context, []Event) error) error
}

// Waker carries wake-ups between the web replicas: a replica that commits
// a change a leased job mirrors (bans, keys, commands) wakes the job on
// whichever replica holds its lease. Best effort: the job's own interval
// catches a lost wake-up.
type Waker interface {
	// Wake wakes job on every replica watching it.
	Wake(ctx context.Context, job string) error
	// WatchWakes calls fn for every later wake-up of job until ctx ends
	// or stop is called. It returns once the watch is in place.
	WatchWakes(ctx context.Context, job string, fn func()) (stop func(), err error)
}

// Cluster is everything the bus holds and carries.
type Cluster interface {
	NodeRegistry
	RoomDirectory
	PresenceBucket
	SeatBucket
	BanBucket
	RevocationBucket
	KeyBucket
	CommandBus
	SeatBroker
	Inspector
	EventStream
	Waker
}
