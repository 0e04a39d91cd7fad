package protocol_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem/protocol"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"
)

var codecs = []protocol.CodecID{protocol.CodecJSON, protocol.CodecBinary}

func marshal(t testing.TB, id protocol.CodecID, env *protocol.Envelope) []byte {
	t.Helper()
	b, err := id.Codec().Marshal(nil, env)
	if err != nil {
		t.Fatalf("%s: marshal %v: %v", id.Codec().Name(), env, err)
	}
	return b
}

func unmarshal(t testing.TB, id protocol.CodecID, b []byte) *protocol.Envelope {
	t.Helper()
	env := new(protocol.Envelope)
	if err := id.Codec().Unmarshal(b, env); err != nil {
		t.Fatalf("%s: unmarshal %q: %v", id.Codec().Name(), b, err)
	}
	return env
}

func TestCodecsBySubprotocol(t *testing.T) {
	for _, tc := range []struct {
		name   string
		id     protocol.CodecID
		binary bool
	}{
		{"tandem.v1.json", protocol.CodecJSON, false},
		{"tandem.v1.proto", protocol.CodecBinary, true},
	} {
		id, ok := protocol.CodecBySubprotocol(tc.name)
		if !ok || id != tc.id {
			t.Errorf("CodecBySubprotocol(%q) = %v, %v; want %v, true", tc.name, id, ok, tc.id)
		}
		if c := tc.id.Codec(); c.Name() != tc.name || c.Binary() != tc.binary {
			t.Errorf("codec %d: Name %q Binary %v; want %q %v", tc.id, c.Name(), c.Binary(), tc.name, tc.binary)
		}
	}
	for _, name := range []string{"", "tandem.v1", "tandem.v2.json", "TANDEM.V1.JSON", "json"} {
		if _, ok := protocol.CodecBySubprotocol(name); ok {
			t.Errorf("CodecBySubprotocol(%q) found a codec", name)
		}
	}
}

// Every body type and every field survives both codecs.
func TestRoundTripEveryBodyThroughBothCodecs(t *testing.T) {
	for _, ex := range examples() {
		for _, id := range codecs {
			t.Run(ex.name+"/"+id.Codec().Name(), func(t *testing.T) {
				got := unmarshal(t, id, marshal(t, id, ex.env))
				if diff := cmp.Diff(ex.env, got, protocmp.Transform()); diff != "" {
					t.Errorf("round trip (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// The examples name every body of the envelope once at least, and between
// them set every field of every message, so the round trip above (and the
// test vectors) cover the whole schema. A field added to tandem.proto fails
// here until an example sets it.
func TestExamplesCoverEveryField(t *testing.T) {
	set := map[protoreflect.FullName]bool{}
	for _, ex := range examples() {
		markSet(ex.env.ProtoReflect(), set)
	}
	var missing []string
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			if !set[fd.FullName()] {
				missing = append(missing, string(fd.FullName()))
			}
			if fd.Message() != nil && !fd.IsMap() {
				walk(fd.Message())
			}
		}
	}
	walk((&protocol.Envelope{}).ProtoReflect().Descriptor())
	if len(missing) > 0 {
		t.Errorf("no example sets these fields: %v", missing)
	}
}

func markSet(m protoreflect.Message, set map[protoreflect.FullName]bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		set[fd.FullName()] = true
		switch {
		case fd.IsMap():
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				markSet(v.List().Get(i).Message(), set)
			}
		case fd.Message() != nil:
			markSet(v.Message(), set)
		}
		return true
	})
}

// Marshal appends to the buffer it is given.
func TestMarshalAppends(t *testing.T) {
	env, _ := exampleByName("joined")
	for _, id := range codecs {
		prefix := []byte("PREFIX")
		b, err := id.Codec().Marshal(slices.Clone(prefix), env)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, prefix) {
			t.Fatalf("%s: Marshal dropped the prefix: %q", id.Codec().Name(), b)
		}
		if got := unmarshal(t, id, b[len(prefix):]); !proto.Equal(got, env) {
			t.Errorf("%s: appended encoding decodes to %v", id.Codec().Name(), got)
		}
	}
}

// Unmarshal resets the envelope it is given: nothing of the previous frame
// leaks into the next (the gateway reuses one envelope per connection).
func TestUnmarshalResets(t *testing.T) {
	old, _ := exampleByName("connected")
	next, _ := exampleByName("pong")
	for _, id := range codecs {
		env := proto.Clone(old).(*protocol.Envelope)
		if err := id.Codec().Unmarshal(marshal(t, id, next), env); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(next, env, protocmp.Transform()); diff != "" {
			t.Errorf("%s: decoding into a used envelope (-want +got):\n%s", id.Codec().Name(), diff)
		}
	}
}

// unknownFields returns encoded fields of every wire type with numbers the
// schema does not use.
func unknownFields() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1000, protowire.VarintType)
	b = protowire.AppendVarint(b, 1<<63)
	b = protowire.AppendTag(b, 1001, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 0xdeadbeefcafe)
	b = protowire.AppendTag(b, 1002, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("a field from the future"))
	b = protowire.AppendTag(b, 1003, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 7)
	b = protowire.AppendTag(b, 1004, protowire.StartGroupType)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = protowire.AppendTag(b, 1004, protowire.EndGroupType)
	b = protowire.AppendTag(b, 536870911, protowire.VarintType) // the largest field number
	b = protowire.AppendVarint(b, 0)
	return b
}

// withNestedUnknown returns the binary encoding of env with unknown fields
// inside its body message as well as after the envelope's own fields.
func withNestedUnknown(t testing.TB, env *protocol.Envelope) []byte {
	t.Helper()
	head := proto.Clone(env).(*protocol.Envelope)
	head.Body = nil
	det := proto.MarshalOptions{Deterministic: true}
	b, err := det.Marshal(head)
	if err != nil {
		t.Fatal(err)
	}
	if env.Body != nil {
		body := env.ProtoReflect().WhichOneof(env.ProtoReflect().Descriptor().Oneofs().ByName("body"))
		inner, err := det.Marshal(env.ProtoReflect().Get(body).Message().Interface())
		if err != nil {
			t.Fatal(err)
		}
		inner = append(inner, unknownFields()...)
		b = protowire.AppendTag(b, body.Number(), protowire.BytesType)
		b = protowire.AppendBytes(b, inner)
	}
	return append(b, unknownFields()...)
}

func TestBinaryDecoderIgnoresUnknownFields(t *testing.T) {
	for _, ex := range examples() {
		b := withNestedUnknown(t, ex.env)
		got := unmarshal(t, protocol.CodecBinary, b)
		if diff := cmp.Diff(ex.env, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s with unknown fields (-want +got):\n%s", ex.name, diff)
		}
		// Unknown fields are dropped, not kept and sent on.
		if n := len(got.ProtoReflect().GetUnknown()); n != 0 {
			t.Errorf("%s: %d bytes of unknown fields kept", ex.name, n)
		}
	}
}

// withUnknownKeys returns the JSON encoding of env with unknown keys at the
// top level and inside the body object.
func withUnknownKeys(t testing.TB, env *protocol.Envelope) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(marshal(t, protocol.CodecJSON, env), &obj); err != nil {
		t.Fatal(err)
	}
	future := map[string]any{"nested": []any{1, "two", map[string]any{"three": nil}}, "flag": true}
	obj["future_field"] = future
	obj["futureCamel"] = 12.5
	for k, v := range obj {
		if body, ok := v.(map[string]any); ok && k != "future_field" {
			body["added_in_v9"] = future
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJSONDecoderIgnoresUnknownKeys(t *testing.T) {
	for _, ex := range examples() {
		got := unmarshal(t, protocol.CodecJSON, withUnknownKeys(t, ex.env))
		if diff := cmp.Diff(ex.env, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s with unknown keys (-want +got):\n%s", ex.name, diff)
		}
	}
}

// A frame of a kind this version does not know (a newer peer's body) decodes
// as an envelope without a body; the envelope fields still read.
func TestUnknownMessageTypeDecodesWithoutBody(t *testing.T) {
	want := &protocol.Envelope{Cid: 9, Seq: 3}
	var bin []byte
	bin = protowire.AppendTag(bin, 1, protowire.VarintType)
	bin = protowire.AppendVarint(bin, 9)
	bin = protowire.AppendTag(bin, 2, protowire.VarintType)
	bin = protowire.AppendVarint(bin, 3)
	bin = protowire.AppendTag(bin, 99, protowire.BytesType) // a body field number not in the oneof
	bin = protowire.AppendBytes(bin, []byte{0x0a, 0x01, 'x'})
	for _, tc := range []struct {
		id   protocol.CodecID
		data []byte
	}{
		{protocol.CodecBinary, bin},
		{protocol.CodecJSON, []byte(`{"cid":"9","seq":"3","matchmaker_party":{"party_id":"x"}}`)},
	} {
		got := unmarshal(t, tc.id, tc.data)
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.id.Codec().Name(), diff)
		}
	}
	for _, tc := range []struct {
		id   protocol.CodecID
		data []byte
	}{
		{protocol.CodecBinary, unknownFields()},
		{protocol.CodecJSON, []byte(`{"future_body":{}}`)},
		{protocol.CodecBinary, nil},
		{protocol.CodecJSON, []byte(`{}`)},
	} {
		if got := unmarshal(t, tc.id, tc.data); !proto.Equal(got, &protocol.Envelope{}) {
			t.Errorf("%s: %q decodes to %v, want an empty envelope", tc.id.Codec().Name(), tc.data, got)
		}
	}
}

// Enum values a decoder does not know: the binary codec keeps the number (a
// proto3 enum is open); the JSON codec keeps a number too, but ignores a name
// it does not know (the field reads as its zero value), like an unknown key.
func TestUnknownEnumValues(t *testing.T) {
	var bin []byte
	bin = protowire.AppendTag(bin, 14, protowire.BytesType) // leave
	bin = protowire.AppendBytes(bin, protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 99))
	got := unmarshal(t, protocol.CodecBinary, bin)
	if r := got.GetLeave().GetReason(); r != 99 {
		t.Errorf("binary: reason %v, want 99", r)
	}
	got = unmarshal(t, protocol.CodecJSON, []byte(`{"leave":{"room_id":"r","reason":99}}`))
	if r := got.GetLeave().GetReason(); r != 99 {
		t.Errorf("JSON number: reason %v, want 99", r)
	}
	got = unmarshal(t, protocol.CodecJSON, []byte(`{"leave":{"room_id":"r","reason":"LEAVE_REASON_ABDUCTED"}}`))
	if got.GetLeave() == nil || got.GetLeave().GetRoomId() != "r" || got.GetLeave().GetReason() != 0 {
		t.Errorf("JSON unknown name: got %v, want leave{room_id:r} with reason 0", got)
	}
}

// The JSON codec writes proto field names (room_message, session_id), never
// the lowerCamelCase JSON names, and 64-bit integers as strings.
func TestJSONUsesProtoFieldNames(t *testing.T) {
	for _, ex := range examples() {
		var obj map[string]any
		if err := json.Unmarshal(marshal(t, protocol.CodecJSON, ex.env), &obj); err != nil {
			t.Fatal(err)
		}
		checkJSONObject(t, ex.name, ex.env.ProtoReflect().Descriptor(), obj)
	}
	env, _ := exampleByName("connected")
	var obj map[string]any
	if err := json.Unmarshal(marshal(t, protocol.CodecJSON, env), &obj); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"cid": "1", "ack": "9", "connected": map[string]any{
		"session_id": exSession, "player_id": "alice", "resume_token": "node-1.Id1U8j-E691zcMRbiIIPh8fZXMniHQkk",
		"resumed": true, "heartbeat_ms": 10000.0, "seat_hold_ms": 20000.0, "node": "node-1",
		"max_frame_bytes": 65536.0, "rooms": []any{exRoom},
	}}
	if diff := cmp.Diff(want, obj); diff != "" {
		t.Errorf("connected as JSON (-want +got):\n%s", diff)
	}
}

// checkJSONObject checks every key of obj is the proto name of a field of md,
// that 64-bit integers are strings, enums names and bytes base64 strings.
func checkJSONObject(t *testing.T, path string, md protoreflect.MessageDescriptor, obj map[string]any) {
	t.Helper()
	for k, v := range obj {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			t.Errorf("%s: key %q is not a proto field name of %s", path, k, md.FullName())
			continue
		}
		p := path + "." + k
		if fd.IsMap() {
			if _, ok := v.(map[string]any); !ok {
				t.Errorf("%s: map is %T, want an object", p, v)
			}
			continue
		}
		vals := []any{v}
		if fd.IsList() {
			list, ok := v.([]any)
			if !ok {
				t.Errorf("%s: repeated field is %T, want an array", p, v)
				continue
			}
			vals = list
		}
		for _, v := range vals {
			checkJSONValue(t, p, fd, v)
		}
	}
}

func checkJSONValue(t *testing.T, p string, fd protoreflect.FieldDescriptor, v any) {
	t.Helper()
	want := ""
	switch fd.Kind() {
	case protoreflect.MessageKind:
		obj, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: message is %T, want an object", p, v)
			return
		}
		checkJSONObject(t, p, fd.Message(), obj)
		return
	case protoreflect.Uint64Kind, protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind,
		protoreflect.EnumKind, protoreflect.BytesKind, protoreflect.StringKind:
		want = "string"
	case protoreflect.BoolKind:
		want = "bool"
	default:
		want = "number"
	}
	var got string
	switch v.(type) {
	case string:
		got = "string"
	case bool:
		got = "bool"
	case float64:
		got = "number"
	default:
		got = fmt.Sprintf("%T", v)
	}
	if got != want {
		t.Errorf("%s (%s): JSON %s %v, want a %s", p, fd.Kind(), got, v, want)
	}
}

// The JSON decoder also takes what protojson allows besides its own output:
// lowerCamelCase names, 64-bit integers as numbers, enum numbers, URL-safe
// or unpadded base64. The lenient test vectors hold the same.
func TestJSONDecoderAcceptsLenientForms(t *testing.T) {
	want, _ := exampleByName("join")
	got := unmarshal(t, protocol.CodecJSON, []byte(lenientJoinJSON))
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("lenient join (-want +got):\n%s", diff)
	}
}

// lenientJoinJSON is the join example the way a hand-written client might
// send it. metadata is 00 ff 10 80: "AP8QgA==" in standard base64.
const lenientJoinJSON = `{
  "cid": 2,
  "seq": "1",
  "join": {
    "mode": 1,
    "roomId": "5c50559bf0d9ec874b4c",
    "roomType": "arena",
    "options": "eyJtYXAiOiJzbWFsbCJ9",
    "metadata": "AP8QgA"
  }
}
`

// Malformed input is an error from both decoders, never a panic.
func TestDecodersRejectMalformedFrames(t *testing.T) {
	for _, data := range []string{
		`{"connect":`, `[]`, `null`, `"connect"`, `{"cid":"1","cid":"2"}`, `{"seq":"-1"}`, `{"seq":1.5}`,
		`{"cid":"18446744073709551616"}`, `{}x`, `{"connect":{},"join":{}}`, "{\"room\":\"\xff\"}",
		`{"join":{"mode":"JOIN_MODE_JOIN"},"join":{}}`, `{"ping":{"time_us":"now"}}`, `{"rpc":{"data":"not base64!"}}`,
	} {
		if err := protocol.CodecJSON.Codec().Unmarshal([]byte(data), new(protocol.Envelope)); err == nil {
			t.Errorf("JSON %q decoded without error", data)
		}
	}
	valid := marshal(t, protocol.CodecBinary, examples()[0].env)
	for _, data := range [][]byte{
		{0xff, 0xff, 0xff},
		valid[:len(valid)-1],     // truncated
		{0x0a, 0x05, 'a'},        // cid (a varint) sent as bytes
		{0x1a, 0x02, 0xff, 0xfe}, // room: invalid UTF-8
		{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // varint of 11 bytes
		{0x52, 0xff, 0xff, 0xff, 0xff, 0x0f},                                     // length far past the end
		{0x00, 0x01},                                                             // field number 0
		{0x0c},                                                                   // end group without a start
	} {
		if err := protocol.CodecBinary.Codec().Unmarshal(data, new(protocol.Envelope)); err == nil {
			t.Errorf("binary % x decoded without error", data)
		}
	}
}
