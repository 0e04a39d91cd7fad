package room

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
)

// ManagerConfig configures the rooms of a node.
type ManagerConfig struct {
	Types   []Type
	Encoder Encoder
	// ReplayCount and ReplayBytes bound each room stream's replay buffer.
	ReplayCount, ReplayBytes int
	// EmptyTimeout disposes of a room that has had no members this long.
	EmptyTimeout time.Duration
	Logger       *slog.Logger
	// OnChange, if set, is called (from any goroutine) when a room is
	// created or closed.
	OnChange func(info Info, open bool)
	// OnRoster is passed to every room's Config.
	OnRoster func(r *Room, c RosterChange)
	// OnGap and TickObserver are passed to every room's Config.
	OnGap        func()
	TickObserver func(took, interval time.Duration)
}

// Manager owns the rooms of one node: it creates them, finds them and
// stops them. It is safe for concurrent use.
type Manager struct {
	cfg   ManagerConfig
	types map[string]Type

	ctx    context.Context // rooms run until it ends
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	rooms    map[string]*Room
	order    []*Room // creation order, for deterministic listings
	draining bool
}

// NewManager returns a Manager for the given room types.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	types := make(map[string]Type, len(cfg.Types))
	for _, t := range cfg.Types {
		if t.Name == "" || t.New == nil {
			return nil, fmt.Errorf("room: a room type needs a Name and New")
		}
		if _, dup := types[t.Name]; dup {
			return nil, fmt.Errorf("room: room type %q registered twice", t.Name)
		}
		types[t.Name] = t
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, types: types, ctx: ctx, cancel: cancel, rooms: make(map[string]*Room)}, nil
}

// TypeNames returns the registered room types, sorted.
func (m *Manager) TypeNames() []string {
	names := make([]string, 0, len(m.types))
	for n := range m.types {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Create makes and starts a room of the named type.
func (m *Manager) Create(typeName string, options []byte) (*Room, error) {
	return m.CreateLabeled(typeName, options, nil)
}

// CreateLabeled is Create for a room that starts with labels (a match's
// room: its queue and match), set before its Init runs.
func (m *Manager) CreateLabeled(typeName string, options []byte, labels map[string]string) (*Room, error) {
	t, ok := m.types[typeName]
	if !ok {
		return nil, tandem.Errorf(tandem.ENotFound, "unknown room type %q", typeName)
	}
	m.mu.Lock()
	draining := m.draining
	m.mu.Unlock()
	if draining {
		return nil, tandem.Errorf(tandem.EUnavailable, "node is draining")
	}
	id := newRoomID()
	r, err := New(Config{
		ID:           id,
		Type:         t,
		Seed:         randomSeed(),
		Start:        time.Now(),
		Options:      options,
		Labels:       labels,
		Encoder:      m.cfg.Encoder,
		ReplayCount:  m.cfg.ReplayCount,
		ReplayBytes:  m.cfg.ReplayBytes,
		EmptyTimeout: m.cfg.EmptyTimeout,
		Logger:       m.cfg.Logger,
		OnClose:      m.remove,
		OnGap:        m.cfg.OnGap,
		TickObserver: m.cfg.TickObserver,
		OnRoster:     m.cfg.OnRoster,
	})
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.draining {
		// Close began while Init ran: the room never starts.
		m.mu.Unlock()
		return nil, tandem.Errorf(tandem.EUnavailable, "node is draining")
	}
	m.rooms[id] = r
	m.order = append(m.order, r)
	m.wg.Add(1) // under the lock that Close takes first, so never during its Wait
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		r.Run(m.ctx)
	}()
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(r.Info(), true)
	}
	return r, nil
}

func (m *Manager) remove(r *Room) {
	m.mu.Lock()
	delete(m.rooms, r.ID())
	m.order = slices.DeleteFunc(m.order, func(x *Room) bool { return x == r })
	m.mu.Unlock()
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(r.Info(), false)
	}
}

// Get returns a running room by id.
func (m *Manager) Get(id string) (*Room, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[id]
	return r, ok
}

// FindOpen returns the oldest open room of a type, if any.
func (m *Manager) FindOpen(typeName string) (*Room, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.draining {
		return nil, false
	}
	for _, r := range m.order {
		if info := r.Info(); info.Type == typeName && info.Open {
			return r, true
		}
	}
	return nil, false
}

// List returns the open rooms of a type ("" for every type), oldest first.
func (m *Manager) List(typeName string) []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	var infos []Info
	for _, r := range m.order {
		if info := r.Info(); info.Open && (typeName == "" || info.Type == typeName) {
			infos = append(infos, info)
		}
	}
	return infos
}

// IDs returns the ids of every running room, oldest first.
func (m *Manager) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, len(m.order))
	for i, r := range m.order {
		ids[i] = r.cfg.ID
	}
	return ids
}

// Count returns the number of running rooms per type.
func (m *Manager) Count() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := make(map[string]int, len(m.types))
	for n := range m.types {
		counts[n] = 0
	}
	for _, r := range m.order {
		counts[r.cfg.Type.Name]++
	}
	return counts
}

// Len returns the number of running rooms.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}

// Drain stops the creation of rooms and joins by join-or-create; rooms
// already running go on.
func (m *Manager) Drain() {
	m.mu.Lock()
	m.draining = true
	m.mu.Unlock()
}

// Close ends every room (members leave with ROOM_CLOSED) and waits for
// their goroutines, or for ctx.
func (m *Manager) Close(ctx context.Context) error {
	m.Drain()
	m.cancel()
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newRoomID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
