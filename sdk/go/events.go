package client

import "github.com/tandemhq/tandem/protocol"

// Event is one thing the application sees, delivered on Client.Events in
// stream order. Switch on the concrete type:
//
//	switch e := ev.(type) {
//	case *client.RoomMessage: ...
//	case *client.Gap:         ... // replace the room's state with e.State
//	case *client.SessionLost: ... // rejoin e.Rooms
//	case *client.Closed:      ... // final
//	}
//
// Room events (Joined … Left) come from the room's stream; Notice,
// ErrorEvent and TicketUpdate from the session stream; Disconnected,
// Resumed, SessionLost and Closed describe the connection.
type Event interface{ event() }

// Joined: the session joined a room (the answer to Join; also for a Join
// whose caller stopped waiting). The room's stream events follow it.
type Joined struct {
	Room    *Room
	Players []string // players in the room at the join, in join order
}

// RoomMessage is a message in a room's stream.
type RoomMessage struct {
	Room  *Room
	From  string // sender player id; "" = the room itself
	Topic string
	Data  []byte
	Seq   uint64 // room stream position
}

// Snapshot is the full state of a room for this player; Room.State returns
// it from now on.
type Snapshot struct {
	Room  *Room
	Tick  uint64
	State []byte
	Seq   uint64
}

// Delta is a change of a room's state since the previous snapshot or delta.
type Delta struct {
	Room  *Room
	Tick  uint64
	Patch []byte
	Seq   uint64
}

// RoomEvent is a membership change of another player.
type RoomEvent struct {
	Room     *Room
	PlayerID string
	Kind     protocol.RoomEventKind // joined, left, disconnected, rejoined
	Reason   protocol.LeaveReason   // for ROOM_EVENT_LEFT
	Seq      uint64
}

// Gap: frames of the room's stream were lost beyond the server's buffer.
// The application must drop its state of the room and take State (the
// room's snapshot for this player); the stream continues from (Epoch, Seq).
type Gap struct {
	Room    *Room
	FromSeq uint64
	Seq     uint64
	Epoch   uint32
	State   []byte
}

// Left: the session is no longer in the room (the end of its stream).
// LEAVE_REASON_MOVED: a Join moved the session to another node, and the old
// node ended the old session's rooms (Missed is set when its connection
// ended before the room's leave arrived).
type Left struct {
	Room   *Room
	Reason protocol.LeaveReason
	// Missed is true when the player was away as it left: frames of the
	// room may have been missed, and State is the room's final state for
	// the player in their place.
	Missed bool
	State  []byte
}

// Notice is a server notice on the session stream.
type Notice struct {
	Kind string // "system", "shutdown", ...
	Text string
}

// TicketUpdate: the player's matchmaking ticket in Status.Queue changed (the
// server's push; one per change, in order, also while Matchmake waits for
// it).
type TicketUpdate struct {
	Status TicketStatus
}

// ErrorEvent is an error frame that answers no waiting request: a refused
// Room.Send (Room and Topic are set when the SDK still knows the frame, for
// example rate_limited or not_in_room), or a session-level error.
type ErrorEvent struct {
	Room  string
	Topic string
	Err   *ServerError
}

// Disconnected: the connection was lost; the SDK reconnects. Err says why
// (a network error, ErrHeartbeatTimeout, or a *CloseError). Resumed,
// SessionLost or Closed follows.
type Disconnected struct{ Err error }

// Resumed: the SDK reconnected and resumed the held session; missed frames
// follow, in order, exactly once (or a Gap per room).
type Resumed struct{}

// SessionLost: the held session could not be resumed (rejoin class close,
// seat hold over, or the server started a new session). The SDK has
// connected a NEW session (new SessionID); Rooms are the rooms of the old
// session, which the application must join again if it wants them. Requests
// pending at the loss failed with ErrSessionLost.
type SessionLost struct {
	Rooms []string
	Err   error
}

// Closed is the last event: the server ended the client with a final close
// (Err is a *CloseError). The Events channel is closed after it. Close by
// the application and the silent `moved` close emit no Closed event; the
// channel is just closed.
type Closed struct{ Err error }

func (*Joined) event()       {}
func (*RoomMessage) event()  {}
func (*Snapshot) event()     {}
func (*Delta) event()        {}
func (*RoomEvent) event()    {}
func (*Gap) event()          {}
func (*Left) event()         {}
func (*Notice) event()       {}
func (*ErrorEvent) event()   {}
func (*TicketUpdate) event() {}
func (*Disconnected) event() {}
func (*Resumed) event()      {}
func (*SessionLost) event()  {}
func (*Closed) event()       {}
