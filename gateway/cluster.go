package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/session"
)

// EventSink receives the node's cluster events (natsbus.EventBuffer in the
// program). Emit must never block: it is called from room goroutines.
type EventSink interface{ Emit(tandem.Event) }

// busTimeout bounds one bus operation made on behalf of a client or a
// background loop, so a bus outage never holds a goroutine for good.
const busTimeout = 5 * time.Second

// cluster is the node's agent in the cluster: the registry heartbeat, the
// room directory writer, presence, bans, token revocations, seats, operator
// commands and the console's inspections. It
// exists only when Config.Cluster is set. Its goroutines stop in stop.
type cluster struct {
	g       *Gateway
	bus     tandem.Cluster
	node    string
	started time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// watches stop the presence, ban and revocation watchers.
	watches []func()

	dirWake  chan struct{} // the directory has dirty rooms
	workWake chan struct{} // the worker has jobs
	beatNow  chan struct{} // write the registry entry now (drain)
	stopOnce sync.Once

	mu          sync.Mutex
	dirty       map[string]struct{}                // rooms whose directory entry is stale
	written     map[string]struct{}                // rooms the directory holds for this node
	bans        map[string]tandem.BanEntry         // by player
	pendingBans map[string]struct{}                // bans whose Start is still ahead
	revocations map[string]tandem.Revocation       // by player
	seats       map[string]map[string]time.Time    // room → unused seat token → expiry
	sessions    map[*session.Session]*sessionState // cluster state of each session
	jobs        []job
	stopped     bool // a clean stop ran: write nothing more
}

// sessionState is what the cluster knows of one local session.
type sessionState struct {
	claiming  bool         // its presence claim is in flight
	recheck   bool         // a presence change arrived while it was
	displaced bool         // another session took its presence: release nothing
	seat      *tandem.Seat // the reservation it came with, until used or expired
}

// job is work for the cluster worker: the bus calls that follow a watch
// or a session's end, kept off the watchers' and sessions' goroutines.
type job struct {
	kind    jobKind
	player  string
	session string // release
}

type jobKind uint8

const (
	jobCheckPresence     jobKind = iota + 1 // does the player's local session still own its presence?
	jobEnforceBan                           // end the banned player's session
	jobEnforceRevocation                    // end the player's session if its token is revoked
	jobRelease                              // release an ended session's presence
)

// startCluster loads the bans, starts the watches and the loops, and
// registers the node. On error everything started is stopped.
func (g *Gateway) startCluster() error {
	cl := &cluster{
		g:           g,
		bus:         g.cfg.Cluster,
		node:        g.cfg.Node,
		started:     time.Now(),
		dirWake:     make(chan struct{}, 1),
		workWake:    make(chan struct{}, 1),
		beatNow:     make(chan struct{}, 1),
		dirty:       make(map[string]struct{}),
		written:     make(map[string]struct{}),
		bans:        make(map[string]tandem.BanEntry),
		pendingBans: make(map[string]struct{}),
		revocations: make(map[string]tandem.Revocation),
		seats:       make(map[string]map[string]time.Time),
		sessions:    make(map[*session.Session]*sessionState),
	}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
	defer cancel()
	// Bans first: the node must refuse a banned player from its first
	// connect on.
	stop, err := cl.bus.WatchBans(cl.ctx, cl.onBan)
	if err != nil {
		cl.cancel()
		return fmt.Errorf("gateway: watch bans: %w", err)
	}
	cl.watches = append(cl.watches, stop)
	// Revocations likewise, before the first connect.
	stop, err = cl.bus.WatchRevocations(cl.ctx, cl.onRevocation)
	if err != nil {
		cl.stopWatches()
		cl.cancel()
		return fmt.Errorf("gateway: watch token revocations: %w", err)
	}
	cl.watches = append(cl.watches, stop)
	stop, err = cl.bus.WatchPresence(cl.ctx, cl.onPresence)
	if err != nil {
		cl.stopWatches()
		cl.cancel()
		return fmt.Errorf("gateway: watch presence: %w", err)
	}
	cl.watches = append(cl.watches, stop)
	if err := cl.bus.PutNode(ctx, cl.nodeInfo()); err != nil {
		cl.stopWatches()
		cl.cancel()
		return fmt.Errorf("gateway: register node: %w", err)
	}
	g.cl = cl
	cl.goLoop(cl.heartbeat)
	cl.goLoop(cl.writeDirectory)
	cl.goLoop(cl.work)
	cl.goLoop(func() {
		cl.serve("commands", func(ctx context.Context) error { return cl.bus.ServeCommands(ctx, cl.node, cl.command) })
	})
	cl.goLoop(func() {
		cl.serve("seats", func(ctx context.Context) error { return cl.bus.ServeSeats(ctx, cl.node, cl.reserve) })
	})
	cl.goLoop(func() {
		cl.serve("inspections", func(ctx context.Context) error { return cl.bus.ServeInspections(ctx, cl.node, cl) })
	})
	g.emit(tandem.Event{Kind: tandem.EventNodeUp, Attrs: map[string]string{"version": g.cfg.Version, "url": g.cfg.AdvertiseURL}})
	return nil
}

func (cl *cluster) goLoop(fn func()) {
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		fn()
	}()
}

func (cl *cluster) stopWatches() {
	for _, stop := range cl.watches {
		stop()
	}
	cl.watches = nil
}

// serve runs a bus server until the cluster stops, starting it again after
// a failure.
func (cl *cluster) serve(what string, run func(context.Context) error) {
	backoff := 50 * time.Millisecond
	for cl.ctx.Err() == nil {
		err := run(cl.ctx)
		if cl.ctx.Err() != nil {
			return
		}
		cl.g.log.Warn("cluster server stopped; restarting", "server", what, "err", err)
		select {
		case <-cl.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// stop is the clean stop: the loops end, the node's rooms and entry leave
// the directory and registry, ended sessions release their presence, and
// node.down is published. Idempotent.
func (cl *cluster) stop(ctx context.Context) {
	cl.stopOnce.Do(func() {
		cl.mu.Lock()
		cl.stopped = true
		cl.mu.Unlock()
		cl.stopWatches()
		cl.cancel()
		cl.wg.Wait()

		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), busTimeout)
		defer cancel()
		cl.mu.Lock()
		jobs := cl.jobs
		cl.jobs = nil
		ids := make([]string, 0, len(cl.written)+len(cl.dirty))
		for id := range cl.written {
			ids = append(ids, id)
		}
		for id := range cl.dirty {
			if _, ok := cl.written[id]; !ok {
				ids = append(ids, id)
			}
		}
		cl.written, cl.dirty = map[string]struct{}{}, map[string]struct{}{}
		cl.mu.Unlock()
		for _, r := range cl.g.rooms.List("") {
			ids = append(ids, r.ID)
		}
		for _, id := range ids {
			if err := cl.bus.RemoveRoom(ctx, id); err != nil {
				cl.g.log.Warn("remove room from directory", "room", id, "err", err)
			}
		}
		for _, j := range jobs {
			if j.kind == jobRelease {
				cl.do(ctx, j)
			}
		}
		if err := cl.bus.RemoveNode(ctx, cl.node); err != nil {
			cl.g.log.Warn("remove node from registry", "err", err)
		}
		cl.g.emit(tandem.Event{Kind: tandem.EventNodeDown, Reason: "stopped"})
	})
}

// --- registry -------------------------------------------------------------

func (cl *cluster) nodeInfo() tandem.NodeInfo {
	g := cl.g
	g.mu.Lock()
	conns, draining := len(g.conns), g.draining || g.closed
	g.mu.Unlock()
	return tandem.NodeInfo{
		ID:          cl.node,
		URL:         g.cfg.AdvertiseURL,
		Version:     g.cfg.Version,
		Draining:    draining,
		Connections: conns,
		Rooms:       g.rooms.Len(),
		StartedAt:   cl.started,
		Heartbeat:   time.Now(),
	}
}

// heartbeat rewrites the registry entry every HeartbeatInterval (and at
// once when the node starts draining), and brings bans into force when
// their start comes.
func (cl *cluster) heartbeat() {
	interval := cl.g.cfg.HeartbeatInterval
	t := time.NewTicker(min(interval, 100*time.Millisecond))
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-cl.ctx.Done():
			return
		case <-cl.beatNow:
			cl.putNode()
			last = time.Now()
		case now := <-t.C:
			cl.startBans(now)
			if now.Sub(last) >= interval {
				cl.putNode()
				last = now
			}
		}
	}
}

func (cl *cluster) putNode() {
	cl.mu.Lock()
	stopped := cl.stopped
	cl.mu.Unlock()
	if stopped {
		return
	}
	ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
	defer cancel()
	if err := cl.bus.PutNode(ctx, cl.nodeInfo()); err != nil && cl.ctx.Err() == nil {
		cl.g.log.Warn("node heartbeat", "err", err)
	}
}

// draining writes the registry entry at once: other nodes stop sending
// players here.
func (cl *cluster) draining() {
	select {
	case cl.beatNow <- struct{}{}:
	default:
	}
}

// --- directory ------------------------------------------------------------

// roomChanged marks a room's directory entry stale. It is called on room
// goroutines: it takes a lock no room needs and never waits for the bus.
func (cl *cluster) roomChanged(id string) {
	cl.mu.Lock()
	cl.dirty[id] = struct{}{}
	cl.mu.Unlock()
	select {
	case cl.dirWake <- struct{}{}:
	default:
	}
}

// roomClosed forgets a room's reservations and marks its entry stale.
func (cl *cluster) roomClosed(id string) {
	cl.mu.Lock()
	delete(cl.seats, id)
	cl.mu.Unlock()
	cl.roomChanged(id)
}

// writeDirectory is the one writer of this node's directory entries: it
// takes the dirty rooms as a set, so a burst of joins to a room costs one
// write of its latest state.
func (cl *cluster) writeDirectory() {
	for {
		select {
		case <-cl.ctx.Done():
			return
		case <-cl.dirWake:
		}
		cl.mu.Lock()
		dirty := cl.dirty
		cl.dirty = make(map[string]struct{})
		cl.mu.Unlock()
		for id := range dirty {
			if !cl.writeRoom(id) {
				// Not written (the bus failed): try again on the next wake.
				cl.roomChanged(id)
			}
		}
	}
}

func (cl *cluster) writeRoom(id string) bool {
	ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
	defer cancel()
	r, ok := cl.g.rooms.Get(id)
	if !ok {
		if err := cl.bus.RemoveRoom(ctx, id); err != nil {
			if cl.ctx.Err() == nil {
				cl.g.log.Warn("remove room from directory", "room", id, "err", err)
			}
			return cl.ctx.Err() != nil
		}
		cl.mu.Lock()
		delete(cl.written, id)
		cl.mu.Unlock()
		return true
	}
	if err := cl.bus.PutRoom(ctx, cl.entry(r)); err != nil {
		if cl.ctx.Err() == nil {
			cl.g.log.Warn("write room to directory", "room", id, "err", err)
		}
		return cl.ctx.Err() != nil
	}
	cl.mu.Lock()
	cl.written[id] = struct{}{}
	cl.mu.Unlock()
	return true
}

func (cl *cluster) entry(r *room.Room) tandem.RoomEntry {
	info, ro := r.Info(), r.Roster()
	return tandem.RoomEntry{
		ID:         info.ID,
		Type:       info.Type,
		Node:       cl.node,
		Players:    ro.Players,
		MaxPlayers: info.MaxPlayers,
		Open:       info.Open,
		Locked:     ro.Locked,
		CreatedAt:  ro.Created,
	}
}

// --- the worker -------------------------------------------------------------

func (cl *cluster) enqueue(j job) {
	cl.mu.Lock()
	if cl.stopped && j.kind != jobRelease {
		cl.mu.Unlock()
		return
	}
	cl.jobs = append(cl.jobs, j)
	cl.mu.Unlock()
	select {
	case cl.workWake <- struct{}{}:
	default:
	}
}

// work runs the jobs in order.
func (cl *cluster) work() {
	for {
		select {
		case <-cl.ctx.Done():
			return
		case <-cl.workWake:
		}
		for {
			cl.mu.Lock()
			if len(cl.jobs) == 0 || cl.ctx.Err() != nil {
				cl.mu.Unlock()
				break
			}
			j := cl.jobs[0]
			cl.jobs = cl.jobs[1:]
			cl.mu.Unlock()
			ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
			cl.do(ctx, j)
			cancel()
		}
	}
}

func (cl *cluster) do(ctx context.Context, j job) {
	switch j.kind {
	case jobCheckPresence:
		cl.checkPresence(ctx, j.player)
	case jobEnforceBan:
		cl.enforceBan(j.player)
	case jobEnforceRevocation:
		cl.enforceRevocation(j.player)
	case jobRelease:
		if err := cl.bus.ReleasePresence(ctx, j.player, j.session); err != nil && ctx.Err() == nil {
			cl.g.log.Warn("release presence", "player", j.player, "err", err)
		}
	}
}

// --- presence ---------------------------------------------------------------

// claim makes s the player's live session cluster-wide. It runs on the
// connection's reader right after the session opened; a presence change
// seen meanwhile is checked again once the claim holds.
func (cl *cluster) claim(s *session.Session, seat *tandem.Seat) {
	cl.mu.Lock()
	st := cl.sessions[s]
	if st == nil {
		st = &sessionState{}
		cl.sessions[s] = st
	}
	st.claiming, st.seat = true, seat
	cl.mu.Unlock()
	ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
	defer cancel()
	p := tandem.Presence{PlayerID: s.Player().ID, Node: cl.node, SessionID: s.ID(), Moved: seat != nil, Since: time.Now()}
	if _, err := cl.bus.ClaimPresence(ctx, p); err != nil {
		s.Logger().Warn("claim presence", "err", err)
	}
	cl.mu.Lock()
	st.claiming = false
	recheck := st.recheck
	st.recheck = false
	cl.mu.Unlock()
	if recheck {
		cl.enqueue(job{kind: jobCheckPresence, player: s.Player().ID})
	}
}

// onPresence is the presence watcher's callback: an entry naming another
// session than this node's one for the player is checked by the worker.
func (cl *cluster) onPresence(p tandem.Presence, deleted bool) {
	if deleted {
		return
	}
	s, ok := cl.g.sessions.ByPlayer(p.PlayerID)
	if !ok || s.ID() == p.SessionID {
		return
	}
	cl.enqueue(job{kind: jobCheckPresence, player: p.PlayerID})
}

// checkPresence ends the player's local session if the presence entry, read
// now, names another one. The entry is read rather than taken from the
// watch: the watch shows every write in order, and an older write than
// this node's claim must not end the session that replaced it.
func (cl *cluster) checkPresence(ctx context.Context, player string) {
	s, ok := cl.g.sessions.ByPlayer(player)
	if !ok {
		return
	}
	cl.mu.Lock()
	st := cl.sessions[s]
	if st == nil || st.claiming {
		// The claim has not begun or not returned: check after it.
		if st == nil && !s.Ended() {
			st = &sessionState{}
			cl.sessions[s] = st
		}
		if st != nil {
			st.recheck = true
		}
		cl.mu.Unlock()
		return
	}
	cl.mu.Unlock()
	cur, err := cl.bus.Presence(ctx, player)
	if err != nil {
		if tandem.ErrorCodeOf(err) != tandem.ENotFound && ctx.Err() == nil {
			cl.g.log.Warn("read presence", "player", player, "err", err)
		}
		return
	}
	if cur.SessionID == s.ID() {
		return
	}
	cl.mu.Lock()
	st.displaced = true
	cl.mu.Unlock()
	if cur.Moved {
		cl.g.sessions.End(cl.g.ctx, s, protocol.LeaveReason_LEAVE_REASON_MOVED, protocol.CloseMoved, "moved to node "+cur.Node)
		return
	}
	cl.g.sessions.End(cl.g.ctx, s, protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED, protocol.CloseDuplicateSession, "duplicate session")
}

// sessionEnded forgets a session and releases its presence, unless another
// session took it.
func (cl *cluster) sessionEnded(s *session.Session) {
	cl.mu.Lock()
	st := cl.sessions[s]
	delete(cl.sessions, s)
	if st != nil && st.seat != nil {
		cl.dropSeat(st.seat.RoomID, st.seat.Token)
	}
	cl.mu.Unlock()
	if st != nil && st.displaced {
		return
	}
	cl.enqueue(job{kind: jobRelease, player: s.Player().ID, session: s.ID()})
}

// --- bans -----------------------------------------------------------------

// onBan keeps the node's copy of the bans bucket. A ban in force ends the
// player's session; one that starts later is brought in by the heartbeat
// loop.
func (cl *cluster) onBan(b tandem.BanEntry, deleted bool) {
	now := time.Now()
	cl.mu.Lock()
	if deleted {
		delete(cl.bans, b.PlayerID)
		delete(cl.pendingBans, b.PlayerID)
		cl.mu.Unlock()
		return
	}
	cl.bans[b.PlayerID] = b
	inForce := b.InForce(now)
	if !inForce && now.Before(b.Start) {
		cl.pendingBans[b.PlayerID] = struct{}{}
	} else {
		delete(cl.pendingBans, b.PlayerID)
	}
	cl.mu.Unlock()
	if inForce {
		cl.enqueue(job{kind: jobEnforceBan, player: b.PlayerID})
	}
}

// startBans enforces the bans whose start has come.
func (cl *cluster) startBans(now time.Time) {
	var due []string
	cl.mu.Lock()
	for id := range cl.pendingBans {
		if b := cl.bans[id]; !now.Before(b.Start) {
			delete(cl.pendingBans, id)
			if b.InForce(now) {
				due = append(due, id)
			}
		}
	}
	cl.mu.Unlock()
	for _, id := range due {
		cl.enqueue(job{kind: jobEnforceBan, player: id})
	}
}

// banned returns the player's ban in force at now, if any.
func (cl *cluster) banned(player string, now time.Time) (*tandem.Error, bool) {
	cl.mu.Lock()
	b, ok := cl.bans[player]
	cl.mu.Unlock()
	if !ok || !b.InForce(now) {
		return nil, false
	}
	return banError(b), true
}

func banError(b tandem.BanEntry) *tandem.Error {
	msg := "the player is banned"
	if b.Reason != "" {
		msg += ": " + b.Reason
	}
	if !b.Until.IsZero() {
		msg += " (until " + b.Until.UTC().Format(time.RFC3339) + ")"
	}
	return &tandem.Error{Code: tandem.EBanned, Message: msg, Until: b.Until}
}

func (cl *cluster) enforceBan(player string) {
	berr, ok := cl.banned(player, time.Now())
	if !ok {
		return
	}
	s, ok := cl.g.sessions.ByPlayer(player)
	if !ok {
		return
	}
	// The error rides the session stream ahead of the close, so a live
	// client reads why; a held session just ends.
	s.Reply(errorEnvelope(0, berr))
	cl.g.sessions.End(cl.g.ctx, s, protocol.LeaveReason_LEAVE_REASON_KICKED, protocol.CloseBanned, "banned")
}

// --- token revocations ------------------------------------------------------

// onRevocation keeps the node's copy of the revocations; a new one ends the
// player's session here if that session's token is revoked.
func (cl *cluster) onRevocation(r tandem.Revocation, deleted bool) {
	cl.mu.Lock()
	if deleted {
		delete(cl.revocations, r.PlayerID)
		cl.mu.Unlock()
		return
	}
	cl.revocations[r.PlayerID] = r
	cl.mu.Unlock()
	cl.enqueue(job{kind: jobEnforceRevocation, player: r.PlayerID})
}

// revoked reports whether the player's token issued at iat is revoked.
func (cl *cluster) revoked(player string, iat int64) bool {
	cl.mu.Lock()
	r, ok := cl.revocations[player]
	cl.mu.Unlock()
	return ok && r.Revokes(iat)
}

func errRevoked() error {
	return tandem.Errorf(tandem.EUnauthenticated, "the token was revoked: log in again")
}

// sessionAuthenticated runs once a session is opened or resumed with a
// token issued at iat. A revocation that arrived between the connect's
// check and now found no session, or the previous token's iat: the check
// is made again now that the session shows this one.
func (cl *cluster) sessionAuthenticated(s *session.Session, iat int64) {
	s.SetTokenIssuedAt(iat)
	if cl.revoked(s.Player().ID, iat) {
		cl.enqueue(job{kind: jobEnforceRevocation, player: s.Player().ID})
	}
}

// enforceRevocation ends the player's session, live or held, if the token
// it was opened or last resumed with is revoked.
func (cl *cluster) enforceRevocation(player string) {
	s, ok := cl.g.sessions.ByPlayer(player)
	if !ok {
		return
	}
	// 0: the session is not authenticated yet; sessionAuthenticated checks.
	if iat := s.TokenIssuedAt(); iat == 0 || !cl.revoked(player, iat) {
		return
	}
	// As for a ban, the error rides the session stream ahead of the close;
	// a held session just ends.
	s.Reply(errorEnvelope(0, errRevoked()))
	cl.g.sessions.End(cl.g.ctx, s, protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED, protocol.CloseBadToken, "token revoked")
}

// --- inspections ----------------------------------------------------------

// InspectRoom answers the console about one of the node's rooms: its
// members and their first one's snapshot are read on the room goroutine.
func (cl *cluster) InspectRoom(ctx context.Context, roomID string) (tandem.RoomInspection, error) {
	r, ok := cl.g.rooms.Get(roomID)
	if !ok {
		return tandem.RoomInspection{}, tandem.Errorf(tandem.ENotFound, "no room %q on node %s", roomID, cl.node)
	}
	// The asker gives up after its request timeout: a room slow to reach
	// its mailbox must not keep one of the few inspection workers longer.
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	in, err := r.Inspect(ctx)
	if err != nil {
		return tandem.RoomInspection{}, err
	}
	ri := tandem.RoomInspection{Room: cl.entry(r), Players: make([]tandem.LivePlayer, len(in.Members)), Snapshot: in.Snapshot}
	ri.Room.Players = make([]string, len(in.Members))
	for i, m := range in.Members {
		ri.Room.Players[i] = m.PlayerID
		if s, ok := cl.g.sessions.ByPlayer(m.PlayerID); ok {
			ri.Players[i] = livePlayer(s)
		} else {
			// The session ended since: the room has yet to see it leave.
			ri.Players[i] = tandem.LivePlayer{PlayerID: m.PlayerID, Rooms: []string{}}
		}
	}
	return ri, nil
}

// InspectPlayer answers the console about the player's session here.
func (cl *cluster) InspectPlayer(_ context.Context, playerID string) (tandem.LivePlayer, error) {
	s, ok := cl.g.sessions.ByPlayer(playerID)
	if !ok {
		return tandem.LivePlayer{}, tandem.Errorf(tandem.ENotFound, "player %q has no session on node %s", playerID, cl.node)
	}
	return livePlayer(s), nil
}

func livePlayer(s *session.Session) tandem.LivePlayer {
	lp := tandem.LivePlayer{
		PlayerID:  s.Player().ID,
		SessionID: s.ID(),
		Connected: s.Connected(),
		Rooms:     s.Rooms(),
		Since:     s.Started(),
	}
	if sum := s.RTTSummary(); len(sum) > 0 {
		lp.RTTMillis = sum[0]
	}
	return lp
}

// --- commands -------------------------------------------------------------

// command applies one operator command. Room actions go through the
// room's mailbox.
func (cl *cluster) command(ctx context.Context, c tandem.Command) tandem.CommandResult {
	res := tandem.CommandResult{ID: c.ID, Node: cl.node, OK: true}
	fail := func(format string, args ...any) tandem.CommandResult {
		res.OK, res.Error = false, fmt.Sprintf(format, args...)
		return res
	}
	g := cl.g
	switch c.Kind {
	case tandem.CommandKick:
		s, ok := g.sessions.ByPlayer(c.PlayerID)
		if !ok {
			return fail("player %q has no session on node %s", c.PlayerID, cl.node)
		}
		g.sessions.End(g.ctx, s, protocol.LeaveReason_LEAVE_REASON_KICKED, protocol.CloseKicked, "kicked by an operator")
	case tandem.CommandNotice:
		if n := cl.notice(c); n < 0 {
			if c.PlayerID != "" {
				return fail("player %q has no session on node %s", c.PlayerID, cl.node)
			}
			return fail("no room %q on node %s", c.RoomID, cl.node)
		}
	case tandem.CommandCloseRoom, tandem.CommandLockRoom, tandem.CommandUnlockRoom:
		r, ok := g.rooms.Get(c.RoomID)
		if !ok {
			return fail("no room %q on node %s", c.RoomID, cl.node)
		}
		var err error
		switch c.Kind {
		case tandem.CommandCloseRoom:
			err = r.Close(ctx)
		case tandem.CommandLockRoom:
			err = r.SetLocked(ctx, true)
		default:
			err = r.SetLocked(ctx, false)
		}
		if err != nil {
			return fail("%s", tandem.ErrorMessageOf(err))
		}
	case tandem.CommandDrain:
		if g.cfg.OnDrainCommand == nil {
			return fail("node %s cannot drain on command", cl.node)
		}
		g.cfg.OnDrainCommand()
	default:
		return fail("unknown command kind %q", c.Kind)
	}
	return res
}

// notice sends a system notice to the player, the room's members or every
// session, and returns how many got it (-1: no such player or room).
func (cl *cluster) notice(c tandem.Command) int {
	g := cl.g
	var to []*session.Session
	switch {
	case c.PlayerID != "":
		s, ok := g.sessions.ByPlayer(c.PlayerID)
		if !ok {
			return -1
		}
		to = []*session.Session{s}
	case c.RoomID != "":
		if _, ok := g.rooms.Get(c.RoomID); !ok {
			return -1
		}
		for _, s := range g.sessions.Sessions() {
			if _, in := s.Room(c.RoomID); in {
				to = append(to, s)
			}
		}
	default:
		to = g.sessions.Sessions()
	}
	for _, s := range to {
		// One envelope each: Reply stamps it with the session's seq.
		s.Reply(&protocol.Envelope{Body: &protocol.Envelope_Notice{Notice: &protocol.Notice{Kind: "system", Text: c.Text}}})
	}
	return len(to)
}

// --- seats ------------------------------------------------------------------

// reserve answers another node's seat request for a room of this node.
func (cl *cluster) reserve(ctx context.Context, req tandem.SeatRequest) (tandem.Seat, error) {
	g := cl.g
	if !g.Ready() {
		return tandem.Seat{}, tandem.Errorf(tandem.EUnavailable, "node %s is draining", cl.node)
	}
	r, ok := g.rooms.Get(req.RoomID)
	if !ok {
		return tandem.Seat{}, tandem.Errorf(tandem.ENotFound, "no room %q", req.RoomID)
	}
	info, ro := r.Info(), r.Roster()
	if ro.Locked {
		return tandem.Seat{}, tandem.Errorf(tandem.EJoinRejected, "room %s is locked", req.RoomID)
	}
	now := time.Now()
	seat := tandem.Seat{
		Token:     newSeatToken(),
		RoomID:    req.RoomID,
		PlayerID:  req.PlayerID,
		Node:      cl.node,
		NodeURL:   g.cfg.AdvertiseURL,
		ExpiresAt: now.Add(g.cfg.SeatTTL),
	}
	cl.mu.Lock()
	held := cl.seats[req.RoomID]
	for tok, exp := range held {
		if !now.Before(exp) {
			delete(held, tok)
		}
	}
	if info.MaxPlayers > 0 && len(ro.Players)+len(held) >= info.MaxPlayers {
		cl.mu.Unlock()
		return tandem.Seat{}, tandem.Errorf(tandem.ERoomFull, "room %s is full", req.RoomID)
	}
	if held == nil {
		held = make(map[string]time.Time)
		cl.seats[req.RoomID] = held
	}
	held[seat.Token] = seat.ExpiresAt
	cl.mu.Unlock()
	if err := cl.bus.CreateSeat(ctx, seat); err != nil {
		cl.mu.Lock()
		cl.dropSeat(seat.RoomID, seat.Token)
		cl.mu.Unlock()
		return tandem.Seat{}, err
	}
	return seat, nil
}

// dropSeat forgets a reservation (used or given up). cl.mu is held.
func (cl *cluster) dropSeat(roomID, token string) {
	if held := cl.seats[roomID]; held != nil {
		delete(held, token)
	}
}

// claimSeat takes the seat a connecting client presents: it must be
// unused, unexpired, for this player and on this node.
func (cl *cluster) claimSeat(token, player string) (*tandem.Seat, error) {
	ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
	defer cancel()
	seat, err := cl.bus.ClaimSeat(ctx, token)
	if err != nil || seat.PlayerID != player || seat.Node != cl.node || !time.Now().Before(seat.ExpiresAt) {
		if err != nil && tandem.ErrorCodeOf(err) != tandem.ENotFound {
			cl.g.log.Warn("claim seat", "err", err)
		}
		return nil, errSeatUnknown()
	}
	seat.Token = token
	return &seat, nil
}

func errSeatUnknown() error {
	return tandem.Errorf(tandem.ENotFound, "the seat reservation is unknown, used or expired")
}

// seatFor returns the reservation s holds in roomID, if it is still valid.
func (cl *cluster) seatFor(s *session.Session, roomID string, now time.Time) (*tandem.Seat, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	st := cl.sessions[s]
	if st == nil || st.seat == nil || st.seat.RoomID != roomID || !now.Before(st.seat.ExpiresAt) {
		return nil, false
	}
	return st.seat, true
}

// seatUsed forgets the reservation s held once it joined the room.
func (cl *cluster) seatUsed(s *session.Session, seat *tandem.Seat) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if st := cl.sessions[s]; st != nil && st.seat == seat {
		st.seat = nil
	}
	cl.dropSeat(seat.RoomID, seat.Token)
}

// seatElsewhere asks the node running roomID for a seat for s's player.
func (cl *cluster) seatElsewhere(ctx context.Context, s *session.Session, roomID string) (*protocol.SeatReservation, error) {
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	e, err := cl.bus.Room(ctx, roomID)
	if err != nil || e.Node == cl.node {
		if err != nil && tandem.ErrorCodeOf(err) != tandem.ENotFound {
			return nil, tandem.Errorf(tandem.EUnavailable, "the room directory is not available")
		}
		return nil, tandem.Errorf(tandem.ENotFound, "no room %q", roomID)
	}
	n, err := cl.bus.Node(ctx, e.Node)
	if err != nil || n.Draining {
		return nil, tandem.Errorf(tandem.EUnavailable, "the node of room %q is not taking players", roomID)
	}
	seat, err := cl.bus.RequestSeat(ctx, e.Node, tandem.SeatRequest{RoomID: roomID, PlayerID: s.Player().ID, FromNode: cl.node})
	if err != nil {
		return nil, err
	}
	url := seat.NodeURL
	if url == "" {
		url = n.URL
	}
	return &protocol.SeatReservation{RoomId: roomID, NodeUrl: url, SeatToken: seat.Token, ExpiresAtMs: seat.ExpiresAt.UnixMilli()}, nil
}

// rooms lists the directory's rooms open to join-or-create, of a type
// ("" for all).
func (cl *cluster) rooms(ctx context.Context, typeName string) ([]*protocol.RoomInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	entries, err := cl.bus.Rooms(ctx)
	if err != nil {
		return nil, err
	}
	var out []*protocol.RoomInfo
	for _, e := range entries {
		if !e.Open || e.Locked || (typeName != "" && e.Type != typeName) {
			continue
		}
		out = append(out, &protocol.RoomInfo{
			RoomId: e.ID, RoomType: e.Type, Players: uint32(len(e.Players)), MaxPlayers: uint32(e.MaxPlayers),
			Open: e.Open, Node: e.Node,
		})
	}
	return out, nil
}

func newSeatToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
