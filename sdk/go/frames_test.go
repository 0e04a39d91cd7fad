package client

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/tandemhq/tandem/protocol"
)

// sentFrames returns one of every envelope the SDK sends, numbered the way
// send and handshake number them.
func sentFrames() map[string]*protocol.Envelope {
	numbered := func(env *protocol.Envelope, cid, seq uint64) *protocol.Envelope {
		env.Cid, env.Seq = cid, seq
		return env
	}
	positions := []*protocol.StreamPos{{Seq: 9}, {Room: "r1", Epoch: 2, Seq: 1 << 40}}
	return map[string]*protocol.Envelope{
		"connect":        connectFrame("tok", "", nil, "", "tandem-go"),
		"connect resume": connectFrame("tok", "resume-1", positions, "", "tandem-go"),
		"connect seat":   connectFrame("tok", "", nil, "seat.abc", "tandem-go"),
		"join": numbered(joinFrame(JoinOptions{
			Mode: protocol.JoinMode_JOIN_MODE_JOIN_OR_CREATE, RoomType: "relay",
			Options: []byte(`{"max":4}`), Metadata: []byte{0, 1, 2, 255},
		}), 1, 1),
		"leave":            numbered(leaveFrame("r1"), 2, 2),
		"room_message":     numbered(roomMessageFrame("r1", "move", []byte{1, 2, 3}, nil), 3, 3),
		"room_message to":  numbered(roomMessageFrame("r1", "chat", []byte("hi"), []SendOption{To("p2", "p3")}), 4, 4),
		"room_message oth": numbered(roomMessageFrame("r1", "chat", nil, []SendOption{Others()}), 5, 5),
		"room_message hnd": numbered(roomMessageFrame("r1", "input", nil, []SendOption{HandlerOnly()}), 6, 6),
		"rpc":              numbered(rpcFrame("inventory.get", []byte(`{}`)), 7, 1<<53+1),
		"list_rooms":       numbered(listRoomsFrame("arena"), 8, 8),
		"ack_frame":        ackFrame(positions),
		"ping":             pingFrame(1234567),
		"pong":             pongFrame(-42),
	}
}

func TestEverySentFrameSurvivesBothCodecs(t *testing.T) {
	for _, id := range []protocol.CodecID{protocol.CodecJSON, protocol.CodecBinary} {
		codec := id.Codec()
		for name, env := range sentFrames() {
			b, err := codec.Marshal(nil, env)
			if err != nil {
				t.Fatalf(
					"%s %s: marshal: %v",
					codec.Name(), name, err)
			}
			var got protocol.Envelope
			if err := codec.Unmarshal(b, &got); err != nil {
				t.Fatalf(
					"%s %s: unmarshal: %v",
					codec.Name(), name, err)
			}
			if diff := cmp.Diff(env, &got, protocmp.Transform()); diff != "" {
				t.Errorf(
					"%s %s: round trip (-sent +decoded):\n%s",
					codec.Name(), name, diff)
			}
		}
	}
}

// The JSON codec is read by servers and tools in other languages: the SDK's
// frames use the proto field names, and 64-bit integers are strings.
func TestJSONFramesUseProtoNamesAndStringIntegers(t *testing.T) {
	codec := protocol.CodecJSON.Codec()
	frames := sentFrames()
	for _, tc := range []struct {
		frame string
		want  map[string]any
	}{
		{
			frame: "room_message to",
			want: map[string]any{
				"cid": "4",
				"seq": "4",
				"room_message": map[string]any{
					"room_id":  "r1",
					"topic":    "chat",
					"data":     "aGk=",
					"delivery": "DELIVERY_LIST",
					"to":       []any{"p2", "p3"},
				},
			},
		},
		{
			frame: "ack_frame",
			want: map[string]any{
				"ack_frame": map[string]any{
					"positions": []any{
						map[string]any{"seq": "9"},
						map[string]any{"room": "r1", "epoch": float64(2), "seq": "1099511627776"},
					},
				},
			},
		},
		{
			frame: "connect resume",
			want: map[string]any{
				"connect": map[string]any{
					"token":        "tok",
					"resume_token": "resume-1",
					"sdk":          "tandem-go",
					"positions": []any{
						map[string]any{"seq": "9"},
						map[string]any{"room": "r1", "epoch": float64(2), "seq": "1099511627776"},
					},
				},
			},
		},
	} {
		b, err := codec.Marshal(nil, frames[tc.frame])
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf(
				"%s: not JSON: %v: %s",
				tc.frame, err, b)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf(
				"%s (-want +got):\n%s",
				tc.frame, diff)
		}
	}
}
