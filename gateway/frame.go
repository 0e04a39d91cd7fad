package gateway

import (
	"encoding/binary"

	"github.com/gobwas/ws"
	"github.com/tandemhq/tandem/protocol"
	"google.golang.org/protobuf/proto"
)

// maxHeaderSize is the largest header of an unmasked server frame.
const maxHeaderSize = 10

// EncodeFrame encodes env with a codec into one complete, unmasked WebSocket
// frame: the bytes that go on the wire as they are, to every connection of
// that codec. It is the room.Encoder of a realtime node.
func EncodeFrame(codec protocol.CodecID, env *protocol.Envelope) ([]byte, error) {
	c := codec.Codec()
	size := 64
	if c.Binary() {
		size = proto.Size(env)
	}
	buf := make([]byte, maxHeaderSize, maxHeaderSize+size)
	buf, err := c.Marshal(buf, env)
	if err != nil {
		return nil, err
	}
	op := ws.OpText
	if c.Binary() {
		op = ws.OpBinary
	}
	return putHeader(buf, op, len(buf)-maxHeaderSize), nil
}

// putHeader writes a final frame's header just before the payload that
// starts at buf[maxHeaderSize:] and returns the frame.
func putHeader(buf []byte, op ws.OpCode, n int) []byte {
	var hdr [maxHeaderSize]byte
	hdr[0] = 0x80 | byte(op)
	hl := 2
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		hl = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		hl = 10
	}
	start := maxHeaderSize - hl
	copy(buf[start:], hdr[:hl])
	return buf[start:]
}

// controlFrame returns a complete close, ping or pong frame.
func controlFrame(op ws.OpCode, payload []byte) []byte {
	buf := make([]byte, maxHeaderSize, maxHeaderSize+len(payload))
	buf = append(buf, payload...)
	return putHeader(buf, op, len(payload))
}

func closeFrame(code protocol.CloseCode, reason string) []byte {
	return controlFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(code), reason))
}
