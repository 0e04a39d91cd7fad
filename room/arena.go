package room

import (
	"encoding/json"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// The rules of the arena room type.
const (
	ArenaTickRate   = 20   // ticks per second
	ArenaMaxPlayers = 8    // seats
	ArenaWidth      = 1000 // x runs from 0 to ArenaWidth inclusive
	ArenaHeight     = 1000 // y runs from 0 to ArenaHeight inclusive
	ArenaSpeed      = 10   // units per tick along each axis of the direction
)

// ArenaType is the built-in room type "arena": an authoritative example of
// a room built on State. Every player is the entity "p:<player id>" with
// the value
//
//	{"x":X,"y":Y,"dx":DX,"dy":DY,"connected":BOOL}
//
// X and Y are integers within 0..ArenaWidth and 0..ArenaHeight; a joining
// player spawns at a position drawn from the room's RNG. A client steers
// with room_message{topic:"move", data:{"dx":DX,"dy":DY}}: the direction
// it wants, each component an integer clamped to -1..1. Any other topic and
// any data that is not such a JSON object is ignored (and counted). Each
// tick moves every player ArenaSpeed units along each axis of its direction,
// stopping at the edges, and sends the tick's delta. A disconnected player
// stays in the arena with "connected":false and stops moving until it
// rejoins; a player that leaves is deleted. joined.state and gap.state carry
// the snapshot; the formats are State's.
func ArenaType() Type {
	return Type{
		Name:       "arena",
		New:        func() Handler { return &arena{players: make(map[string]*arenaPlayer)} },
		TickRate:   ArenaTickRate,
		MaxPlayers: ArenaMaxPlayers,
	}
}

// arenaPlayer is a player's entity value; its JSON is the wire format.
type arenaPlayer struct {
	X         int  `json:"x"`
	Y         int  `json:"y"`
	DX        int  `json:"dx"`
	DY        int  `json:"dy"`
	Connected bool `json:"connected"`
}

type arena struct {
	Base
	state   State
	players map[string]*arenaPlayer
	ignored int // messages ignored: unknown topic, malformed data
}

func arenaKey(playerID string) string { return "p:" + playerID }

func (a *arena) Join(r *Room, p *tandem.Player) {
	pl := &arenaPlayer{
		X:         r.Rand().IntN(ArenaWidth + 1),
		Y:         r.Rand().IntN(ArenaHeight + 1),
		Connected: r.Connected(p.ID),
	}
	a.players[p.ID] = pl
	a.sync(r, p.ID, pl)
}

func (a *arena) Disconnect(r *Room, p *tandem.Player) {
	if pl := a.players[p.ID]; pl != nil {
		pl.Connected, pl.DX, pl.DY = false, 0, 0
		a.sync(r, p.ID, pl)
	}
}

func (a *arena) Rejoin(r *Room, p *tandem.Player) {
	if pl := a.players[p.ID]; pl != nil {
		pl.Connected = true
		a.sync(r, p.ID, pl)
	}
}

func (a *arena) Leave(r *Room, p *tandem.Player, _ protocol.LeaveReason) {
	delete(a.players, p.ID)
	a.state.Delete(arenaKey(p.ID))
}

func (a *arena) Message(r *Room, p *tandem.Player, m Message) {
	pl := a.players[p.ID]
	dx, dy, ok := parseArenaMove(m)
	if pl == nil || !ok {
		a.ignored++
		r.Logger().Debug("arena: message ignored", "player", p.ID, "topic", m.Topic)
		return
	}
	pl.DX, pl.DY = dx, dy
	a.sync(r, p.ID, pl)
}

// parseArenaMove reads a move message: a JSON object {"dx":int,"dy":int}
// (a missing component is 0), its components clamped to -1..1.
func parseArenaMove(m Message) (dx, dy int, ok bool) {
	if m.Topic != "move" {
		return 0, 0, false
	}
	var mv *struct {
		DX int `json:"dx"`
		DY int `json:"dy"`
	}
	if err := json.Unmarshal(m.Data, &mv); err != nil || mv == nil {
		return 0, 0, false
	}
	return min(max(mv.DX, -1), 1), min(max(mv.DY, -1), 1), true
}

func (a *arena) Tick(r *Room) {
	// Join order, not map order, so that a replay does the same.
	for _, p := range r.Players() {
		pl := a.players[p.ID]
		if pl == nil || pl.DX == 0 && pl.DY == 0 {
			continue
		}
		pl.X = min(max(pl.X+pl.DX*ArenaSpeed, 0), ArenaWidth)
		pl.Y = min(max(pl.Y+pl.DY*ArenaSpeed, 0), ArenaHeight)
		a.sync(r, p.ID, pl)
	}
	a.state.Flush(r)
}

func (a *arena) Snapshot(r *Room, p *tandem.Player) []byte { return a.state.Snapshot(r, p) }

func (a *arena) sync(r *Room, playerID string, pl *arenaPlayer) {
	if err := a.state.Set(arenaKey(playerID), pl); err != nil {
		r.Logger().Error("arena: set player", "player", playerID, "err", err) // cannot happen: ints and a bool
	}
}
