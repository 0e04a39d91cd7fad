// Package service runs matchmaking on a realtime node, over the bus: it
// accepts the tickets of the node's players (create, cancel, status; every
// node does), tells the node of every change to a ticket, and runs the
// matcher of each queue whose lease the node holds. A matcher feeds the
// queue's tickets to the pure matchmaker.Run, commits each match by
// compare-and-swap on every ticket, has the lightest node create the room
// with a seat per player, and later settles the match: done once every
// player took the seat, or fallen through (the late players' tickets
// expire, the others go back to the front of the queue).
//
// Tickets, queues and leases live in JetStream (tandem.Matchmaking), so a
// matcher that dies loses nothing: the next lease holder reads the same
// tickets, and a claim it left behind is released after the claim timeout.
// docs/matchmaking.md describes the flow.
package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/observe"
)

// Cluster is the rest of the bus a matcher uses: where to put a match's
// room, which rooms can take more players, how to close a room whose match
// fell through.
type Cluster interface {
	Nodes(ctx context.Context) ([]tandem.NodeInfo, error)
	Rooms(ctx context.Context) ([]tandem.RoomEntry, error)
	Room(ctx context.Context, id string) (tandem.RoomEntry, error)
	SendCommand(ctx context.Context, c tandem.Command) (tandem.CommandResult, error)
	Presence(ctx context.Context, playerID string) (tandem.Presence, error)
}

// Config configures a node's matchmaking.
type Config struct {
	Node    string             // this node's id
	Bus     tandem.Matchmaking // tickets, queues, leases, match rooms
	Cluster Cluster
	// Emit publishes an event (the node's event buffer); nil drops them.
	Emit    func(tandem.Event)
	Metrics *observe.Matchmaking
	Logger  *slog.Logger
	// Tick is how often a matcher runs (default 1s).
	Tick time.Duration
	// LeaseTTL is how long a matcher's lease lives after its last renewal
	// (the bus's lease bucket TTL; default 5s). Leases are renewed every
	// third of it.
	LeaseTTL time.Duration
	// ClaimTimeout: a ticket claimed for a match that was neither
	// matched nor released within it (its matcher stopped) goes back to
	// searching (default 10s).
	ClaimTimeout time.Duration
	// SeatGrace is added to a seat's expiry before its match is settled,
	// for a player whose join is on its way (default 2s).
	SeatGrace time.Duration
	// Ended is how long an ended ticket stays readable before the matcher
	// removes it (default 1 minute).
	Ended time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 5 * time.Second
	}
	if c.ClaimTimeout <= 0 {
		c.ClaimTimeout = 10 * time.Second
	}
	if c.SeatGrace <= 0 {
		c.SeatGrace = 2 * time.Second
	}
	if c.Ended <= 0 {
		c.Ended = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = observe.NewMatchmaking(prometheus.NewRegistry())
	}
	if c.Emit == nil {
		c.Emit = func(tandem.Event) {}
	}
}

// Service is a node's matchmaking. Start it, then serve tickets with
// Create, Cancel and Status; Stop ends its matchers and gives up their
// leases.
type Service struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	queues   map[string]tandem.MatchQueue
	matchers map[string]*matcher  // queues whose lease this node holds
	renewed  map[string]time.Time // when each held lease was last renewed
	watchers []func(tandem.MatchTicket, bool)
	// live indexes the live tickets by player and queue (from the tickets
	// watch), so that a session's end looks up only its player's.
	live map[string]map[string]struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stops  []func()
}

// New returns a node's matchmaking service.
func New(cfg Config) *Service {
	cfg.setDefaults()
	return &Service{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "matchmaking"),
		queues:   make(map[string]tandem.MatchQueue),
		matchers: make(map[string]*matcher),
		renewed:  make(map[string]time.Time),
		live:     make(map[string]map[string]struct{}),
	}
}

// OnTicket registers fn to be called with every change of any ticket
// (deleted: only Queue and PlayerID are set), from one goroutine, in the
// bucket's order. Call it before Start.
func (s *Service) OnTicket(fn func(t tandem.MatchTicket, deleted bool)) {
	s.watchers = append(s.watchers, fn)
}

// Start loads the queues and the tickets, and starts electing matchers.
// It returns once the watches are in place.
func (s *Service) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	stop, err := s.cfg.Bus.WatchQueues(s.ctx, s.onQueue)
	if err != nil {
		s.cancel()
		return err
	}
	s.stops = append(s.stops, stop)
	stop, err = s.cfg.Bus.WatchTickets(s.ctx, "", func(t tandem.MatchTicket, deleted bool) {
		s.index(t, deleted)
		for _, fn := range s.watchers {
			fn(t, deleted)
		}
	})
	if err != nil {
		s.Stop(ctx)
		return err
	}
	s.stops = append(s.stops, stop)
	s.wg.Go(s.elect)
	return nil
}

// Stop ends the matchers, gives up their leases and stops the watches.
func (s *Service) Stop(ctx context.Context) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	for _, stop := range s.stops {
		stop()
	}
	s.wg.Wait()
	s.mu.Lock()
	held := make([]string, 0, len(s.matchers))
	for name := range s.matchers {
		held = append(held, name)
	}
	s.matchers = map[string]*matcher{}
	s.mu.Unlock()
	for _, name := range held {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		if err := s.cfg.Bus.ReleaseLease(rctx, leaseName(name), s.cfg.Node); err != nil {
			s.log.Warn("release matcher lease", "queue", name, "err", err)
		}
		cancel()
	}
}

// index keeps s.live.
func (s *Service) index(t tandem.MatchTicket, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	qs := s.live[t.PlayerID]
	if deleted || t.State.Ended() {
		delete(qs, t.Queue)
		if len(qs) == 0 {
			delete(s.live, t.PlayerID)
		}
		return
	}
	if qs == nil {
		qs = make(map[string]struct{})
		s.live[t.PlayerID] = qs
	}
	qs[t.Queue] = struct{}{}
}

// liveQueues lists the queues where the player has a live ticket.
func (s *Service) liveQueues(player string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.live[player])
}

func (s *Service) onQueue(q tandem.MatchQueue, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if deleted {
		delete(s.queues, q.Name)
		return
	}
	s.queues[q.Name] = q
	if m := s.matchers[q.Name]; m != nil {
		m.setQueue(q)
	}
}

// Queue returns a queue's configuration as this node last saw it.
func (s *Service) Queue(name string) (tandem.MatchQueue, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[name]
	return q, ok
}

func leaseName(queue string) string { return "matcher." + queue }

// elect tries, every third of the lease TTL (or every tick, if shorter),
// to hold the lease of every queue: a matcher runs for each one held. It
// stops when another node holds the lease, or when the lease cannot be
// renewed for longer than its TTL (it may have lapsed): a renewal that
// merely fails or is slow does not stop it, since the lease lives on.
func (s *Service) elect() {
	t := time.NewTicker(min(s.cfg.Tick, s.cfg.LeaseTTL/3))
	defer t.Stop()
	for {
		s.electOnce()
		select {
		case <-s.ctx.Done():
			s.mu.Lock()
			for _, m := range s.matchers {
				m.stop()
			}
			s.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

func (s *Service) electOnce() {
	s.mu.Lock()
	names := sortedKeys(s.queues)
	for name, m := range s.matchers {
		if _, ok := s.queues[name]; !ok {
			m.stop()
			delete(s.matchers, name)
			delete(s.renewed, name)
			s.wg.Go(func() { s.release(name) })
		}
	}
	s.mu.Unlock()
	// Every lease at once: a slow bus must not make the last queue's
	// renewal wait for the others'.
	type result struct {
		held bool
		err  error
	}
	results := make([]result, len(names))
	start := time.Now() // a renewal counts from before it was asked
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LeaseTTL/3)
			defer cancel()
			results[i].held, results[i].err = s.cfg.Bus.HoldLease(ctx, leaseName(name), s.cfg.Node)
		})
	}
	wg.Wait()
	for i, name := range names {
		held, err, now := results[i].held, results[i].err, start
		if err != nil && s.ctx.Err() == nil {
			s.log.Warn("matcher lease", "queue", name, "err", err)
		}
		s.mu.Lock()
		m := s.matchers[name]
		switch {
		case err != nil:
			if m != nil && time.Since(s.renewed[name]) >= s.cfg.LeaseTTL {
				m.stop()
				delete(s.matchers, name)
				delete(s.renewed, name)
				s.log.Warn("matcher stopped: its lease could not be renewed", "queue", name)
			}
		case held:
			s.renewed[name] = now
			if q, ok := s.queues[name]; ok && m == nil {
				m = newMatcher(s, q)
				s.matchers[name] = m
				s.wg.Go(m.run)
				s.log.Info("matcher started", "queue", name)
			}
		case m != nil:
			m.stop()
			delete(s.matchers, name)
			delete(s.renewed, name)
			s.log.Info("matcher lease lost", "queue", name)
		}
		s.mu.Unlock()
	}
}

// leaseGood reports whether this node's lease of queue was renewed less
// than its TTL ago: a matcher commits only then.
func (s *Service) leaseGood(queue string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.renewed[queue]
	return ok && time.Since(at) < s.cfg.LeaseTTL
}

func (s *Service) release(name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), time.Second)
	defer cancel()
	_ = s.cfg.Bus.ReleaseLease(ctx, leaseName(name), s.cfg.Node)
}

// ServeMatchRooms answers the matchers' requests for rooms on this node
// with create until ctx ends.
func (s *Service) ServeMatchRooms(ctx context.Context, create func(context.Context, tandem.MatchRoomRequest) (tandem.MatchRoom, error)) error {
	return s.cfg.Bus.ServeMatchRooms(ctx, s.cfg.Node, create)
}

// Matching reports whether this node runs the matcher of queue.
func (s *Service) Matching(queue string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.matchers[queue] != nil
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}
