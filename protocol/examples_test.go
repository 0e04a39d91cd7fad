package protocol_test

import (
	"math"

	"github.com/tandemhq/tandem/protocol"
	"google.golang.org/protobuf/proto"
)

// example is one named envelope. The examples cover every body of the
// envelope and every field of every message (TestExamplesCoverEveryField);
// the codec tests, the test vectors under testdata/vectors and the fuzz
// seeds are made from them.
type example struct {
	name string
	env  *protocol.Envelope
}

// Realistic values shared by the examples.
const (
	exRoom    = "5c50559bf0d9ec874b4c"
	exToken   = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJraWQiOiJrMSIsInN1YiI6ImFsaWNlIiwianRpIjoiMSIsImlhdCI6MTc2NzIyNTYwMCwiZXhwIjoxNzY3MjI2MjAwLCJhdWQiOiJ0YW5kZW0ucmVhbHRpbWUifQ.c2lnbmF0dXJl"
	exResume  = "node-1.9Htfvmv9MX-GCdFub0wC-yWW10jcqTQ1"
	exSession = "PU0c2RpZT2MCYiJfeIF6-w"
)

func examples() []example {
	return []example{
		{"connect", &protocol.Envelope{Cid: 1, Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{
			Token:       exToken,
			ResumeToken: exResume,
			Positions:   []*protocol.StreamPos{{Seq: 12}, {Room: exRoom, Epoch: 2, Seq: 340}},
			Sdk:         "tandem-go/0.1.0",
		}}}},
		{"connect_seat", &protocol.Envelope{Cid: 1, Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{
			Token:     exToken,
			SeatToken: "seat.abc",
			Sdk:       "tandem-go/0.1.0",
		}}}},
		{"connected", &protocol.Envelope{Cid: 1, Ack: 9, Body: &protocol.Envelope_Connected{Connected: &protocol.Connected{
			SessionId:     exSession,
			PlayerId:      "alice",
			ResumeToken:   "node-1.Id1U8j-E691zcMRbiIIPh8fZXMniHQkk",
			Resumed:       true,
			HeartbeatMs:   10000,
			SeatHoldMs:    20000,
			Node:          "node-1",
			MaxFrameBytes: 65536,
			Rooms:         []string{exRoom},
		}}}},
		{"join", &protocol.Envelope{Cid: 2, Seq: 1, Body: &protocol.Envelope_Join{Join: &protocol.Join{
			Mode:     protocol.JoinMode_JOIN_MODE_JOIN,
			RoomId:   exRoom,
			RoomType: "arena",
			Options:  []byte(`{"map":"small"}`),
			Metadata: []byte{0x00, 0xff, 0x10, 0x80},
		}}}},
		{"join_seated", &protocol.Envelope{Cid: 3, Seq: 2, Body: &protocol.Envelope_Join{Join: &protocol.Join{
			Mode:      protocol.JoinMode_JOIN_MODE_JOIN,
			RoomId:    exRoom,
			SeatToken: "seat.def",
		}}}},
		{"joined", &protocol.Envelope{Cid: 2, Seq: 1, Body: &protocol.Envelope_Joined{Joined: &protocol.Joined{
			RoomId:   exRoom,
			RoomType: "arena",
			Epoch:    1,
			Seq:      41,
			State:    []byte(`{"tick":12,"entities":{"p:bob":{"x":500,"y":20,"dx":1,"dy":0,"connected":true}}}`),
			Players:  []string{"bob", "alice"},
		}}}},
		{"leave", &protocol.Envelope{Cid: 3, Seq: 2, Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{
			RoomId: exRoom,
		}}}},
		{"leave_final", &protocol.Envelope{Seq: 5, Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{
			RoomId: exRoom,
			Reason: protocol.LeaveReason_LEAVE_REASON_ROOM_CLOSED,
		}}}},
		{"leave_while_away", &protocol.Envelope{Seq: 6, Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{
			RoomId: exRoom,
			Reason: protocol.LeaveReason_LEAVE_REASON_ROOM_CLOSED,
			State:  []byte(`{"winner":"alice"}`),
			Missed: true,
		}}}},
		{"room_message", &protocol.Envelope{Cid: 4, Seq: 3, Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{
			RoomId:   exRoom,
			Topic:    "chat",
			Data:     []byte("hello"),
			Delivery: protocol.Delivery_DELIVERY_LIST,
			To:       []string{"bob", "carol"},
		}}}},
		{"room_message_relayed", &protocol.Envelope{Seq: 42, Room: exRoom, Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{
			RoomId: exRoom,
			Topic:  "chat",
			Data:   []byte("hello"),
			From:   "alice",
		}}}},
		{"move", &protocol.Envelope{Cid: 8, Seq: 6, Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{
			RoomId:   exRoom,
			Topic:    "move",
			Data:     []byte(`{"dx":1,"dy":-1}`),
			Delivery: protocol.Delivery_DELIVERY_ROOM,
		}}}},
		{"snapshot", &protocol.Envelope{Seq: 43, Room: exRoom, Body: &protocol.Envelope_Snapshot{Snapshot: &protocol.Snapshot{
			RoomId: exRoom,
			Tick:   12,
			State:  []byte(`{"tick":12,"entities":{}}`),
		}}}},
		{"delta", &protocol.Envelope{Seq: 44, Room: exRoom, Body: &protocol.Envelope_Delta{Delta: &protocol.Delta{
			RoomId: exRoom,
			Tick:   13,
			Patch:  []byte(`{"tick":13,"set":{"p:alice":{"x":10,"y":990,"dx":1,"dy":-1,"connected":true}},"del":["p:bob"]}`),
		}}}},
		{"rpc", &protocol.Envelope{Cid: 5, Seq: 4, Body: &protocol.Envelope_Rpc{Rpc: &protocol.Rpc{
			Method: "echo",
			Data:   []byte("x"),
		}}}},
		{"rpc_reply", &protocol.Envelope{Cid: 5, Seq: 2, Body: &protocol.Envelope_RpcReply{RpcReply: &protocol.RpcReply{
			Data: []byte("alice:x"),
		}}}},
		{"ping", &protocol.Envelope{Body: &protocol.Envelope_Ping{Ping: &protocol.Ping{
			TimeUs: 1767225600123456,
			RttUs:  1850,
		}}}},
		{"pong", &protocol.Envelope{Body: &protocol.Envelope_Pong{Pong: &protocol.Pong{
			TimeUs: 1767225600123456,
		}}}},
		{"ack_frame", &protocol.Envelope{Body: &protocol.Envelope_AckFrame{AckFrame: &protocol.Ack{
			Positions: []*protocol.StreamPos{{Seq: 6}, {Room: exRoom, Epoch: 1, Seq: 44}},
		}}}},
		{"ack_frame_server", &protocol.Envelope{Ack: 32, Body: &protocol.Envelope_AckFrame{AckFrame: &protocol.Ack{}}}},
		{"error", &protocol.Envelope{Cid: 6, Seq: 3, Body: &protocol.Envelope_Error{Error: &protocol.Error{
			Code:      12,
			Message:   "room " + exRoom + " is full",
			Temporary: true,
		}}}},
		{"error_validation", &protocol.Envelope{Cid: 9, Seq: 8, Body: &protocol.Envelope_Error{Error: &protocol.Error{
			Code:    18,
			Message: "some fields are invalid",
			Fields:  []*protocol.FieldError{{Field: "string_properties.region", Message: "the queue does not let a client set this property"}},
		}}}},
		{"notice", &protocol.Envelope{Seq: 4, Body: &protocol.Envelope_Notice{Notice: &protocol.Notice{
			Kind: "system",
			Text: "maintenance at 02:00 UTC",
		}}}},
		{"gap", &protocol.Envelope{Seq: 57, Room: exRoom, Body: &protocol.Envelope_Gap{Gap: &protocol.Gap{
			RoomId:  exRoom,
			FromSeq: 20,
			Seq:     57,
			Epoch:   2,
			State:   []byte(`{"tick":30,"entities":{}}`),
		}}}},
		{"room_event", &protocol.Envelope{Seq: 45, Room: exRoom, Body: &protocol.Envelope_RoomEvent{RoomEvent: &protocol.RoomEvent{
			RoomId:   exRoom,
			PlayerId: "bob",
			Kind:     protocol.RoomEventKind_ROOM_EVENT_LEFT,
			Reason:   protocol.LeaveReason_LEAVE_REASON_SEAT_EXPIRED,
		}}}},
		{"list_rooms", &protocol.Envelope{Cid: 7, Seq: 5, Body: &protocol.Envelope_ListRooms{ListRooms: &protocol.ListRooms{
			RoomType: "relay",
		}}}},
		{"room_list", &protocol.Envelope{Cid: 7, Seq: 6, Body: &protocol.Envelope_RoomList{RoomList: &protocol.RoomList{
			Rooms: []*protocol.RoomInfo{
				{RoomId: exRoom, RoomType: "relay", Players: 3, MaxPlayers: 16, Open: true, Node: "node-1"},
				{RoomId: "0a1b2c3d4e5f60718293", RoomType: "relay", MaxPlayers: 16, Open: true, Node: "node-1"},
			},
		}}}},
		{"seat_reservation", &protocol.Envelope{Seq: 7, Body: &protocol.Envelope_SeatReservation{SeatReservation: &protocol.SeatReservation{
			RoomId:      exRoom,
			NodeUrl:     "wss://rt2.example.com/ws",
			SeatToken:   "seat.abc",
			ExpiresAtMs: 1767225630000,
			Node:        "rt2",
		}}}},
		{"ticket_create", &protocol.Envelope{Cid: 9, Seq: 7, Body: &protocol.Envelope_TicketCreate{TicketCreate: &protocol.TicketCreate{
			Queue:             "ranked-2v2",
			StringProperties:  map[string]string{"region": "eu", "mode": "ctf"},
			NumericProperties: map[string]float64{"skill": 1520.5, "level": 30},
			Must: []*protocol.MatchTerm{
				{Property: "region", OneOf: []string{"eu", "us"}},
				{Property: "level", Min: proto.Float64(10), Max: proto.Float64(60)},
			},
			Should:    []*protocol.MatchTerm{{Property: "mode", OneOf: []string{"ctf"}, Weight: 2}},
			Party:     "p-7f3a",
			PartySize: 2,
		}}}},
		{"ticket_cancel", &protocol.Envelope{Cid: 10, Seq: 8, Body: &protocol.Envelope_TicketCancel{TicketCancel: &protocol.TicketCancel{
			Queue: "ranked-2v2",
		}}}},
		{"ticket_expired", &protocol.Envelope{Seq: 9, Body: &protocol.Envelope_TicketStatus{TicketStatus: &protocol.TicketStatus{
			TicketId: "t-42", State: "expired", Queue: "ranked-2v2", Reason: "seat_expired",
		}}}},
		{"ticket_status", &protocol.Envelope{Seq: 8, Body: &protocol.Envelope_TicketStatus{TicketStatus: &protocol.TicketStatus{
			TicketId:    "t-42",
			State:       "matched",
			Queue:       "ranked-2v2",
			CreatedAtMs: 1767225600000,
			MatchId:     "m-9",
			Team:        1,
			Seat: &protocol.SeatReservation{
				RoomId: exRoom, NodeUrl: "wss://rt2.example.com/ws", SeatToken: "seat.def", ExpiresAtMs: 1767225630000, Node: "rt2",
			},
		}}}},
		// 64-bit values beyond what a JSON number (an IEEE double) holds
		// exactly: JSON carries them as strings.
		{"extremes", &protocol.Envelope{Cid: math.MaxUint64, Seq: 1<<53 + 1, Room: "ü/€ room ☃", Ack: math.MaxUint64 - 1, Body: &protocol.Envelope_Ping{Ping: &protocol.Ping{
			TimeUs: math.MinInt64,
			RttUs:  math.MaxUint32,
		}}}},
	}
}

func exampleByName(name string) (*protocol.Envelope, bool) {
	for _, ex := range examples() {
		if ex.name == name {
			return ex.env, true
		}
	}
	return nil, false
}
