package room

import (
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// This file holds what a Handler may do with its room. Every method here is
// for the room goroutine (inside a hook) only.

// ID returns the room's id.
func (r *Room) ID() string { return r.cfg.ID }

// TypeName returns the room type's name.
func (r *Room) TypeName() string { return r.cfg.Type.Name }

// Now returns the room clock: the time of the input being handled. Room
// code reads time only from here, so a replay sees the same times.
func (r *Room) Now() time.Time { return r.now }

// Ticks returns the number of ticks so far.
func (r *Room) Ticks() uint64 { return r.tick }

// Rand returns the room's RNG, seeded by the runtime.
func (r *Room) Rand() *rand.Rand { return r.rng }

// Logger returns a logger carrying the room's id and type.
func (r *Room) Logger() *slog.Logger { return r.log }

// Players returns the members in join order, connected or not.
func (r *Room) Players() []*tandem.Player {
	ps := make([]*tandem.Player, len(r.members))
	for i, m := range r.members {
		ps[i] = m.player
	}
	return ps
}

// Connected reports whether a member's connection is up.
func (r *Room) Connected(playerID string) bool {
	m := r.member(playerID)
	return m != nil && m.connected
}

// RTT returns a member's last measured round trip (0 if unknown or not a
// member). It is a network measure, not an input: a room that must replay
// deterministically records what it derives from it in its own messages.
func (r *Room) RTT(playerID string) time.Duration {
	if m := r.member(playerID); m != nil && m.conn != nil {
		return m.conn.RTT()
	}
	return 0
}

// Broadcast sends a room_message from the room to every member.
func (r *Room) Broadcast(topic string, data []byte) {
	r.publish(nil, "", roomMessage(r.cfg.ID, "", topic, data))
}

// Send sends a room_message from the room to the listed members. An empty
// list sends nothing (Broadcast is for everyone).
func (r *Room) Send(to []string, topic string, data []byte) {
	if len(to) == 0 {
		return // publish would read a nil list as "every member"
	}
	r.publish(slices.Clone(to), "", roomMessage(r.cfg.ID, "", topic, data))
}

// Forward relays a member's message as the member asked: to everyone, to
// everyone but the sender, or to a list. DELIVERY_ROOM messages and empty
// lists go nowhere.
func (r *Room) Forward(from *tandem.Player, m Message) {
	env := roomMessage(r.cfg.ID, from.ID, m.Topic, m.Data)
	switch m.Delivery {
	case protocol.Delivery_DELIVERY_ALL:
		r.publish(nil, "", env)
	case protocol.Delivery_DELIVERY_OTHERS:
		r.publish(nil, from.ID, env)
	case protocol.Delivery_DELIVERY_LIST:
		if len(m.To) > 0 { // publish would read a nil list as "every member"
			r.publish(slices.Clone(m.To), "", env)
		}
	}
}

// SendSnapshot sends a full state to the listed members (nil: everyone).
func (r *Room) SendSnapshot(to []string, state []byte) {
	r.publish(slices.Clone(to), "", &protocol.Envelope{Body: &protocol.Envelope_Snapshot{Snapshot: &protocol.Snapshot{
		RoomId: r.cfg.ID, Tick: r.tick, State: state,
	}}})
}

// SendDelta sends a state change to the listed members (nil: everyone).
func (r *Room) SendDelta(to []string, patch []byte) {
	r.publish(slices.Clone(to), "", &protocol.Envelope{Body: &protocol.Envelope_Delta{Delta: &protocol.Delta{
		RoomId: r.cfg.ID, Tick: r.tick, Patch: patch,
	}}})
}

// Kick removes a member with reason KICKED.
func (r *Room) Kick(playerID string) {
	r.leave(playerID, protocol.LeaveReason_LEAVE_REASON_KICKED)
}

// End closes the room after the current hook: members leave with
// ROOM_CLOSED and Shutdown runs. What the hook sends after End still
// reaches the members, and no other hook runs before the current one
// returns.
func (r *Room) End() { r.ending = true }

// Lock stops new joins; Unlock allows them again.
func (r *Room) Lock()   { r.setLocked(true) }
func (r *Room) Unlock() { r.setLocked(false) }

// Limits of a room's labels.
const (
	MaxLabels          = 16
	MaxLabelKeyBytes   = 64
	MaxLabelValueBytes = 256
)

// SetLabel sets a label of the room (an empty value removes it): the
// game's description of the room (map, mode, region), shown in the room
// directory and the operations console, where operators filter rooms by
// label. Call it from the room's hooks (Init for the room's start).
func (r *Room) SetLabel(key, value string) error {
	switch {
	case key == "" || len(key) > MaxLabelKeyBytes:
		return tandem.Errorf(tandem.EInvalid, "a room label's key is 1 to %d bytes, not %d", MaxLabelKeyBytes, len(key))
	case strings.ContainsAny(key, "= \t\n"):
		// Operators filter by "key=value".
		return tandem.Errorf(tandem.EInvalid, "a room label's key has no '=' and no white space: %q", key)
	case len(value) > MaxLabelValueBytes:
		return tandem.Errorf(tandem.EInvalid, "a room label's value is at most %d bytes, not %d", MaxLabelValueBytes, len(value))
	case !utf8.ValidString(key) || !utf8.ValidString(value):
		return tandem.Errorf(tandem.EInvalid, "a room label is UTF-8 text")
	}
	if cur, ok := r.labels[key]; ok == (value != "") && cur == value {
		return nil
	}
	if value == "" {
		delete(r.labels, key)
	} else {
		if _, ok := r.labels[key]; !ok && len(r.labels) >= MaxLabels {
			return tandem.Errorf(tandem.EInvalid, "a room has at most %d labels", MaxLabels)
		}
		if r.labels == nil {
			r.labels = map[string]string{}
		}
		r.labels[key] = value
	}
	r.rosterChanged(RosterChange{Kind: RosterLabeled})
	return nil
}

func (r *Room) setLocked(locked bool) {
	if r.locked == locked {
		return
	}
	r.locked = locked
	kind := RosterUnlocked
	if locked {
		kind = RosterLocked
	}
	r.rosterChanged(RosterChange{Kind: kind})
}

func roomMessage(roomID, from, topic string, data []byte) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{
		RoomId: roomID, From: from, Topic: topic, Data: data,
	}}}
}

// Info is what the node tells others about a room.
type Info struct {
	ID         string
	Type       string
	Players    int
	MaxPlayers int
	Open       bool // accepts joins: not locked, not full, not ending
}

// infoCell publishes the room's Info from the room goroutine to readers on
// other goroutines.
type infoCell struct{ v atomic.Pointer[Info] }

func (r *Room) publishInfo() {
	if len(r.reserved) > 0 {
		r.pruneReserved()
	}
	next := Info{
		ID:         r.cfg.ID,
		Type:       r.cfg.Type.Name,
		Players:    len(r.members),
		MaxPlayers: r.cfg.Type.MaxPlayers,
		Open:       !r.locked && !r.closing && (r.cfg.Type.MaxPlayers == 0 || len(r.members)+len(r.reserved) < r.cfg.Type.MaxPlayers),
	}
	if cur := r.info.v.Load(); cur != nil && *cur == next {
		return
	}
	r.info.v.Store(&next)
}

// Info returns the room's latest published Info. Safe from any goroutine.
func (r *Room) Info() Info { return *r.info.v.Load() }

// RosterKind says what changed in a room's roster.
type RosterKind uint8

// The roster changes.
const (
	RosterJoined RosterKind = iota + 1
	RosterLeft
	RosterLocked
	RosterUnlocked
	RosterLabeled // a label set or removed
)

// RosterChange is one change of a room's members or lock.
type RosterChange struct {
	Kind     RosterKind
	PlayerID string               // joined, left
	Reason   protocol.LeaveReason // left
}

// Roster is who is in a room, in join order, and whether it is locked: what
// the cluster's room directory says of it.
type Roster struct {
	Players []string
	Locked  bool
	Created time.Time
	Labels  map[string]string // nil without labels; do not modify
}

// rosterCell publishes the room's Roster to readers on other goroutines. It
// is rebuilt only when members or the lock change, never by a tick.
type rosterCell struct{ v atomic.Pointer[Roster] }

func (r *Room) publishRoster() {
	r.roster.v.Store(&Roster{Players: r.playerIDs(), Locked: r.locked, Created: r.cfg.Start, Labels: maps.Clone(r.labels)})
}

// rosterChanged notes a change; flushRoster reports it once the input is
// applied and the room's Info published, so that an observer reading Info
// sees the state after the change.
func (r *Room) rosterChanged(c RosterChange) {
	r.rosterPending = append(r.rosterPending, c)
}

func (r *Room) flushRoster() {
	if len(r.rosterPending) == 0 {
		return
	}
	r.publishRoster()
	if r.cfg.OnRoster != nil {
		for _, c := range r.rosterPending {
			r.cfg.OnRoster(r, c)
		}
	}
	clear(r.rosterPending)
	r.rosterPending = r.rosterPending[:0]
}

// Roster returns the room's latest members and lock. Safe from any
// goroutine; the caller must not modify the slice.
func (r *Room) Roster() Roster { return *r.roster.v.Load() }

// Inspecting reports whether the handler's Snapshot is running for an
// operator's inspection (its result reaches no client). Room goroutine
// only.
func (r *Room) Inspecting() bool { return r.inspecting }
