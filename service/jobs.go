package service

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
)

// The web server's cluster jobs. Each runs under a lease of its own, so
// of the replicas sharing a database one runs it at a time, and each is
// idempotent, so a job cut short and run again by another replica does no
// work twice.

// Lease names of the jobs.
const (
	leaseRelay     = "tandem.cluster.relay"
	leaseEvents    = "tandem.cluster.events"
	leaseNodeCheck = "tandem.cluster.nodes"
	leaseBans      = "tandem.cluster.bans"
	leaseKeys      = "tandem.cluster.keys"
	leaseQueues    = "tandem.cluster.queues"
)

// The jobs' names on the bus's wake-up subjects.
const (
	jobRelay  = "relay"
	jobBans   = "bans"
	jobKeys   = "keys"
	jobQueues = "queues"
)

// relayBatch is how many pending commands one relay pass reads.
const relayBatch = 100

// RunClusterJobs runs the outbox relay, the event consumer, the node-down
// check, the ban (and revocation) and key mirrors and, with Matchmaking,
// the queue mirror until ctx ends. Without a cluster it returns at once.
func (s *Service) RunClusterJobs(ctx context.Context) {
	if s.cfg.Cluster == nil {
		return
	}
	jobs := map[string]func(context.Context){
		leaseRelay:     s.runRelay,
		leaseEvents:    s.runEventConsumer,
		leaseNodeCheck: s.runNodeCheck,
		leaseBans:      s.runBanMirror,
		leaseKeys:      s.runKeyMirror,
	}
	if s.cfg.Matchmaking != nil {
		jobs[leaseQueues] = s.runQueueMirror
	}
	var wg sync.WaitGroup
	for name, job := range jobs {
		wg.Go(func() { s.leased(ctx, name, job) })
	}
	wg.Wait()
}

// leased runs job whenever this replica holds the lease name, until ctx
// ends. A job whose lease is lost has its context cancelled.
func (s *Service) leased(ctx context.Context, name string, job func(context.Context)) {
	for ctx.Err() == nil {
		release, lost, ok, err := s.store.TryLease(ctx, name)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("job lease", "job", name, "err", err)
		case ok:
			jctx, cancel := context.WithCancel(ctx)
			watch := make(chan struct{})
			go func() {
				defer close(watch)
				select {
				case <-lost:
					s.log.Warn("job lease lost", "job", name)
					cancel()
				case <-jctx.Done():
				}
			}()
			job(jctx)
			cancel()
			<-watch
			release()
		}
		if !sleep(ctx, s.cfg.ClusterJobs.LeaseRetry) {
			return
		}
	}
}

// sleep waits d or until ctx ends and reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// every runs pass at once, then every interval and whenever woken, until
// ctx ends.
func every(ctx context.Context, interval time.Duration, woken <-chan struct{}, pass func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-woken:
		}
	}
}

// runRelay delivers the outbox.
func (s *Service) runRelay(ctx context.Context) {
	defer s.watchWakes(ctx, jobRelay, s.cluster.relayWake)()
	every(ctx, s.cfg.ClusterJobs.RelayInterval, s.cluster.relayWake, func(ctx context.Context) {
		if err := s.relayPass(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("command relay", "err", err)
		}
	})
}

// relayPass sends every pending command once, oldest first. A node that
// did not take one command is not tried again in this pass, and its
// commands are left out of the later reads: its later commands keep their
// order and the pass is held up neither by a dead node nor by a backlog
// of commands for it. A command sent but not marked (the relay died in
// between) is sent again with the same id; the node answers with its
// first result.
func (s *Service) relayPass(ctx context.Context) error {
	failedNodes := map[string]bool{}
	for {
		var pending []*tandem.CommandRecord
		err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
			pending, err = tx.PendingCommands(ctx, relayBatch, slices.Sorted(maps.Keys(failedNodes)))
			return err
		})
		if err != nil {
			return err
		}
		progressed := false
		for _, c := range pending {
			if ctx.Err() != nil {
				return nil
			}
			if s.now().Sub(c.CreatedAt) > s.cfg.ClusterJobs.CommandGiveUp {
				c.State = tandem.CommandFailed
				if c.LastError == "" {
					c.LastError = "not delivered in time"
				}
				if err := s.markCommand(ctx, c); err != nil {
					return err
				}
				progressed = true
				continue
			}
			if failedNodes[c.Node] {
				continue
			}
			c.Attempts++
			res, err := s.cfg.Cluster.SendCommand(ctx, c.Command)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				failedNodes[c.Node] = true
				c.LastError = err.Error()
			} else {
				c.State, c.ResultOK, c.ResultError, c.DeliveredAt = tandem.CommandDelivered, res.OK, res.Error, s.now()
			}
			progressed = true // delivered, or its node left out from now on
			if err := s.markCommand(ctx, c); err != nil {
				return err
			}
		}
		if len(pending) < relayBatch || !progressed {
			return nil
		}
	}
}

// markCommand writes how c's delivery went. A command another relay has
// marked since it was read (this replica's lease was lost meanwhile) is
// left as that relay wrote it.
func (s *Service) markCommand(ctx context.Context, c *tandem.CommandRecord) error {
	// Marked even when ctx has just ended: the node has acted.
	ctx = context.WithoutCancel(ctx)
	err := s.store.Update(ctx, func(tx tandem.Tx) error { return tx.UpdateCommand(ctx, c) })
	if tandem.ErrorCodeOf(err) == tandem.EConflict {
		s.log.Info("command already marked by another relay", "command", c.ID)
		return nil
	}
	return err
}

// runEventConsumer stores the event stream, consuming again after a
// failure.
func (s *Service) runEventConsumer(ctx context.Context) {
	for {
		err := s.cfg.Cluster.ConsumeEvents(ctx, s.cfg.ClusterJobs.EventConsumer, s.storeEvents)
		if ctx.Err() != nil {
			return
		}
		s.log.Error("event consumer", "err", err)
		if !sleep(ctx, s.cfg.ClusterJobs.LeaseRetry) {
			return
		}
	}
}

// storeEvents stores a batch in one transaction. Inserts skip ids already
// stored and the session rows are written the same whatever the number of
// deliveries, so a batch redelivered changes nothing. A batch the
// database refuses is stored again one event at a time, and an event
// refused on its own is logged and dropped: one bad event must not hold
// the stream up for ever.
func (s *Service) storeEvents(ctx context.Context, events []tandem.Event) error {
	err := s.storeEventBatch(ctx, events)
	if err == nil || len(events) == 1 || ctx.Err() != nil {
		return s.dropRefused(ctx, events, err)
	}
	s.log.Warn("event batch refused, storing its events one at a time", "events", len(events), "err", err)
	for _, e := range events {
		if err := s.dropRefused(ctx, []tandem.Event{e}, s.storeEventBatch(ctx, []tandem.Event{e})); err != nil {
			return err
		}
	}
	return nil
}

// dropRefused turns the failure to store a single event into a log
// record, so the event is acknowledged, when the database answers
// otherwise (the event itself was refused); a failure with ctx ending, of
// a bigger batch or of an unreachable database is returned (the batch is
// redelivered).
func (s *Service) dropRefused(ctx context.Context, events []tandem.Event, err error) error {
	if err == nil || len(events) != 1 || ctx.Err() != nil {
		return err
	}
	probe := s.store.View(ctx, func(tx tandem.Tx) error {
		_, err := tx.ClusterNodes(ctx)
		return err
	})
	if probe != nil {
		return err
	}
	e := events[0]
	s.log.Error("cluster event refused by the database, dropped", "event", e.ID, "node", e.Node, "kind", e.Kind, "err", err)
	return nil
}

func (s *Service) storeEventBatch(ctx context.Context, events []tandem.Event) error {
	var stale []*tandem.RealtimeSession
	err := s.store.Update(ctx, func(tx tandem.Tx) error {
		stale = nil
		if _, err := tx.InsertEvents(ctx, events); err != nil {
			return err
		}
		if matches := matchRecords(events); len(matches) > 0 {
			if _, err := tx.InsertMatches(ctx, matches); err != nil {
				return err
			}
		}
		for _, e := range events {
			var err error
			switch e.Kind {
			case tandem.EventSessionOpened:
				err = tx.OpenRealtimeSession(ctx, &tandem.RealtimeSession{ID: e.SessionID, Node: e.Node, PlayerID: e.PlayerID, OpenedAt: e.At})
			case tandem.EventSessionClosed:
				err = tx.CloseRealtimeSession(ctx, &tandem.RealtimeSession{ID: e.SessionID, Node: e.Node, PlayerID: e.PlayerID,
					OpenedAt: e.At.Add(-e.Duration), ClosedAt: e.At, CloseCode: e.CloseCode, Reason: e.Reason,
					Duration: e.Duration, RTTMillis: e.RTTMillis})
			}
			if err != nil {
				return err
			}
		}
		var err error
		stale, err = closeOnDownNodes(ctx, tx, events)
		return err
	})
	if err == nil {
		s.releasePresence(ctx, stale)
	}
	return err
}

// closeOnDownNodes closes the sessions just opened on a node already
// declared down (the consumer lagged behind the node check): they ended
// with the node, at its last heartbeat. A session opened after that
// heartbeat is the node's next life (restarted with the same id before
// the node check saw it again) and stays open.
func closeOnDownNodes(ctx context.Context, tx tandem.Tx, events []tandem.Event) ([]*tandem.RealtimeSession, error) {
	opened := map[string][]time.Time{}
	for _, e := range events {
		if e.Kind == tandem.EventSessionOpened {
			opened[e.Node] = append(opened[e.Node], e.At)
		}
	}
	if len(opened) == 0 {
		return nil, nil
	}
	nodes, err := tx.ClusterNodes(ctx)
	if err != nil {
		return nil, err
	}
	var closed []*tandem.RealtimeSession
	for _, n := range nodes {
		if n.DownAt.IsZero() || !slices.ContainsFunc(opened[n.ID], func(at time.Time) bool { return !at.After(n.LastHeartbeat) }) {
			continue
		}
		c, err := tx.CloseNodeSessions(ctx, n.ID, n.LastHeartbeat, "node_down")
		if err != nil {
			return nil, err
		}
		closed = append(closed, c...)
	}
	return closed, nil
}

// releasePresence deletes the presence entries of sessions ended with
// their node, each only while it still names that session (a newer login
// elsewhere is left alone): otherwise the player would look connected to a
// dead node, and commands would be sent there. Best effort: a presence
// naming a node not live is treated as offline anyway.
func (s *Service) releasePresence(ctx context.Context, sessions []*tandem.RealtimeSession) {
	for _, rs := range sessions {
		if rs.PlayerID == "" || rs.ID == "" {
			continue
		}
		if err := s.cfg.Cluster.ReleasePresence(ctx, rs.PlayerID, rs.ID); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("presence of a session ended with its node not released", "player", rs.PlayerID, "session", rs.ID, "err", err)
			}
			return
		}
	}
}

// runNodeCheck compares the registry with the nodes the database knows.
func (s *Service) runNodeCheck(ctx context.Context) {
	every(ctx, s.cfg.ClusterJobs.NodeCheckInterval, nil, func(ctx context.Context) {
		if err := s.checkNodes(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("node check", "err", err)
		}
	})
}

// checkNodes records the live nodes (those the registry holds: its TTL
// says which are live, not their clocks) with this server's time as their
// last heartbeat, and declares down every known node gone from the
// registry for longer than NodeTTL: its open sessions close at its last
// heartbeat, their presence entries go, and a node.down event is stored,
// whose id is made from the node and that heartbeat, so a second
// declaration stores none.
func (s *Service) checkNodes(ctx context.Context) error {
	live, err := s.cfg.Cluster.Nodes(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	isLive := make(map[string]bool, len(live))
	down := map[string]time.Time{} // nodes declared down, now or before: their last heartbeat
	var ended []*tandem.RealtimeSession
	err = s.store.Update(ctx, func(tx tandem.Tx) error {
		ended = nil
		for _, n := range live {
			isLive[n.ID] = true
			if err := tx.PutClusterNode(ctx, &tandem.ClusterNode{ID: n.ID, URL: n.URL, Version: n.Version,
				FirstSeen: now, LastHeartbeat: now}); err != nil {
				return err
			}
		}
		known, err := tx.ClusterNodes(ctx)
		if err != nil {
			return err
		}
		for _, k := range known {
			if !isLive[k.ID] && !k.DownAt.IsZero() {
				down[k.ID] = k.LastHeartbeat
			}
			if isLive[k.ID] || !k.DownAt.IsZero() || now.Sub(k.LastHeartbeat) <= s.cfg.ClusterJobs.NodeTTL {
				continue
			}
			down[k.ID] = k.LastHeartbeat
			if err := tx.MarkNodeDown(ctx, k.ID, now); err != nil {
				return err
			}
			closed, err := tx.CloseNodeSessions(ctx, k.ID, k.LastHeartbeat, "node_down")
			if err != nil {
				return err
			}
			ended = append(ended, closed...)
			down := tandem.Event{
				ID:   "down." + k.ID + "." + strconv.FormatInt(k.LastHeartbeat.Unix(), 10),
				Node: k.ID, Kind: tandem.EventNodeDown, At: k.LastHeartbeat, Reason: "no heartbeat",
				Attrs: map[string]string{"declared_by": "web", "sessions_closed": strconv.Itoa(len(closed))},
			}
			if _, err := tx.InsertEvents(ctx, []tandem.Event{down}); err != nil {
				return err
			}
			s.log.Warn("realtime node declared down", "node", k.ID, "last_heartbeat", k.LastHeartbeat, "sessions_closed", len(closed))
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.releasePresence(ctx, ended)
	if len(down) == 0 {
		return nil
	}
	return s.removeRoomsOf(ctx, down)
}

// removeRoomsOf takes the rooms of nodes declared down out of the
// directory: a node killed without a clean stop leaves its entries behind,
// and no one may be sent to them. Only rooms created by the node's last
// heartbeat (down maps each node to it): a room created later belongs to
// the node restarted with the same id. And only while the node is still
// absent from the registry, asked again just before: a node back since
// (or wrongly declared down) keeps its rooms.
func (s *Service) removeRoomsOf(ctx context.Context, down map[string]time.Time) error {
	rooms, err := s.cfg.Cluster.Rooms(ctx)
	if err != nil {
		return err
	}
	absent := map[string]bool{}
	for _, r := range rooms {
		lastHeartbeat, ok := down[r.Node]
		if !ok || r.CreatedAt.After(lastHeartbeat) {
			continue
		}
		gone, asked := absent[r.Node]
		if !asked {
			_, err := s.cfg.Cluster.Node(ctx, r.Node)
			if err != nil && tandem.ErrorCodeOf(err) != tandem.ENotFound {
				return err
			}
			gone = err != nil
			absent[r.Node] = gone
		}
		if !gone {
			continue
		}
		if err := s.cfg.Cluster.RemoveRoom(ctx, r.ID); err != nil {
			return err
		}
		s.log.Info("room of a node declared down removed from the directory", "room", r.ID, "node", r.Node)
	}
	return nil
}

// runBanMirror makes the bans bucket hold, for every player with an
// account ban in force or to come, the entry wantedBans makes, and nothing
// else; and, for every player with an unexpired token revocation, that
// revocation. It is woken after every commit that changes either, and
// reads the database whole at each pass, so a replica that stops between
// a commit and its mirroring loses nothing: the next holder of the lease
// mirrors it.
func (s *Service) runBanMirror(ctx context.Context) {
	var (
		mu      sync.Mutex
		bucket  = map[string]tandem.BanEntry{}
		revoked = map[string]tandem.Revocation{}
	)
	stop, err := s.cfg.Cluster.WatchBans(ctx, func(b tandem.BanEntry, deleted bool) {
		mu.Lock()
		defer mu.Unlock()
		if deleted {
			delete(bucket, b.PlayerID)
		} else {
			bucket[b.PlayerID] = b
		}
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("ban mirror: watch", "err", err)
		}
		return
	}
	defer stop()
	stopRevocations, err := s.cfg.Cluster.WatchRevocations(ctx, func(r tandem.Revocation, deleted bool) {
		mu.Lock()
		defer mu.Unlock()
		if deleted {
			delete(revoked, r.PlayerID)
		} else {
			revoked[r.PlayerID] = r
		}
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("ban mirror: watch revocations", "err", err)
		}
		return
	}
	defer stopRevocations()
	defer s.watchWakes(ctx, jobBans, s.cluster.banWake)()
	every(ctx, s.cfg.ClusterJobs.BanMirrorInterval, s.cluster.banWake, func(ctx context.Context) {
		mu.Lock()
		seen, seenRevoked := maps.Clone(bucket), maps.Clone(revoked)
		mu.Unlock()
		if err := s.mirrorBans(ctx, seen); err != nil && ctx.Err() == nil {
			s.log.Error("ban mirror", "err", err)
		}
		if err := s.mirrorRevocations(ctx, seenRevoked); err != nil && ctx.Err() == nil {
			s.log.Error("revocation mirror", "err", err)
		}
	})
}

// mirrorRevocations puts every unexpired revocation the bucket does not
// hold as stored. Nothing is deleted: the bucket's entries expire with
// the revocation.
func (s *Service) mirrorRevocations(ctx context.Context, bucket map[string]tandem.Revocation) error {
	var want []tandem.Revocation
	err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
		want, err = tx.RevocationsFrom(ctx, s.now())
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range want {
		if have, ok := bucket[r.PlayerID]; ok && have.IssuedBefore.Equal(r.IssuedBefore) && have.ExpiresAt.Equal(r.ExpiresAt) {
			continue
		}
		if err := s.cfg.Cluster.PutRevocation(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) mirrorBans(ctx context.Context, bucket map[string]tandem.BanEntry) error {
	now := s.now()
	var bans []*tandem.Ban
	err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
		bans, err = tx.AccountBansFrom(ctx, now)
		return err
	})
	if err != nil {
		return err
	}
	want := wantedBans(bans, now)
	for id, b := range want {
		if have, ok := bucket[id]; ok && sameBan(have, b) {
			continue
		}
		if err := s.cfg.Cluster.PutBan(ctx, b); err != nil {
			return err
		}
	}
	for id := range bucket {
		if _, ok := want[id]; !ok {
			if err := s.cfg.Cluster.DeleteBan(ctx, id); err != nil && tandem.ErrorCodeOf(err) != tandem.ENotFound {
				return err
			}
		}
	}
	return nil
}

// wantedBans makes one entry per player from their account bans that are
// neither lifted nor over: the ban in force now that ends last (a
// permanent one wins), else the next to start, extended over every ban
// that starts before it ends, so back-to-back bans leave no gap.
func wantedBans(bans []*tandem.Ban, now time.Time) map[string]tandem.BanEntry {
	byPlayer := map[string][]*tandem.Ban{}
	for _, b := range bans {
		byPlayer[b.PlayerID] = append(byPlayer[b.PlayerID], b)
	}
	out := make(map[string]tandem.BanEntry, len(byPlayer))
	for id, bs := range byPlayer {
		var first *tandem.Ban
		for _, b := range bs {
			switch {
			case first == nil:
				first = b
			case b.ActiveAt(now) && (!first.ActiveAt(now) || endsLater(b.EndsAt, first.EndsAt)):
				first = b
			case !first.ActiveAt(now) && !b.ActiveAt(now) && b.StartsAt.Before(first.StartsAt):
				first = b
			}
		}
		e := tandem.BanEntry{PlayerID: id, Start: first.StartsAt, Until: first.EndsAt, Reason: first.Reason}
		for extended := true; extended && !e.Until.IsZero(); {
			extended = false
			for _, b := range bs {
				if !b.StartsAt.After(e.Until) && endsLater(b.EndsAt, e.Until) {
					e.Until, e.Reason, extended = b.EndsAt, b.Reason, true
					if e.Until.IsZero() {
						break
					}
				}
			}
		}
		out[id] = e
	}
	return out
}

// endsLater reports whether an end a is later than b (zero: never ends).
func endsLater(a, b time.Time) bool {
	switch {
	case b.IsZero():
		return false
	case a.IsZero():
		return true
	}
	return a.After(b)
}

func sameBan(a, b tandem.BanEntry) bool {
	return a.PlayerID == b.PlayerID && a.Start.Equal(b.Start) && a.Until.Equal(b.Until) && a.Reason == b.Reason
}

// runKeyMirror publishes the token verification keys to the key bucket at
// start, after every rotation and every BanMirrorInterval (keys also leave
// the set when their rollover ends). The set is put at every pass, changed
// or not: a bus that lost its store gets it back within an interval.
func (s *Service) runKeyMirror(ctx context.Context) {
	stop := s.watchWakes(ctx, jobKeys, s.cluster.keyWake)
	defer stop()
	every(ctx, s.cfg.ClusterJobs.BanMirrorInterval, s.cluster.keyWake, func(ctx context.Context) {
		keys, err := s.SigningPublicKeys(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("key mirror", "err", err)
			}
			return
		}
		if err := s.cfg.Cluster.PutKeys(ctx, keys); err != nil && ctx.Err() == nil {
			s.log.Error("key mirror", "err", err)
		}
	})
}

// runQueueMirror makes the bus's queue bucket hold the queues table:
// it puts every queue missing or different there, deletes every queue
// the table lacks and cancels the live tickets of those queues (no
// matcher runs for them, so nothing else ever would). It is woken after
// every change of the table, and reads the table whole at each pass, so
// a replica that stops between a commit and its mirroring loses nothing.
func (s *Service) runQueueMirror(ctx context.Context) {
	var (
		mu     sync.Mutex
		bucket = map[string]tandem.MatchQueue{}
	)
	stop, err := s.cfg.Matchmaking.WatchQueues(ctx, func(q tandem.MatchQueue, deleted bool) {
		mu.Lock()
		defer mu.Unlock()
		if deleted {
			delete(bucket, q.Name)
		} else {
			bucket[q.Name] = q
		}
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("queue mirror: watch", "err", err)
		}
		return
	}
	defer stop()
	defer s.watchWakes(ctx, jobQueues, s.cluster.queueWake)()
	every(ctx, s.cfg.ClusterJobs.BanMirrorInterval, s.cluster.queueWake, func(ctx context.Context) {
		mu.Lock()
		seen := maps.Clone(bucket)
		mu.Unlock()
		if err := s.mirrorQueues(ctx, seen); err != nil && ctx.Err() == nil {
			s.log.Error("queue mirror", "err", err)
		}
	})
}

func (s *Service) mirrorQueues(ctx context.Context, bucket map[string]tandem.MatchQueue) error {
	var want []*tandem.MatchQueueRecord
	err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
		want, err = tx.MatchQueues(ctx)
		return err
	})
	if err != nil {
		return err
	}
	wanted := make(map[string]bool, len(want))
	for _, q := range want {
		wanted[q.Name] = true
		if have, ok := bucket[q.Name]; ok && queueJSON(have) == queueJSON(q.MatchQueue) {
			continue
		}
		if err := s.cfg.Matchmaking.PutQueue(ctx, q.MatchQueue); err != nil {
			return err
		}
	}
	for name := range bucket {
		if !wanted[name] {
			if err := s.cfg.Matchmaking.DeleteQueue(ctx, name); err != nil && tandem.ErrorCodeOf(err) != tandem.ENotFound {
				return err
			}
		}
	}
	// After the deletes, and at every pass: a node that had not yet seen
	// a delete may still have taken a ticket for the queue.
	return s.cancelOrphanTickets(ctx, wanted)
}

// ticketCancelTries is how often the queue mirror tries to cancel one
// ticket that keeps changing under it.
const ticketCancelTries = 3

// cancelOrphanTickets cancels (reason queue_deleted) every live ticket of
// a queue not in wanted.
func (s *Service) cancelOrphanTickets(ctx context.Context, wanted map[string]bool) error {
	tickets, err := s.cfg.Matchmaking.Tickets(ctx, "")
	if err != nil {
		return err
	}
	cancelled := 0
	for _, t := range tickets {
		if wanted[t.Queue] || t.State.Ended() {
			continue
		}
		ok, err := s.cancelOrphanTicket(ctx, t)
		if err != nil {
			return err
		}
		if ok {
			cancelled++
		}
	}
	if cancelled > 0 {
		s.log.Info("queue mirror: tickets of deleted queues cancelled", "tickets", cancelled)
	}
	return nil
}

// cancelOrphanTicket ends t by compare-and-swap, reading it again after a
// conflict (a node or a matcher wrote it meanwhile), and reports whether
// it was this call that ended it. A ticket gone or ended meanwhile needs
// nothing; one that changes at every try is left to the next pass.
func (s *Service) cancelOrphanTicket(ctx context.Context, t tandem.MatchTicket) (bool, error) {
	for range ticketCancelTries {
		// Out of any match: were the queue made again, its matcher must
		// not take this for a player who gave up a seat.
		t.State, t.Reason, t.UpdatedAt = tandem.TicketCancelled, "queue_deleted", s.now()
		t.MatchID, t.Seat, t.Team, t.Backfill = "", nil, 0, false
		_, err := s.cfg.Matchmaking.UpdateTicket(ctx, t)
		switch tandem.ErrorCodeOf(err) {
		case tandem.ENotFound:
			return false, nil
		case tandem.EConflict:
		default:
			return err == nil, err
		}
		t, err = s.cfg.Matchmaking.Ticket(ctx, t.Queue, t.PlayerID)
		switch {
		case tandem.ErrorCodeOf(err) == tandem.ENotFound:
			return false, nil
		case err != nil:
			return false, err
		case t.State.Ended():
			return false, nil
		}
	}
	s.log.Warn("queue mirror: a ticket of a deleted queue kept changing; the next pass cancels it",
		"queue", t.Queue, "player", t.PlayerID)
	return false, nil
}

// watchWakes wakes the local job channel c on every cluster-wide wake-up
// of job (another replica committed a change), until ctx ends or the
// returned stop is called. Without the watch the job still runs at its
// interval.
func (s *Service) watchWakes(ctx context.Context, job string, c chan struct{}) (stop func()) {
	stop, err := s.cfg.Cluster.WatchWakes(ctx, job, func() { wake(c) })
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cluster wake-ups not watched: the job runs at its interval", "job", job, "err", err)
		}
		return func() {}
	}
	return stop
}
