package loadtest

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/gobwas/ws"
	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem/protocol"
	"google.golang.org/protobuf/testing/protocmp"
)

// serverFrame is a frame as the server writes it: final, unmasked.
func serverFrame(op ws.OpCode, payload []byte) []byte {
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, ws.NewFrame(op, true, payload)); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func TestFrameReaderReadsEveryLengthForm(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 2047, 2048, 4000, 65535, 65536, 200_000}
	var stream []byte
	for i, n := range sizes {
		stream = append(stream, serverFrame(ws.OpBinary, bytes.Repeat([]byte{byte(i)}, n))...)
	}
	stream = append(stream, serverFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(protocol.CloseSlowConsumer), "slow"))...)

	for name, r := range map[string]io.Reader{
		"whole":       bytes.NewReader(stream),
		"one byte":    iotest.OneByteReader(bytes.NewReader(stream)),
		"half":        iotest.HalfReader(bytes.NewReader(stream)),
		"data at EOF": iotest.DataErrReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			fr := newFrameReader(r, 64) // small, so that it has to grow and compact
			for i, n := range sizes {
				op, p, err := fr.next()
				if err != nil {
					t.Fatalf("frame %d (%d bytes): %v", i, n, err)
				}
				if op != ws.OpBinary || len(p) != n || (n > 0 && (p[0] != byte(i) || p[n-1] != byte(i))) {
					t.Fatalf("frame %d: op %v, %d bytes, want binary of %d bytes of %d", i, op, len(p), n, i)
				}
			}
			op, p, err := fr.next()
			if err != nil || op != ws.OpClose {
				t.Fatalf("close frame: op %v, err %v", op, err)
			}
			if ce := closeFrameInfo(p); ce.code != protocol.CloseSlowConsumer || ce.reason != "slow" {
				t.Errorf("close frame read as %+v", ce)
			}
			if _, _, err := fr.next(); !errors.Is(err, io.EOF) {
				t.Errorf("after the last frame: %v, want EOF", err)
			}
		})
	}
}

func TestFrameReaderRefusesWhatTheServerNeverSends(t *testing.T) {
	masked := ws.MaskFrame(ws.NewBinaryFrame([]byte("hi")))
	var mb bytes.Buffer
	_ = ws.WriteFrame(&mb, masked)

	var fragment bytes.Buffer
	_ = ws.WriteFrame(&fragment, ws.NewFrame(ws.OpBinary, false, []byte("part")))

	huge := []byte{0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0} // 256 MiB

	truncated := serverFrame(ws.OpBinary, make([]byte, 300))[:100]

	for name, stream := range map[string][]byte{
		"masked":     mb.Bytes(),
		"fragmented": fragment.Bytes(),
		"too large":  huge,
		"truncated":  truncated,
	} {
		fr := newFrameReader(bytes.NewReader(stream), 64)
		if _, _, err := fr.next(); err == nil {
			t.Errorf("%s frame: no error", name)
		}
	}
}

func TestClientFramesAreValidMaskedFrames(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	for _, n := range []int{0, 5, 125, 126, 65535, 65536, 70_000} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		inPlace := append(make([]byte, maxClientHeader), payload...)
		for name, frame := range map[string][]byte{
			"append":   appendClientFrame(nil, ws.OpBinary, mask, payload),
			"in place": maskInPlace(inPlace, ws.OpBinary, mask),
		} {
			r := bytes.NewReader(frame)
			h, err := ws.ReadHeader(r)
			if err != nil {
				t.Fatalf("%s, %d bytes: %v", name, n, err)
			}
			f := ws.Frame{Header: h, Payload: make([]byte, h.Length)}
			if _, err := io.ReadFull(r, f.Payload); err != nil {
				t.Fatalf("%s, %d bytes: %v", name, n, err)
			}
			if !f.Header.Masked || !f.Header.Fin || f.Header.OpCode != ws.OpBinary {
				t.Errorf("%s, %d bytes: header %+v", name, n, f.Header)
			}
			ws.Cipher(f.Payload, f.Header.Mask, 0)
			if !bytes.Equal(f.Payload, payload) {
				t.Errorf("%s, %d bytes: payload differs after unmasking", name, n)
			}
		}
	}
}

func TestPeekFindsTheHeaderAndBodyWithoutDecoding(t *testing.T) {
	msg := &protocol.Envelope{Cid: 0, Seq: 42, Room: "r1", Ack: 3, Body: &protocol.Envelope_RoomMessage{RoomMessage: &protocol.RoomMessage{
		RoomId: "r1", Topic: "t", Data: []byte("payload"), From: "alice",
	}}}
	ping := &protocol.Envelope{Body: &protocol.Envelope_Ping{Ping: &protocol.Ping{TimeUs: 1234567, RttUs: 9}}}
	joined := &protocol.Envelope{Cid: 77, Seq: 1, Body: &protocol.Envelope_Joined{Joined: &protocol.Joined{RoomId: "r1", Epoch: 1, Seq: 5}}}
	for _, codec := range []protocol.CodecID{protocol.CodecBinary, protocol.CodecJSON} {
		t.Run(codec.Codec().Name(), func(t *testing.T) {
			var v view
			var scratch protocol.Envelope
			enc := func(env *protocol.Envelope) []byte {
				b, err := codec.Codec().Marshal(nil, env)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}

			if err := peek(codec, enc(msg), &v, &scratch); err != nil {
				t.Fatal(err)
			}
			if v.kind != kindRoomMessage || v.seq != 42 || v.ack != 3 || string(v.room) != "r1" {
				t.Errorf("room message peeked as kind %d seq %d ack %d room %q", v.kind, v.seq, v.ack, v.room)
			}
			if data, from := v.messageData(); string(data) != "payload" || string(from) != "alice" {
				t.Errorf("messageData = %q from %q", data, from)
			}

			if err := peek(codec, enc(ping), &v, &scratch); err != nil {
				t.Fatal(err)
			}
			if v.kind != kindPing || v.timeUs() != 1234567 {
				t.Errorf("ping peeked as kind %d time %d", v.kind, v.timeUs())
			}

			if err := peek(codec, enc(joined), &v, &scratch); err != nil {
				t.Fatal(err)
			}
			if v.kind != kindJoined || v.cid != 77 || v.seq != 1 || len(v.room) != 0 {
				t.Errorf("joined peeked as kind %d cid %d seq %d room %q", v.kind, v.cid, v.seq, v.room)
			}
			got, err := v.decode(codec)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(joined, got, protocmp.Transform()); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPeekRefusesGarbage(t *testing.T) {
	var v view
	var scratch protocol.Envelope
	if err := peek(protocol.CodecBinary, []byte{0xff, 0xff, 0xff}, &v, &scratch); err == nil {
		t.Error("binary garbage: no error")
	}
	if err := peek(protocol.CodecJSON, []byte(`{"cid":`), &v, &scratch); err == nil {
		t.Error("JSON garbage: no error")
	}
}
