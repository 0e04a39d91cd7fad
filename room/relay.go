package room

import "github.com/tandemhq/tandem"

// RelayMaxPlayers is the seat count of a relay room. A relay fans every
// message out to its members, so its cost grows with the square of its size;
// 16 covers the lobbies and small peer-to-peer matches it is meant for. A
// game that wants another size registers a copy of RelayType with its own
// MaxPlayers.
const RelayMaxPlayers = 16

// RelayType is the built-in room type "relay": a room without state or
// ticks that forwards each member's room_message as the member asked, as
// room_message{from, topic, data}: to every member (DELIVERY_ALL), every
// member but the sender (DELIVERY_OTHERS) or the listed members
// (DELIVERY_LIST; players not in the room are skipped). DELIVERY_ROOM
// messages go nowhere. Its snapshot is empty.
func RelayType() Type {
	return Type{Name: "relay", New: func() Handler { return relay{} }, MaxPlayers: RelayMaxPlayers}
}

type relay struct{ Base }

func (relay) Message(r *Room, p *tandem.Player, m Message) { r.Forward(p, m) }
