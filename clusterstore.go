package tandem

import (
	"context"
	"time"
)

// What the web server stores about the cluster: the outbox of node
// commands, the events nodes publish, the realtime sessions those events
// describe and the nodes it has seen. The bus holds the live state; the
// database holds the history and what must survive a web restart.

// The states of a stored command.
const (
	CommandPending   = "pending"   // in the outbox, not yet acknowledged by its node
	CommandDelivered = "delivered" // acknowledged by its node (ResultOK says whether it applied)
	CommandFailed    = "failed"    // given up: not delivered in time
)

// CommandRecord is a node command as the outbox keeps it: the command and
// how its delivery went.
type CommandRecord struct {
	Command
	State       string // CommandPending, CommandDelivered or CommandFailed
	Attempts    int
	LastError   string // why the last attempt did not deliver
	ResultOK    bool   // the node's answer, once delivered
	ResultError string
	DeliveredAt time.Time
	CreatedBy   string // the admin's name (or the API key's, the CLI user's)
}

// RealtimeSession is a player's connection to a realtime node as the
// session events describe it.
type RealtimeSession struct {
	ID        string
	Node      string
	PlayerID  string
	OpenedAt  time.Time
	ClosedAt  time.Time // zero while open
	CloseCode int
	Reason    string
	Duration  time.Duration
	RTTMillis []float64 // p50, p99, max
}

// ClusterNode is a realtime node the web server has seen in the registry.
type ClusterNode struct {
	ID            string
	URL           string
	Version       string
	FirstSeen     time.Time
	LastHeartbeat time.Time // when a web server last saw it in the registry, by the web server's clock
	DownAt        time.Time // when it was declared down; zero while live
}

// MatchQueueRecord is a matchmaking queue's configuration as the database
// keeps it: the source the queue mirror copies to the bus's queue bucket.
type MatchQueueRecord struct {
	MatchQueue
	UpdatedBy string // the admin's name (or the API key's, the CLI user's)
}

// MatchRecord is a committed match as the event consumer stores it from
// its EventMatch.
type MatchRecord struct {
	ID     string // the match id
	Queue  string
	RoomID string
	Node   string // the node that published the event
	// Teams are the players' ids by team (free-for-all: one team).
	Teams    [][]string
	WaitMS   int64 // the longest wait of the match's tickets
	Backfill bool  // into an existing room
	At       time.Time
}

// Lease is a named lease on background work, so that of the web replicas
// sharing a database only one runs a job at a time.
type Lease interface {
	// TryLease takes the lease name if no one holds it. ok false: someone
	// does; try again later. While held, lost is closed if the lease is
	// lost (the database connection holding it broke): the job must stop.
	// release gives it back; it is safe to call more than once.
	TryLease(ctx context.Context, name string) (release func(), lost <-chan struct{}, ok bool, err error)
}

// ClusterTx stores the cluster's history.
type ClusterTx interface {
	// CreateCommand inserts c into the outbox; a taken id is EConflict.
	CreateCommand(ctx context.Context, c *CommandRecord) error
	// Command returns one command; ENotFound when unknown.
	Command(ctx context.Context, id string) (*CommandRecord, error)
	// UpdateCommand writes State, Attempts, LastError, ResultOK,
	// ResultError and DeliveredAt of a command still pending: one
	// already delivered or failed (by another relay) is left as it is
	// and the call is EConflict; ENotFound when unknown.
	UpdateCommand(ctx context.Context, c *CommandRecord) error
	// PendingCommands returns up to limit pending commands, oldest
	// first, leaving out those addressed to a node in skipNodes.
	PendingCommands(ctx context.Context, limit int, skipNodes []string) ([]*CommandRecord, error)
	// Commands returns up to limit commands (default 100, at most 1000),
	// newest first.
	Commands(ctx context.Context, limit int) ([]*CommandRecord, error)

	// InsertEvents stores the events whose ids are not stored yet and
	// returns how many it stored: a batch delivered twice is stored once.
	InsertEvents(ctx context.Context, events []Event) (int, error)
	// RoomEvents returns up to limit events of the room, newest first.
	RoomEvents(ctx context.Context, roomID string, limit int) ([]Event, error)
	// NodeEvents returns up to limit events of the node, newest first.
	NodeEvents(ctx context.Context, node string, limit int) ([]Event, error)

	// OpenRealtimeSession records an opened session; one already recorded
	// is left as it is.
	OpenRealtimeSession(ctx context.Context, s *RealtimeSession) error
	// CloseRealtimeSession records a closed session (inserting it when its
	// opening was never seen). A session already closed is overwritten
	// only if it was closed by a node-down declaration: the node's own
	// account is better.
	CloseRealtimeSession(ctx context.Context, s *RealtimeSession) error
	// RealtimeSessions returns up to limit sessions of the player, newest
	// first.
	RealtimeSessions(ctx context.Context, playerID string, limit int) ([]*RealtimeSession, error)
	// CloseNodeSessions closes every open session of node opened at or
	// before at (or whose opening was never seen), at at, with close
	// code 0 and reason, and returns them (ID, Node and PlayerID set).
	// A session opened after at belongs to a later life of the node.
	CloseNodeSessions(ctx context.Context, node string, at time.Time, reason string) ([]*RealtimeSession, error)

	// DeleteOldClusterHistory removes the events older than before, the
	// delivered and failed commands created before it, the sessions
	// closed before it and the matches made before it, and returns how
	// many rows it removed.
	DeleteOldClusterHistory(ctx context.Context, before time.Time) (int, error)

	// PutClusterNode records a live node: URL, Version and LastHeartbeat
	// are written, FirstSeen kept from the first time, DownAt cleared.
	PutClusterNode(ctx context.Context, n *ClusterNode) error
	// ClusterNodes returns every recorded node, by id.
	ClusterNodes(ctx context.Context) ([]*ClusterNode, error)
	// MarkNodeDown sets the node's DownAt; ENotFound when unknown.
	MarkNodeDown(ctx context.Context, id string, at time.Time) error

	// AccountBansFrom returns the account bans, of every player, that
	// are neither lifted nor ended at now (in force or starting later),
	// by player then id.
	AccountBansFrom(ctx context.Context, now time.Time) ([]*Ban, error)

	// PutRevocation stores r as its player's revocation. One the player
	// has already is kept where it reaches further: the stored
	// IssuedBefore and ExpiresAt are the later of the two.
	PutRevocation(ctx context.Context, r *Revocation) error
	// RevocationsFrom returns the revocations not expired at now, by
	// player.
	RevocationsFrom(ctx context.Context, now time.Time) ([]Revocation, error)
	// DeleteExpiredRevocations removes the revocations expired at now
	// and returns how many it removed.
	DeleteExpiredRevocations(ctx context.Context, now time.Time) (int, error)

	// PutMatchQueue stores q, replacing the queue of the same name.
	PutMatchQueue(ctx context.Context, q *MatchQueueRecord) error
	// DeleteMatchQueue removes a queue; ENotFound when unknown.
	DeleteMatchQueue(ctx context.Context, name string) error
	// MatchQueues returns every queue, by name.
	MatchQueues(ctx context.Context) ([]*MatchQueueRecord, error)
	// MatchQueue returns one queue; ENotFound when unknown.
	MatchQueue(ctx context.Context, name string) (*MatchQueueRecord, error)

	// InsertMatches stores the matches whose ids are not stored yet and
	// returns how many it stored: a match delivered twice is stored once.
	InsertMatches(ctx context.Context, matches []MatchRecord) (int, error)
	// RecentMatches returns up to limit matches of queue (default 100,
	// at most 1000), newest first.
	RecentMatches(ctx context.Context, queue string, limit int) ([]MatchRecord, error)
	// MatchWaits returns the WaitMS of every match of queue made at or
	// after since, in no particular order.
	MatchWaits(ctx context.Context, queue string, since time.Time) ([]int64, error)
}
