package client

import "github.com/tandemhq/tandem/protocol"

// Constructors of every envelope the SDK sends. Reliable frames get their
// cid and seq when they are queued.

func connectFrame(token, resumeToken string, positions []*protocol.StreamPos, seatToken, sdk string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{
		Token: token, ResumeToken: resumeToken, Positions: positions, SeatToken: seatToken, Sdk: sdk,
	}}}
}

func joinFrame(o JoinOptions) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Join{Join: &protocol.Join{
		Mode: o.Mode, RoomId: o.RoomID, RoomType: o.RoomType, Options: o.Options, Metadata: o.Metadata,
	}}}
}

func leaveFrame(room string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{RoomId: room}}}
}

func roomMessageFrame(room, topic string, data []byte, opts []SendOption) *protocol.Envelope {
	m := &protocol.RoomMessage{RoomId: room, Topic: topic, Data: data, Delivery: protocol.Delivery_DELIVERY_ALL}
	for _, o := range opts {
		o(m)
	}
	return &protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: m}}
}

func rpcFrame(method string, data []byte) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Rpc{Rpc: &protocol.Rpc{Method: method, Data: data}}}
}

func listRoomsFrame(roomType string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_ListRooms{ListRooms: &protocol.ListRooms{RoomType: roomType}}}
}

func ackFrame(positions []*protocol.StreamPos) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_AckFrame{AckFrame: &protocol.Ack{Positions: positions}}}
}

func pingFrame(timeUS int64) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Ping{Ping: &protocol.Ping{TimeUs: timeUS}}}
}

func pongFrame(timeUS int64) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Pong{Pong: &protocol.Pong{TimeUs: timeUS}}}
}

// seatJoinFrame joins the room of a seat reservation made on the session's
// own node: the seat token claims the seat.
func seatJoinFrame(sr *protocol.SeatReservation, metadata []byte) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Join{Join: &protocol.Join{
		Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomId: sr.GetRoomId(), SeatToken: sr.GetSeatToken(), Metadata: metadata,
	}}}
}

func ticketCreateFrame(t *protocol.TicketCreate) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_TicketCreate{TicketCreate: t}}
}

func ticketCancelFrame(queue string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_TicketCancel{TicketCancel: &protocol.TicketCancel{Queue: queue}}}
}

func ticketStatusFrame(queue string) *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_TicketStatus{TicketStatus: &protocol.TicketStatus{Queue: queue}}}
}
