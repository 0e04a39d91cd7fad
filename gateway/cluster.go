package gateway

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
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

// setupTimeout bounds the cluster agent's start: loading the watched
// buckets and registering the node.
const setupTimeout = 2 * busTimeout

// commandTimeout bounds one operator command: commands are served one at
// a time, and a room slow to take its input must not hold up the others.
const commandTimeout = 2 * time.Second

// Retries of failed presence writes and directory writes back off
// between these bounds.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// releaseAttempts bounds the retries of a presence release: a release
// that never lands leaves an entry the player's next login replaces.
const releaseAttempts = 8

// ticketAttempts bounds the retries of a ticket's change (a seat taken, a
// session's tickets cancelled): with the backoff, about a minute.
const ticketAttempts = 12

// cluster is the node's agent in the cluster: the registry heartbeat, the
// room directory writer, the watched copies of the directory and the node
// registry, presence, bans, token revocations, seats, operator commands and
// the console's inspections. It exists only when Config.Cluster is set. Its
// goroutines stop in stop.
type cluster struct {
	g       *Gateway
	bus     tandem.Cluster
	node    string
	started time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// watches stop the presence, ban, revocation, node and room watchers.
	watches []func()

	// view is the node's copy of the room directory and the node
	// registry, kept by their watches: room lists and cross-node joins
	// read it instead of the bus.
	viewMu    sync.RWMutex
	viewRooms map[string]tandem.RoomEntry
	viewNodes map[string]tandem.NodeInfo

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
	sessions    map[*session.Session]*sessionState // cluster state of each session
	matchSeats  map[string]matchSeat               // matches' seats being taken, by room and player
	jobs        []job
	delayed     []job // retries, moved to jobs by the heartbeat loop when due
	stopped     bool  // a clean stop ran: write nothing more
}

// sessionState is what the cluster knows of one local session.
type sessionState struct {
	moved bool // it came with a seat reservation: its claims say moved
	// claiming: a claim job for it is queued, running or waiting for a
	// retry. Until the claim returns, the session's end leaves the
	// release to the claim job, so that no claim lands after its release.
	claiming  bool
	claimed   bool         // a claim of it held
	ended     bool         // it ended while claiming
	displaced bool         // another session took its presence: release nothing
	seat      *tandem.Seat // the reservation it came with, until used or expired
}

// job is work for the cluster worker: the bus calls that follow a watch
// or a session's start or end, kept off the watchers', sessions' and
// connections' goroutines.
type job struct {
	kind    jobKind
	player  string
	session string           // release
	s       *session.Session // claim
	roomID  string           // unreserve
	seat    string           // unreserve: the seat's key
	queue   string           // seated: the match's queue
	attempt int              // retries so far
	due     time.Time        // a delayed retry: when it runs
}

type jobKind uint8

const (
	jobClaim             jobKind = iota + 1 // make a new session the player's live one
	jobCheckPresence                        // does the player's local session still own its presence?
	jobEnforceBan                           // end the banned player's session
	jobEnforceRevocation                    // end the player's session if its token is revoked
	jobRelease                              // release an ended session's presence
	jobUnreserve                            // give back a room place held for an unused seat
	jobSeated                               // a player took the seat of a match: tell its ticket
	jobCancelTickets                        // a session ended: cancel its player's searching tickets
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
		matchSeats:  make(map[string]matchSeat),
		sessions:    make(map[*session.Session]*sessionState),
		viewRooms:   make(map[string]tandem.RoomEntry),
		viewNodes:   make(map[string]tandem.NodeInfo),
	}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	if err := cl.setup(); err != nil {
		cl.stopWatches()
		cl.cancel()
		return err
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
	if err := cl.startMatchmaking(); err != nil {
		cl.stop(context.Background())
		g.cl = nil
		return fmt.Errorf("gateway: matchmaking: %w", err)
	}
	g.emit(tandem.Event{Kind: tandem.EventNodeUp, Attrs: map[string]string{"version": g.cfg.Version, "url": g.cfg.AdvertiseURL}})
	return nil
}

// setup starts the watches (each returns once it loaded its bucket) and
// registers the node, within setupTimeout: the watches live as long as
// cl.ctx, so the bound cancels it rather than their contexts.
func (cl *cluster) setup() error {
	expired := time.AfterFunc(setupTimeout, cl.cancel)
	ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
	defer cancel()
	watches := []struct {
		what  string
		watch func() (func(), error)
	}{
		// Bans and revocations first: the node must refuse a banned player
		// or a revoked token from its first connect on.
		{"bans", func() (func(), error) { return cl.bus.WatchBans(cl.ctx, cl.onBan) }},
		{"token revocations", func() (func(), error) { return cl.bus.WatchRevocations(cl.ctx, cl.onRevocation) }},
		{"presence", func() (func(), error) { return cl.bus.WatchPresence(cl.ctx, cl.onPresence) }},
		{"node registry", func() (func(), error) { return cl.bus.WatchNodes(cl.ctx, cl.onNode) }},
		{"room directory", func() (func(), error) { return cl.bus.WatchRooms(cl.ctx, cl.onRoom) }},
	}
	for _, w := range watches {
		stop, err := w.watch()
		if err != nil {
			expired.Stop()
			return fmt.Errorf("gateway: watch %s: %w", w.what, err)
		}
		cl.watches = append(cl.watches, stop)
	}
	if err := cl.bus.PutNode(ctx, cl.nodeInfo()); err != nil {
		expired.Stop()
		return fmt.Errorf("gateway: register node: %w", err)
	}
	if !expired.Stop() {
		return fmt.Errorf("gateway: cluster setup took more than %s", setupTimeout)
	}
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
		if mm := cl.g.cfg.Matchmaking; mm != nil {
			// First: its matchers give their leases up to another node.
			mm.Stop(ctx)
		}
		cl.mu.Lock()
		cl.stopped = true
		cl.mu.Unlock()
		cl.stopWatches()
		cl.cancel()
		cl.wg.Wait()

		// Each step has its own budget: a slow directory must not cost
		// the presence releases theirs.
		ctx = context.WithoutCancel(ctx)
		cl.mu.Lock()
		jobs := append(cl.jobs, cl.delayed...)
		cl.jobs, cl.delayed = nil, nil
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
		ids = append(ids, cl.g.rooms.IDs()...)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		step, cancel := context.WithTimeout(ctx, busTimeout)
		for _, id := range ids {
			if err := cl.bus.RemoveRoom(step, id); err != nil {
				cl.g.log.Warn("remove room from directory", "room", id, "err", err)
			}
		}
		cancel()
		step, cancel = context.WithTimeout(ctx, busTimeout)
		for _, j := range jobs {
			switch {
			case j.kind == jobClaim && j.attempt > 0:
				// An earlier attempt may have landed; the session ended
				// with the node (a newer session's entry is left alone).
				j = job{kind: jobRelease, player: j.player, session: j.s.ID()}
			case j.kind == jobSeated, j.kind == jobCancelTickets:
				// A seat taken in the last moments still counts; the
				// tickets of sessions ending with the node still go.
			case j.kind != jobRelease:
				continue
			}
			j.attempt = releaseAttempts - 1 // no retry: the worker is gone
			cl.do(step, j)
		}
		cancel()
		step, cancel = context.WithTimeout(ctx, busTimeout)
		if err := cl.bus.RemoveNode(step, cl.node); err != nil {
			cl.g.log.Warn("remove node from registry", "err", err)
		}
		cancel()
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
	last := time.Now() // the last beat
	good := time.Now() // the last beat that was written
	failed := false    // the last beat failed
	beat := func(now time.Time) {
		last = now
		ok := cl.putNode()
		if !ok {
			failed = true
			return
		}
		// After a failed beat or a long gap (a pause, a partition), the
		// web server may have declared the node down and cleared its
		// rooms from the directory: write them all again.
		if failed || now.Sub(good) > 2*interval+busTimeout {
			cl.rewriteDirectory()
		}
		failed, good = false, time.Now()
	}
	for {
		select {
		case <-cl.ctx.Done():
			return
		case <-cl.beatNow:
			beat(time.Now())
		case now := <-t.C:
			cl.startBans(now)
			cl.runDue(now)
			if now.Sub(last) >= interval {
				beat(now)
			}
		}
	}
}

// putNode writes the registry entry and reports whether it was written.
func (cl *cluster) putNode() bool {
	cl.mu.Lock()
	stopped := cl.stopped
	cl.mu.Unlock()
	if stopped {
		return true
	}
	ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
	defer cancel()
	if err := cl.bus.PutNode(ctx, cl.nodeInfo()); err != nil {
		if cl.ctx.Err() == nil {
			cl.g.log.Warn("node heartbeat", "err", err)
		}
		return false
	}
	return true
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

// roomClosed marks a closed room's entry stale (its writer removes it).
func (cl *cluster) roomClosed(id string) { cl.roomChanged(id) }

// rewriteDirectory marks every room of the node stale.
func (cl *cluster) rewriteDirectory() {
	for _, id := range cl.g.rooms.IDs() {
		cl.roomChanged(id)
	}
}

// writeDirectory is the one writer of this node's directory entries: it
// takes the dirty rooms as a set, so a burst of joins to a room costs one
// write of its latest state. After a failed write it waits, longer each
// time, and warns at most once a backoff.
func (cl *cluster) writeDirectory() {
	backoff := time.Duration(0)
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
		var failed []string
		var lastErr error
		for id := range dirty {
			if err := cl.writeRoom(id); err != nil {
				failed = append(failed, id)
				lastErr = err
			}
		}
		if len(failed) == 0 {
			backoff = 0
			continue
		}
		if cl.ctx.Err() != nil {
			return
		}
		if backoff == 0 {
			cl.g.log.Warn("write the room directory; retrying", "rooms", len(failed), "err", lastErr)
		}
		backoff = min(max(2*backoff, retryMin), retryMax)
		select {
		case <-cl.ctx.Done():
			return
		case <-time.After(backoff):
		}
		for _, id := range failed {
			cl.roomChanged(id)
		}
	}
}

// writeRoom writes or removes a room's entry.
func (cl *cluster) writeRoom(id string) error {
	ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
	defer cancel()
	r, ok := cl.g.rooms.Get(id)
	if !ok {
		if err := cl.bus.RemoveRoom(ctx, id); err != nil {
			return err
		}
		cl.mu.Lock()
		delete(cl.written, id)
		cl.mu.Unlock()
		return nil
	}
	if err := cl.bus.PutRoom(ctx, cl.entry(r)); err != nil {
		return err
	}
	cl.mu.Lock()
	cl.written[id] = struct{}{}
	cl.mu.Unlock()
	return nil
}

// --- the watched directory and registry -------------------------------------

// onRoom keeps the copy of the room directory. An entry of a room this
// node still runs that disappears (the web server declared the node down
// while it was cut off) is written again.
func (cl *cluster) onRoom(e tandem.RoomEntry, deleted bool) {
	cl.viewMu.Lock()
	if deleted {
		delete(cl.viewRooms, e.ID)
	} else {
		cl.viewRooms[e.ID] = e
	}
	cl.viewMu.Unlock()
	if deleted {
		if _, ours := cl.g.rooms.Get(e.ID); ours {
			cl.mu.Lock()
			stopped := cl.stopped
			cl.mu.Unlock()
			if !stopped {
				cl.roomChanged(e.ID)
			}
		}
	}
}

// onNode keeps the copy of the node registry.
func (cl *cluster) onNode(n tandem.NodeInfo, deleted bool) {
	cl.viewMu.Lock()
	defer cl.viewMu.Unlock()
	if deleted {
		delete(cl.viewNodes, n.ID)
		return
	}
	cl.viewNodes[n.ID] = n
}

// directoryRoom returns a room's entry and its node's, from the copies.
func (cl *cluster) directoryRoom(id string) (tandem.RoomEntry, tandem.NodeInfo, bool, bool) {
	cl.viewMu.RLock()
	defer cl.viewMu.RUnlock()
	e, ok := cl.viewRooms[id]
	if !ok {
		return e, tandem.NodeInfo{}, false, false
	}
	n, live := cl.viewNodes[e.Node]
	return e, n, true, live
}

// readDirectoryRoom is directoryRoom read from the buckets: ENotFound
// when the directory has no such room, EUnavailable when a bucket cannot
// be read (the client may try again; the room may well exist).
func (cl *cluster) readDirectoryRoom(ctx context.Context, id string) (e tandem.RoomEntry, n tandem.NodeInfo, live bool, err error) {
	e, err = cl.bus.Room(ctx, id)
	switch {
	case tandem.ErrorCodeOf(err) == tandem.ENotFound:
		return e, n, false, tandem.Errorf(tandem.ENotFound, "no room %q", id)
	case err != nil:
		cl.g.log.Warn("read the room directory", "room", id, "err", err)
		return e, n, false, errDirectoryUnavailable()
	}
	n, err = cl.bus.Node(ctx, e.Node)
	switch {
	case tandem.ErrorCodeOf(err) == tandem.ENotFound:
		return e, n, false, nil
	case err != nil:
		cl.g.log.Warn("read the node registry", "node", e.Node, "err", err)
		return e, n, false, errDirectoryUnavailable()
	}
	return e, n, true, nil
}

func errDirectoryUnavailable() error {
	return tandem.Errorf(tandem.EUnavailable, "the room directory cannot be read now; try again")
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
		Labels:     ro.Labels,
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
	cl.wakeWorker()
}

func (cl *cluster) wakeWorker() {
	select {
	case cl.workWake <- struct{}{}:
	default:
	}
}

// retry runs j again after a backoff that grows with its attempts.
func (cl *cluster) retry(j job) {
	j.attempt++
	j.due = time.Now().Add(min(retryMin<<min(j.attempt-1, 10), retryMax))
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.stopped && j.kind != jobRelease {
		return
	}
	cl.delayed = append(cl.delayed, j)
}

// runDue moves the delayed jobs that are due to the worker.
func (cl *cluster) runDue(now time.Time) {
	cl.mu.Lock()
	n := len(cl.jobs)
	cl.delayed = slices.DeleteFunc(cl.delayed, func(j job) bool {
		if now.Before(j.due) {
			return false
		}
		cl.jobs = append(cl.jobs, j)
		return true
	})
	moved := len(cl.jobs) > n
	cl.mu.Unlock()
	if moved {
		cl.wakeWorker()
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
	case jobClaim:
		cl.claim(ctx, j)
	case jobCheckPresence:
		cl.checkPresence(ctx, j.player)
	case jobEnforceBan:
		cl.enforceBan(j.player)
	case jobEnforceRevocation:
		cl.enforceRevocation(j.player)
	case jobRelease:
		err := cl.bus.ReleasePresence(ctx, j.player, j.session)
		if err == nil {
			return
		}
		// retry keeps a release even after a clean stop began, and stop
		// replays the delayed jobs: a release cut short by stop's cancel
		// runs again there.
		if j.attempt+1 < releaseAttempts {
			cl.retry(j)
			return
		}
		cl.g.log.Warn("release presence", "player", j.player, "err", err)
	case jobUnreserve:
		if r, ok := cl.g.rooms.Get(j.roomID); ok {
			_ = r.Unreserve(ctx, j.seat)
		}
	case jobSeated:
		err := cl.g.cfg.Matchmaking.Seated(ctx, j.player, j.queue, j.roomID)
		if c := tandem.ErrorCodeOf(err); err == nil || c == tandem.EConflict || c == tandem.ENotFound {
			return // seated, or the ticket moved on (cancelled, expired) or is gone
		}
		// A seat not reported makes the match fall through: retried while
		// the seat could still count.
		if j.attempt+1 < ticketAttempts {
			cl.retry(j)
			return
		}
		cl.g.log.Warn("seat a match's ticket", "player", j.player, "queue", j.queue, "err", err)
	case jobCancelTickets:
		if cl.g.cfg.Matchmaking.SessionEnded(ctx, j.player, j.session) && j.attempt+1 < ticketAttempts {
			cl.retry(j) // a ticket being claimed: it may come back to searching
		}
	}
}

// --- presence ---------------------------------------------------------------

// opened runs on the connection's reader once a new session is open: its
// presence claim is left to the worker, so the reader takes the next frame
// at once. seat is the reservation it came with, if any.
func (cl *cluster) opened(s *session.Session, seat *tandem.Seat) {
	player := s.Player().ID
	cl.mu.Lock()
	// Checked under cl.mu: sessionEnded takes it after the session is
	// marked ended, so either it finds this state or this sees the end.
	if s.Ended() {
		cl.mu.Unlock()
		if seat != nil {
			cl.enqueue(job{kind: jobUnreserve, roomID: seat.RoomID, seat: seatKey(seat.Token)})
		}
		return
	}
	cl.sessions[s] = &sessionState{moved: seat != nil, claiming: true, seat: seat}
	cl.mu.Unlock()
	cl.enqueue(job{kind: jobClaim, player: player, s: s})
	// A ban that came in after the connect's check may have found no
	// session to end.
	if _, banned := cl.banned(player, time.Now()); banned {
		cl.enqueue(job{kind: jobEnforceBan, player: player})
	}
}

// claim makes the session of j the player's live one cluster-wide. It runs
// on the worker, as do the presence checks, so none of them overlaps it. A
// session that ended meanwhile is released once its claim returned; a
// failed claim is tried again later; a claim refused because the player
// started a newer session (here or elsewhere) ends this one.
func (cl *cluster) claim(ctx context.Context, j job) {
	s := j.s
	cl.mu.Lock()
	st := cl.sessions[s]
	if st == nil {
		cl.mu.Unlock()
		return
	}
	if st.ended {
		delete(cl.sessions, s)
		cl.mu.Unlock()
		if j.attempt > 0 && !st.displaced {
			// An earlier attempt may have landed after all.
			cl.enqueue(job{kind: jobRelease, player: j.player, session: s.ID()})
		}
		return
	}
	moved := st.moved
	cl.mu.Unlock()
	// Since is the session's start, not the claim's: a claim that waited
	// in the queue or failed for a while must still lose to a session the
	// player started later, on whichever node.
	p := tandem.Presence{PlayerID: j.player, Node: cl.node, SessionID: s.ID(), Moved: moved, Since: s.Started()}
	cur, err := cl.bus.ClaimPresence(ctx, p)
	refused := tandem.ErrorCodeOf(err) == tandem.EConflict
	cl.mu.Lock()
	if st.ended {
		delete(cl.sessions, s)
		cl.mu.Unlock()
		if !st.displaced && !refused {
			cl.enqueue(job{kind: jobRelease, player: j.player, session: s.ID()})
		}
		return
	}
	if refused {
		// A newer session holds the presence: this one is the duplicate.
		st.claiming, st.displaced = false, true
		cl.mu.Unlock()
		cl.displace(s, cur)
		return
	}
	if err != nil {
		cl.mu.Unlock()
		if cl.ctx.Err() != nil {
			return
		}
		if j.attempt == 0 {
			s.Logger().Warn("claim presence; retrying", "err", err)
		}
		cl.retry(j)
		return
	}
	st.claiming, st.claimed = false, true
	cl.mu.Unlock()
	// A change seen while the claim was on its way was not checked.
	cl.enqueue(job{kind: jobCheckPresence, player: j.player})
}

// onPresence is the presence watcher's callback: an entry naming another
// session than this node's one for the player, or an entry gone while the
// player has a session here, is checked by the worker.
func (cl *cluster) onPresence(p tandem.Presence, deleted bool) {
	s, ok := cl.g.sessions.ByPlayer(p.PlayerID)
	if !ok || (!deleted && s.ID() == p.SessionID) {
		return
	}
	cl.enqueue(job{kind: jobCheckPresence, player: p.PlayerID})
}

// checkPresence compares the presence entry, read now, with the player's
// local session. The entry is read rather than taken from the watch: the
// watch shows every write in order, and an older write than this node's
// claim must not end the session that replaced it. An entry another node's
// session took ends the local one; an entry that is missing, or names an
// ended session of this node, is claimed again.
func (cl *cluster) checkPresence(ctx context.Context, player string) {
	s, ok := cl.g.sessions.ByPlayer(player)
	if !ok {
		return
	}
	cl.mu.Lock()
	st := cl.sessions[s]
	if st == nil || st.claiming {
		// Its claim job comes, or comes again: it checks after.
		cl.mu.Unlock()
		return
	}
	cl.mu.Unlock()
	cur, err := cl.bus.Presence(ctx, player)
	switch {
	case err != nil && tandem.ErrorCodeOf(err) != tandem.ENotFound:
		if ctx.Err() == nil {
			cl.g.log.Warn("read presence", "player", player, "err", err)
		}
		return
	case err == nil && cur.SessionID == s.ID():
		return
	case err != nil || cur.Node == cl.node:
		// Gone (released by an older session's end, expired) or naming an
		// older session of this node: the live one claims it again.
		cl.reclaim(s, st)
		return
	}
	cl.displace(s, cur)
}

// reclaim queues a new claim for a live session.
func (cl *cluster) reclaim(s *session.Session, st *sessionState) {
	cl.mu.Lock()
	if st.ended || st.claiming || cl.sessions[s] != st {
		cl.mu.Unlock()
		return
	}
	st.claiming = true
	cl.mu.Unlock()
	cl.enqueue(job{kind: jobClaim, player: s.Player().ID, s: s})
}

// displace ends s, whose presence another node's session cur took.
func (cl *cluster) displace(s *session.Session, cur tandem.Presence) {
	cl.mu.Lock()
	if st := cl.sessions[s]; st != nil {
		st.displaced = true
	}
	cl.mu.Unlock()
	if cur.Moved {
		cl.endSession(s, protocol.LeaveReason_LEAVE_REASON_MOVED, protocol.CloseMoved, "moved to node "+cur.Node)
		return
	}
	cl.endSession(s, protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED, protocol.CloseDuplicateSession, "duplicate session")
}

// endSession ends s from the worker. Its rooms get the leave within
// commandTimeout: a room whose mailbox stays full must not stall every
// claim, release and ban behind it (the session ends all the same).
func (cl *cluster) endSession(s *session.Session, reason protocol.LeaveReason, code protocol.CloseCode, why string) {
	ctx, cancel := context.WithTimeout(cl.g.ctx, commandTimeout)
	defer cancel()
	cl.g.sessions.End(ctx, s, reason, code, why)
}

// sessionEnded forgets a session and releases its presence, unless another
// session took it. While its claim is in flight the release is left to the
// claim job, which runs it once the claim returned.
func (cl *cluster) sessionEnded(s *session.Session) {
	cl.mu.Lock()
	st := cl.sessions[s]
	if st == nil {
		cl.mu.Unlock()
		return
	}
	if st.seat != nil {
		cl.jobs = append(cl.jobs, job{kind: jobUnreserve, roomID: st.seat.RoomID, seat: seatKey(st.seat.Token)})
		st.seat = nil
	}
	if code, _ := s.EndCode(); !st.displaced && code != protocol.CloseDuplicateSession && code != protocol.CloseMoved &&
		cl.g.cfg.Matchmaking != nil {
		// Ended for good (not moved, not replaced by a newer login here or
		// elsewhere): the tickets it created go with it.
		cl.jobs = append(cl.jobs, job{kind: jobCancelTickets, player: s.Player().ID, session: s.ID()})
	}
	if st.claiming {
		st.ended = true
		cl.mu.Unlock()
		cl.wakeWorker()
		return
	}
	delete(cl.sessions, s)
	cl.mu.Unlock()
	if !st.displaced {
		cl.enqueue(job{kind: jobRelease, player: s.Player().ID, session: s.ID()})
	} else {
		cl.wakeWorker()
	}
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
	cl.endSession(s, protocol.LeaveReason_LEAVE_REASON_KICKED, protocol.CloseBanned, "banned")
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
	cl.endSession(s, protocol.LeaveReason_LEAVE_REASON_SESSION_ENDED, protocol.CloseBadToken, "token revoked")
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
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
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
		g.sessions.End(ctx, s, protocol.LeaveReason_LEAVE_REASON_KICKED, protocol.CloseKicked, "kicked by an operator")
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
		r, ok := g.rooms.Get(c.RoomID)
		if !ok {
			return -1
		}
		for _, id := range r.Roster().Players {
			if s, ok := g.sessions.ByPlayer(id); ok {
				if _, in := s.Room(c.RoomID); in {
					to = append(to, s)
				}
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
// The room itself holds the place (Room.Reserve), so that its own joins
// count it.
func (cl *cluster) reserve(ctx context.Context, req tandem.SeatRequest) (tandem.Seat, error) {
	g := cl.g
	if !g.Ready() {
		return tandem.Seat{}, tandem.Errorf(tandem.EUnavailable, "node %s is draining", cl.node)
	}
	r, ok := g.rooms.Get(req.RoomID)
	if !ok {
		return tandem.Seat{}, tandem.Errorf(tandem.ENotFound, "no room %q", req.RoomID)
	}
	return cl.reserveSeat(ctx, r, req.PlayerID, "")
}

// reserveSeat holds a place in r for a player and creates its seat (queue:
// the match's queue, if it is a match's seat).
func (cl *cluster) reserveSeat(ctx context.Context, r *room.Room, player, queue string) (tandem.Seat, error) {
	g := cl.g
	seat := tandem.Seat{
		Token:     newSeatToken(),
		RoomID:    r.ID(),
		PlayerID:  player,
		Node:      cl.node,
		NodeURL:   g.cfg.AdvertiseURL,
		ExpiresAt: time.Now().Add(g.cfg.SeatTTL),
		Queue:     queue,
	}
	key := seatKey(seat.Token)
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	if err := r.Reserve(ctx, key, seat.ExpiresAt); err != nil {
		return tandem.Seat{}, err
	}
	if err := cl.bus.CreateSeat(ctx, seat); err != nil {
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer ucancel()
		_ = r.Unreserve(uctx, key)
		return tandem.Seat{}, err
	}
	return seat, nil
}

// seatKey names a seat in its room: a digest, so that the room's journal
// and logs never hold the secret token.
func seatKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// claimSeat takes the seat a connecting client presents: it must be
// unused, unexpired, for this player and on this node.
func (cl *cluster) claimSeat(token, player string) (*tandem.Seat, error) {
	ctx, cancel := context.WithTimeout(cl.ctx, busTimeout)
	defer cancel()
	seat, err := cl.bus.ClaimSeat(ctx, token, player, cl.node)
	if err != nil {
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

// takeSeat returns the reservation s holds in roomID, if it is still
// valid, and forgets it: a seat is tried once, whatever the join's
// outcome (the room uses up its place when it applies the join).
func (cl *cluster) takeSeat(s *session.Session, roomID string, now time.Time) (*tandem.Seat, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	st := cl.sessions[s]
	if st == nil || st.seat == nil || st.seat.RoomID != roomID || !now.Before(st.seat.ExpiresAt) {
		return nil, false
	}
	seat := st.seat
	st.seat = nil
	return seat, true
}

// seatElsewhere asks the node running roomID for a seat for s's player.
// The room and its node are looked up in the watched copies.
func (cl *cluster) seatElsewhere(ctx context.Context, s *session.Session, roomID string) (*protocol.SeatReservation, error) {
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	e, n, ok, live := cl.directoryRoom(roomID)
	if !ok || (!live && e.Node != cl.node) {
		// The watched copies lag the buckets by a moment: a room created,
		// or a node registered, a moment ago is read from the buckets
		// themselves.
		var err error
		if e, n, live, err = cl.readDirectoryRoom(ctx, roomID); err != nil {
			return nil, err
		}
	}
	if e.Node == cl.node {
		return nil, tandem.Errorf(tandem.ENotFound, "no room %q", roomID)
	}
	if !live || n.Draining {
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
// ("" for all), by id, from the watched copy, leaving out the rooms of
// other nodes that are gone or draining.
func (cl *cluster) rooms(typeName string) []*protocol.RoomInfo {
	var out []*protocol.RoomInfo
	cl.viewMu.RLock()
	for _, e := range cl.viewRooms {
		if !e.Open || e.Locked || (typeName != "" && e.Type != typeName) {
			continue
		}
		// A room of a node gone from the registry (not yet declared down)
		// or draining takes no one: not offered.
		if n, live := cl.viewNodes[e.Node]; e.Node != cl.node && (!live || n.Draining) {
			continue
		}
		out = append(out, &protocol.RoomInfo{
			RoomId: e.ID, RoomType: e.Type, Players: uint32(len(e.Players)), MaxPlayers: uint32(e.MaxPlayers),
			Open: e.Open, Node: e.Node,
		})
	}
	cl.viewMu.RUnlock()
	slices.SortFunc(out, func(a, b *protocol.RoomInfo) int { return cmp.Compare(a.RoomId, b.RoomId) })
	return out
}

func newSeatToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
