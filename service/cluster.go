package service

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
)

// The cluster as admins see it: live nodes and rooms from the bus, their
// history from the database. What the web server does to the cluster
// (commands) is in commands.go; its background jobs in jobs.go.

// ClusterConfig times the cluster's background jobs. Zero durations take
// the defaults named on each field.
type ClusterConfig struct {
	// RelayInterval is how often the outbox relay looks for commands
	// besides being woken by SendCommand (default 1s).
	RelayInterval time.Duration
	// CommandGiveUp fails a command not delivered this long after it was
	// sent (default 10m).
	CommandGiveUp time.Duration
	// NodeCheckInterval is how often the registry is compared with the
	// nodes the database knows (default 2s).
	NodeCheckInterval time.Duration
	// NodeTTL is the registry's heartbeat TTL: a node not seen for this
	// long is down (default 10s, as the bus's).
	NodeTTL time.Duration
	// BanMirrorInterval is how often the bans and keys buckets are made
	// to match the database besides being woken by a change (default 30s).
	BanMirrorInterval time.Duration
	// LeaseRetry is how long a replica waits before trying again for a
	// job's lease held by another (default 5s).
	LeaseRetry time.Duration
	// NodeCache is how long the registry read for choosing a login's
	// node is reused (default 1s).
	NodeCache time.Duration
	// EventConsumer names the durable consumer of the event stream
	// (default "tandem-web").
	EventConsumer string
	// Retention is how long the sweep keeps cluster events, delivered
	// and failed commands and closed realtime sessions (default 30 days).
	Retention time.Duration
}

func (c *ClusterConfig) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.RelayInterval, time.Second)
	def(&c.CommandGiveUp, 10*time.Minute)
	def(&c.NodeCheckInterval, 2*time.Second)
	def(&c.NodeTTL, 10*time.Second)
	def(&c.BanMirrorInterval, 30*time.Second)
	def(&c.LeaseRetry, 5*time.Second)
	def(&c.NodeCache, time.Second)
	def(&c.Retention, 30*24*time.Hour)
	if c.EventConsumer == "" {
		c.EventConsumer = "tandem-web"
	}
}

// clusterState is what the service keeps between calls about the
// cluster: the wake-up channels of its jobs and the node cache of login.
type clusterState struct {
	// Each holds at most one wake-up: a job busy when woken runs once more.
	relayWake chan struct{}
	banWake   chan struct{}
	keyWake   chan struct{}
	queueWake chan struct{}

	mu      sync.Mutex
	nodes   []tandem.NodeInfo
	nodesAt time.Time
}

func newClusterState() clusterState {
	return clusterState{
		relayWake: make(chan struct{}, 1),
		banWake:   make(chan struct{}, 1),
		keyWake:   make(chan struct{}, 1),
		queueWake: make(chan struct{}, 1),
	}
}

// wakeJob wakes job here and, through the bus, on whichever replica holds
// its lease: called after a commit that changes what the job mirrors or
// delivers.
func (s *Service) wakeJob(ctx context.Context, job string) {
	switch job {
	case jobRelay:
		wake(s.cluster.relayWake)
	case jobBans:
		wake(s.cluster.banWake)
	case jobKeys:
		wake(s.cluster.keyWake)
	case jobQueues:
		wake(s.cluster.queueWake)
	}
	if s.cfg.Cluster == nil {
		return
	}
	// Best effort: the job's interval catches a lost wake-up.
	if err := s.cfg.Cluster.Wake(context.WithoutCancel(ctx), job); err != nil {
		s.log.Warn("cluster wake-up not sent", "job", job, "err", err)
	}
}

// wake signals a job without waiting.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// CommandRecord is a node command and how its delivery went.
type CommandRecord = tandem.CommandRecord

// NodeStatus is a node as the nodes page shows it: live from the
// registry, or known down from the database.
type NodeStatus struct {
	tandem.NodeInfo
	Down   bool
	DownAt time.Time
}

// RoomFilter selects live rooms; empty fields select all.
type RoomFilter struct {
	Type  string
	Label string // "key=value"
	Node  string
}

// LiveStatus is where a player is connected now.
type LiveStatus struct {
	Online    bool
	Node      string
	SessionID string
	Since     time.Time
	Rooms     []string // ids of the directory's rooms the player is in; nil without rooms:read
	// From the node holding the session, when it answers: whether the
	// client is connected (false: the session is held for a resume) and
	// the median of its recent pings (0 before the first).
	Connected bool
	RTTMillis float64
	// InspectError says why the node did not answer; the presence data
	// above is shown all the same.
	InspectError string
}

// RoomDetail is a live room and its recent history.
type RoomDetail struct {
	Room   tandem.RoomEntry
	Events []tandem.Event // newest first, at most roomEvents
	// From the room's node, when it answers: the members' sessions in
	// join order and the room's state as its first member sees it (JSON
	// for the built-in room types, any bytes for others; nil without
	// members).
	Players  []tandem.LivePlayer
	Snapshot []byte
	// InspectError says why the node did not answer; the directory's
	// entry and the events are shown all the same.
	InspectError string
}

const (
	roomEvents = 50
	// downShown is how long a node declared down stays on the nodes page.
	downShown = 24 * time.Hour
)

// Nodes lists the live nodes and those declared down in the last day, by
// id (rooms:read).
func (s *Service) Nodes(ctx context.Context, a *Actor) ([]NodeStatus, error) {
	var known []*tandem.ClusterNode
	err := s.view(ctx, a, op{action: "node.list", perm: tandem.PermRoomsRead}, func(tx tandem.Tx) (err error) {
		known, err = tx.ClusterNodes(ctx)
		return err
	})
	if err != nil || s.cfg.Cluster == nil {
		return nil, err
	}
	live, err := s.cfg.Cluster.Nodes(ctx)
	if err != nil {
		return nil, busError(err)
	}
	out := make([]NodeStatus, 0, len(live))
	for _, n := range live {
		out = append(out, NodeStatus{NodeInfo: n})
	}
	now := s.now()
	for _, k := range known {
		isLive := slices.ContainsFunc(live, func(n tandem.NodeInfo) bool { return n.ID == k.ID })
		if isLive || k.DownAt.IsZero() || now.Sub(k.DownAt) > downShown {
			continue
		}
		out = append(out, NodeStatus{
			NodeInfo: tandem.NodeInfo{ID: k.ID, URL: k.URL, Version: k.Version, Heartbeat: k.LastHeartbeat},
			Down:     true, DownAt: k.DownAt,
		})
	}
	slices.SortFunc(out, func(x, y NodeStatus) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

// LiveRooms lists the directory's rooms f selects, oldest first
// (rooms:read).
func (s *Service) LiveRooms(ctx context.Context, a *Actor, f RoomFilter) ([]tandem.RoomEntry, error) {
	o := op{action: "room.list", perm: tandem.PermRoomsRead}
	if err := s.authorize(a, o); err != nil {
		s.auditDenied(ctx, s.newRecord(a, o), err)
		return nil, err
	}
	if s.cfg.Cluster == nil {
		return nil, nil
	}
	labelKey, labelValue, hasLabel := strings.Cut(f.Label, "=")
	if f.Label != "" && !hasLabel {
		return nil, tandem.Invalid([]tandem.FieldError{{Field: "label", Message: "write key=value"}})
	}
	rooms, err := s.cfg.Cluster.Rooms(ctx)
	if err != nil {
		return nil, busError(err)
	}
	out := rooms[:0]
	for _, r := range rooms {
		v, labelled := r.Labels[labelKey]
		switch {
		case f.Type != "" && r.Type != f.Type,
			f.Node != "" && r.Node != f.Node,
			f.Label != "" && (!labelled || v != labelValue):
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(x, y tandem.RoomEntry) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// LiveRoom returns a room of the directory with its recent stored events
// (rooms:read); ENotFound when the directory has no such room.
func (s *Service) LiveRoom(ctx context.Context, a *Actor, id string) (*RoomDetail, error) {
	o := op{action: "room.read", perm: tandem.PermRoomsRead, targetType: "room", targetID: id}
	if err := s.authorize(a, o); err != nil {
		s.auditDenied(ctx, s.newRecord(a, o), err)
		return nil, err
	}
	if s.cfg.Cluster == nil {
		return nil, tandem.Errorf(tandem.ENotFound, "no such room")
	}
	room, err := s.cfg.Cluster.Room(ctx, id)
	if err != nil {
		return nil, busError(err)
	}
	d := &RoomDetail{Room: room}
	err = s.store.View(ctx, func(tx tandem.Tx) (err error) {
		d.Events, err = tx.RoomEvents(ctx, id, roomEvents)
		return err
	})
	if err != nil {
		return nil, err
	}
	insp, err := s.cfg.Cluster.InspectRoom(ctx, room.Node, id)
	if err != nil {
		d.InspectError = s.inspectError(err, "room", id, room.Node)
		return d, nil
	}
	d.Players, d.Snapshot = insp.Players, insp.Snapshot
	return d, nil
}

// inspectError is what the console says when a node did not answer a
// question about a room or a player (what, id): the page shows the
// directory's data with this note instead of failing.
func (s *Service) inspectError(err error, what, id, node string) string {
	if tandem.ErrorCodeOf(err) == tandem.ENotFound {
		return "node " + node + " no longer holds this " + what
	}
	s.log.Warn("node did not answer an inspection", what, id, "node", node, "err", err)
	return "node " + node + " did not answer"
}

// PlayerLiveStatus tells whether and where a player is connected, and the
// directory's rooms they are in (players:read; the rooms only with
// rooms:read).
func (s *Service) PlayerLiveStatus(ctx context.Context, a *Actor, playerID string) (*LiveStatus, error) {
	o := op{action: "player.live", perm: tandem.PermPlayersRead, targetType: "player", targetID: playerID}
	if err := s.authorize(a, o); err != nil {
		s.auditDenied(ctx, s.newRecord(a, o), err)
		return nil, err
	}
	st := &LiveStatus{}
	if s.cfg.Cluster == nil {
		return st, nil
	}
	p, err := s.livePresence(ctx, playerID)
	switch {
	case err == nil:
		st.Online, st.Node, st.SessionID, st.Since = true, p.Node, p.SessionID, p.Since
	case tandem.ErrorCodeOf(err) != tandem.ENotFound:
		return nil, busError(err)
	}
	if st.Online {
		lp, err := s.cfg.Cluster.InspectPlayer(ctx, p.Node, playerID)
		if err != nil {
			st.InspectError = s.inspectError(err, "player", playerID, p.Node)
		} else {
			st.Connected, st.RTTMillis = lp.Connected, lp.RTTMillis
		}
	}
	if !a.Can(tandem.PermRoomsRead) {
		// Which rooms exist is rooms:read data: an actor reading players
		// only is told where the player is connected, not where they play.
		return st, nil
	}
	rooms, err := s.cfg.Cluster.Rooms(ctx)
	if err != nil {
		return nil, busError(err)
	}
	for _, r := range rooms {
		if slices.Contains(r.Players, playerID) {
			st.Rooms = append(st.Rooms, r.ID)
		}
	}
	return st, nil
}

// livePresence is the player's presence entry if it names a live node;
// ENotFound when there is none or its node is gone (a node killed outright
// leaves its entries behind until the node check purges them).
func (s *Service) livePresence(ctx context.Context, playerID string) (tandem.Presence, error) {
	p, err := s.cfg.Cluster.Presence(ctx, playerID)
	if err != nil {
		return p, err
	}
	if _, err := s.cfg.Cluster.Node(ctx, p.Node); tandem.ErrorCodeOf(err) == tandem.ENotFound {
		return tandem.Presence{}, tandem.Errorf(tandem.ENotFound, "player %q is offline", playerID)
	} else if err != nil {
		return tandem.Presence{}, err
	}
	return p, nil
}

// busError passes the bus's own tandem errors (ENotFound) on and makes
// anything else EUnavailable: the bus is down or slow, which a caller may
// retry.
func busError(err error) error {
	if tandem.ErrorCodeOf(err) == tandem.ENotFound {
		return err
	}
	if _, ok := err.(*tandem.Error); ok {
		return err
	}
	return tandem.Errorf(tandem.EUnavailable, "the cluster bus is not answering: %v", err)
}

// realtimeURL is the endpoint playerID is sent to: the live node holding
// the player's session (an SDK that cannot reach its node asks again, and
// must be told to keep trying while that node lives: a resume works only
// there), else the live, non-draining node with the fewest connections
// (ties by id), else the configured URL.
func (s *Service) realtimeURL(ctx context.Context, playerID string) string {
	if s.cfg.Cluster == nil {
		return s.cfg.Players.RealtimeURL
	}
	nodes := s.cachedNodes(ctx)
	if p, err := s.cfg.Cluster.Presence(ctx, playerID); err == nil {
		for _, n := range nodes {
			if n.ID == p.Node && n.URL != "" && !n.Draining {
				return n.URL
			}
		}
	}
	best := -1
	for i, n := range nodes {
		if n.Draining || n.URL == "" {
			continue
		}
		if best < 0 || n.Connections < nodes[best].Connections ||
			(n.Connections == nodes[best].Connections && n.ID < nodes[best].ID) {
			best = i
		}
	}
	if best < 0 {
		return s.cfg.Players.RealtimeURL
	}
	return nodes[best].URL
}

// cachedNodes reads the registry at most once per NodeCache, so a burst of
// logins costs one read.
func (s *Service) cachedNodes(ctx context.Context) []tandem.NodeInfo {
	c := &s.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if !c.nodesAt.IsZero() && now.Sub(c.nodesAt) < s.cfg.ClusterJobs.NodeCache {
		return c.nodes
	}
	nodes, err := s.cfg.Cluster.Nodes(ctx)
	if err != nil {
		// Logins go on to the configured URL (or the last known nodes)
		// while the bus is away.
		s.log.Warn("node registry unreadable for login", "err", err)
		return c.nodes
	}
	c.nodes, c.nodesAt = nodes, now
	return nodes
}
