package room

import (
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// Handler is the game logic of one room. The runtime calls every hook on the
// room's own goroutine, one at a time, so a handler needs no locks. A hook
// must not block: it reads inputs and the room clock and writes outputs
// through the *Room. Embed Base to implement only the hooks you need.
type Handler interface {
	// Init runs once when the room is created, with the creator's options.
	// An error refuses the creation; the creator gets it.
	Init(r *Room, options []byte) error
	// JoinAttempt decides whether a player may join. A *tandem.Error is
	// sent to the player as is; any other error as join_rejected.
	JoinAttempt(r *Room, p *tandem.Player, metadata []byte) error
	// Join runs when a player has joined, after its joined reply was sent.
	Join(r *Room, p *tandem.Player)
	// Disconnect runs when a member's connection is lost; its seat is held.
	Disconnect(r *Room, p *tandem.Player)
	// Rejoin runs when a disconnected member resumed within the seat hold.
	Rejoin(r *Room, p *tandem.Player)
	// Leave runs when a member is gone, with the reason.
	Leave(r *Room, p *tandem.Player, reason protocol.LeaveReason)
	// Message runs for each message a member sends to the room.
	Message(r *Room, p *tandem.Player, m Message)
	// Tick runs at the room type's tick rate.
	Tick(r *Room)
	// Snapshot returns the room's state as this player may see it. It is
	// sent in joined and after a gap. An operator's inspection of the room
	// also calls it (then Inspecting reports true): its result then goes
	// to no client, so it must not count as sent.
	Snapshot(r *Room, p *tandem.Player) []byte
	// Shutdown runs once when the room ends.
	Shutdown(r *Room)
}

// Message is a message from a member to the room.
type Message struct {
	Topic    string
	Data     []byte
	Delivery protocol.Delivery
	To       []string
}

// Base implements every Handler hook as a no-op that accepts joins; embed it
// and override what the room needs.
type Base struct{}

func (Base) Init(*Room, []byte) error                          { return nil }
func (Base) JoinAttempt(*Room, *tandem.Player, []byte) error   { return nil }
func (Base) Join(*Room, *tandem.Player)                        {}
func (Base) Disconnect(*Room, *tandem.Player)                  {}
func (Base) Rejoin(*Room, *tandem.Player)                      {}
func (Base) Leave(*Room, *tandem.Player, protocol.LeaveReason) {}
func (Base) Message(*Room, *tandem.Player, Message)            {}
func (Base) Tick(*Room)                                        {}
func (Base) Snapshot(*Room, *tandem.Player) []byte             { return nil }
func (Base) Shutdown(*Room)                                    {}

// Type describes a kind of room a game offers.
type Type struct {
	// Name is what clients ask for in join{room_type}.
	Name string
	// New returns the handler of a new room of this type.
	New func() Handler
	// TickRate is the number of ticks per second; 0 means no ticks.
	TickRate int
	// MaxPlayers caps the members (0 = no cap).
	MaxPlayers int
}

// TickInterval returns the time between two ticks, or 0 without ticks.
func (t Type) TickInterval() time.Duration {
	if t.TickRate <= 0 {
		return 0
	}
	return time.Second / time.Duration(t.TickRate)
}
