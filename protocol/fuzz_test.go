package protocol_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem/protocol"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// Run a fuzzer with, for example:
//
//	go test -run XXX -fuzz FuzzDecodeJSON -fuzztime 20s ./protocol/
//
// The seeds below run with every go test, as does the corpus committed under
// testdata/fuzz (written from the same seeds by -update, plus anything a
// fuzzer found).

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range jsonSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { decodeReencode(t, protocol.CodecJSON, data) })
}

func FuzzDecodeBinary(f *testing.F) {
	for _, s := range binarySeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { decodeReencode(t, protocol.CodecBinary, data) })
}

// decodeReencode decodes arbitrary bytes, which must not panic; when they
// decode, the envelope re-encodes and decodes again to an equal envelope.
func decodeReencode(t *testing.T, id protocol.CodecID, data []byte) {
	c := id.Codec()
	var env protocol.Envelope
	if err := c.Unmarshal(data, &env); err != nil {
		return
	}
	b, err := c.Marshal(nil, &env)
	if err != nil {
		t.Fatalf("%s: %q decodes to %v, which does not encode: %v", c.Name(), data, &env, err)
	}
	var again protocol.Envelope
	if err := c.Unmarshal(b, &again); err != nil {
		t.Fatalf("%s: %q decodes to %v, whose encoding %q does not decode: %v", c.Name(), data, &env, b, err)
	}
	if !proto.Equal(&env, &again) {
		t.Fatalf("%s: %q: decode, encode, decode differs (-first +second):\n%s", c.Name(), data,
			cmp.Diff(&env, &again, protocmp.Transform()))
	}
}

type seed struct {
	name string
	data []byte
}

// A token of the right shape with "alg":"none" and no signature: decoding
// must treat it as an opaque string.
const forgedToken = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIiwia2lkIjoiazEifQ.eyJzdWIiOiJhZG1pbiIsInJvbGVzIjpbImFkbWluIl0sImF1ZCI6InRhbmRlbS5yZWFsdGltZSJ9."

func forgedConnect() *protocol.Envelope {
	return &protocol.Envelope{Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{
		Token: forgedToken, ResumeToken: "node-1.../../etc/passwd", Sdk: "\u202eevil",
	}}}
}

// oversized is a room_message just over the default max_frame_bytes (the
// codec has no limit of its own: the gateway enforces it on the frame).
func oversized() *protocol.Envelope {
	data := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), 65537/18+1)[:65537]
	return &protocol.Envelope{Cid: 1, Seq: 1, Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{
		RoomId: exRoom, Topic: "blob", Data: data, Delivery: protocol.Delivery_DELIVERY_ALL,
	}}}
}

func jsonSeeds(t testing.TB) []seed {
	var ss []seed
	add := func(name, data string) { ss = append(ss, seed{name, []byte(data)}) }
	for _, ex := range examples() {
		ss = append(ss, seed{"valid-" + ex.name, marshal(t, protocol.CodecJSON, ex.env)})
	}
	ex, _ := exampleByName("room_message")
	ss = append(ss, seed{"unknown-keys", withUnknownKeys(t, ex)})
	add("lenient-join", lenientJoinJSON)
	// Malformed JSON.
	add("malformed-truncated", `{"connect":`)
	add("malformed-array", `[]`)
	add("malformed-null", `null`)
	add("malformed-duplicate-key", `{"cid":"1","cid":"2"}`)
	add("malformed-two-bodies", `{"connect":{},"join":{}}`)
	add("malformed-trailing", `{}x`)
	add("malformed-utf8", "{\"room\":\"\xff\xfe\"}")
	add("malformed-bad-base64", `{"rpc":{"data":"not base64!"}}`)
	add("malformed-wrong-type", `{"join":{"mode":{"x":1},"room_id":7}}`)
	add("malformed-negative-uint", `{"seq":"-1"}`)
	add("malformed-fraction", `{"seq":1.5}`)
	add("null-body", `{"connect":null,"cid":null}`)
	add("special-doubles", `{"ticket_create":{"numeric_properties":{"a":"NaN","b":"-Infinity","c":-0,"d":1e308}}}`)
	add("unknown-enum-name", `{"leave":{"room_id":"r","reason":"LEAVE_REASON_ABDUCTED"}}`)
	add("unknown-enum-number", `{"leave":{"room_id":"r","reason":2147483647}}`)
	// An unknown message type: an envelope with only a key this version
	// does not know.
	add("unknown-type", `{"future_body":{"a":1}}`)
	add("unknown-type-with-cid", `{"cid":"3","seq":"1","x_new":[1,2,{"y":null}]}`)
	ss = append(ss, seed{"oversized-room-message", marshal(t, protocol.CodecJSON, oversized())})
	ss = append(ss, seed{"forged-token-connect", marshal(t, protocol.CodecJSON, forgedConnect())})
	add("huge-token-connect", `{"connect":{"token":"`+strings.Repeat("A", 9000)+`"}}`)
	// Huge numbers.
	add("huge-uint64-overflow", `{"seq":"18446744073709551616"}`)
	add("huge-exponent", `{"cid":1e400}`)
	add("huge-digits", `{"ack":999999999999999999999999999999999999}`)
	add("max-uint64-number", `{"cid":18446744073709551615,"ping":{"time_us":-9223372036854775808,"rtt_us":4294967295}}`)
	add("hex-number", `{"seq":"0x10"}`)
	// Deep nesting, in an unknown key and in a known field.
	add("deep-unknown-arrays", `{"x":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`}`)
	add("deep-unknown-objects", strings.Repeat(`{"x":`, 3000)+"1"+strings.Repeat("}", 3000))
	add("deep-known-field", `{"connect":{"positions":`+strings.Repeat("[", 2000)+strings.Repeat("]", 2000)+`}}`)
	add("deep-unclosed", strings.Repeat("[", 20000))
	return ss
}

func binarySeeds(t testing.TB) []seed {
	var ss []seed
	add := func(name string, data []byte) { ss = append(ss, seed{name, data}) }
	for _, ex := range examples() {
		add("valid-"+ex.name, deterministic(t, ex.env))
	}
	ex, _ := exampleByName("room_message")
	add("unknown-fields", withNestedUnknown(t, ex))
	valid := deterministic(t, ex)
	// Malformed protobuf.
	add("malformed-garbage", []byte{0xff, 0xff, 0xff})
	add("malformed-truncated", valid[:len(valid)-3])
	add("malformed-wire-type", []byte{0x0a, 0x05, 'a'})
	add("malformed-utf8", []byte{0x1a, 0x02, 0xff, 0xfe})
	add("malformed-length-past-end", []byte{0x7a, 0x7f, 0x0a})
	add("malformed-field-zero", []byte{0x00, 0x01})
	add("malformed-end-group", []byte{0x0c})
	add("two-bodies", append(deterministic(t, &protocol.Envelope{Body: &protocol.Envelope_Ping{Ping: &protocol.Ping{TimeUs: 5}}}), valid...))
	add("repeated-body", append(slices.Concat(valid, valid), 0x52, 0x00))
	// An unknown message type: only fields this version does not know.
	add("unknown-type", unknownFields())
	add("unknown-body-number", protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), []byte{0x0a, 0x01, 'x'}))
	add("oversized-room-message", deterministic(t, oversized()))
	add("forged-token-connect", deterministic(t, forgedConnect()))
	// Huge varints.
	add("varint-max-uint64", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	add("varint-11-bytes", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	add("varint-10th-byte-overflow", []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	add("length-huge", []byte{0x72, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x0a})
	add("tag-huge", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00})
	add("uint32-overflow", protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 1<<40))
	// Deep nesting: unknown groups (parsed, to find their end) and unknown
	// length-delimited fields (skipped whole).
	var groups []byte
	for range 3000 {
		groups = protowire.AppendTag(groups, 1000, protowire.StartGroupType)
	}
	add("deep-groups-unclosed", groups)
	closed := bytes.Clone(groups)
	for range 3000 {
		closed = protowire.AppendTag(closed, 1000, protowire.EndGroupType)
	}
	add("deep-groups", closed)
	nested := []byte("x")
	for range 2000 {
		nested = protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), nested)
	}
	add("deep-length-delimited", nested)
	return ss
}

// maxCorpusFile keeps the committed corpus small; larger seeds live in the
// code only.
const maxCorpusFile = 16 << 10

// TestFuzzSeedCorpus rewrites the committed seed corpus from the seeds with
// -update, and checks it is there. (go test runs every corpus file through
// its fuzz target as a seed.)
func TestFuzzSeedCorpus(t *testing.T) {
	for fuzzer, seeds := range map[string][]seed{"FuzzDecodeJSON": jsonSeeds(t), "FuzzDecodeBinary": binarySeeds(t)} {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, s := range seeds {
				if len(s.data) > maxCorpusFile {
					continue
				}
				content := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s.data)))
				if err := os.WriteFile(filepath.Join(dir, "seed-"+s.name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) < 8 {
			t.Errorf("%s holds %d files, want at least 8 (go test ./protocol -run TestFuzzSeedCorpus -update)", dir, len(files))
		}
	}
}
