package loadtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gobwas/ws"
	"github.com/tandemhq/tandem/protocol"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file is the load client's wire layer, kept minimal so the client
// spends its core on the measurement rather than on itself: a frame reader
// that parses WebSocket headers out of one reused buffer and hands back the
// payload in place (a frame nobody needs is skipped by reading the next);
// a writer that masks into one reused buffer; and a look at the envelope
// that walks the protobuf fields without decoding them, so only replies the
// client waits for are decoded in full.

// maxFrame bounds the frames the client accepts (the server's default
// max_frame_bytes is 64 KiB; its own frames are smaller than that).
const maxFrame = 1 << 20

// errFragmented: the server sends every message as one final frame.
var errFragmented = errors.New("loadtest: fragmented frame (the server sends whole frames)")

// closedError is the server's close frame.
type closedError struct {
	code   protocol.CloseCode
	reason string
}

func (e closedError) Error() string {
	if e.reason != "" {
		return fmt.Sprintf("server closed the connection with %d (%s): %s", e.code, e.code, e.reason)
	}
	return fmt.Sprintf("server closed the connection with %d (%s)", e.code, e.code)
}

// frameReader reads server frames (unmasked, final) from r through one
// buffer that grows only for a frame larger than it.
type frameReader struct {
	r          io.Reader
	buf        []byte
	start, end int // unread bytes are buf[start:end]
}

func newFrameReader(r io.Reader, size int) *frameReader {
	return &frameReader{r: r, buf: make([]byte, size)}
}

// next returns the next frame's opcode and payload. The payload points into
// the reader's buffer and is valid until the next call.
func (fr *frameReader) next() (ws.OpCode, []byte, error) {
	hl, n, err := fr.header()
	if err != nil {
		return 0, nil, err
	}
	if err := fr.fill(hl + n); err != nil {
		return 0, nil, err
	}
	b := fr.buf[fr.start : fr.start+hl+n]
	fr.start += hl + n
	if b[0]&0x80 == 0 {
		return 0, nil, errFragmented
	}
	return ws.OpCode(b[0] & 0x0f), b[hl:], nil
}

// header makes sure the next frame's header is buffered and returns its
// length and the payload length.
func (fr *frameReader) header() (hl, n int, err error) {
	if err := fr.fill(2); err != nil {
		return 0, 0, err
	}
	b1 := fr.buf[fr.start+1]
	if b1&0x80 != 0 {
		return 0, 0, errors.New("loadtest: the server sent a masked frame")
	}
	switch l := int(b1 & 0x7f); l {
	case 126:
		hl = 4
	case 127:
		hl = 10
	default:
		return 2, l, nil
	}
	if err := fr.fill(hl); err != nil {
		return 0, 0, err
	}
	ext := fr.buf[fr.start+2 : fr.start+hl]
	var size uint64
	if hl == 4 {
		size = uint64(binary.BigEndian.Uint16(ext))
	} else {
		size = binary.BigEndian.Uint64(ext)
	}
	if size > maxFrame {
		return 0, 0, fmt.Errorf("loadtest: a %d-byte frame is larger than the client's limit of %d", size, maxFrame)
	}
	return hl, int(size), nil
}

// fill makes sure n unread bytes are buffered.
func (fr *frameReader) fill(n int) error {
	if fr.end-fr.start >= n {
		return nil
	}
	if fr.start+n > len(fr.buf) {
		if n > len(fr.buf) {
			grown := make([]byte, max(n, 2*len(fr.buf)))
			fr.end = copy(grown, fr.buf[fr.start:fr.end])
			fr.buf = grown
		} else {
			fr.end = copy(fr.buf, fr.buf[fr.start:fr.end])
		}
		fr.start = 0
	}
	for fr.end-fr.start < n {
		m, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += m
		if err != nil {
			if fr.end-fr.start >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && fr.end > fr.start {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// maxClientHeader is the largest header of a masked client frame.
const maxClientHeader = 14

// appendClientFrame appends one final, masked frame carrying payload to b.
func appendClientFrame(b []byte, op ws.OpCode, mask [4]byte, payload []byte) []byte {
	b = append(b, 0x80|byte(op))
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	ws.Cipher(b[start:], mask, 0)
	return b
}

// maskInPlace frames a payload already written at buf[maxClientHeader:]:
// it writes the header just before it, masks the payload and returns the
// whole frame (a suffix of buf). It saves the copy appendClientFrame makes.
func maskInPlace(buf []byte, op ws.OpCode, mask [4]byte) []byte {
	payload := buf[maxClientHeader:]
	n := len(payload)
	var hdr [maxClientHeader]byte
	hdr[0] = 0x80 | byte(op)
	hl := 2
	switch {
	case n < 126:
		hdr[1] = 0x80 | byte(n)
	case n <= 0xffff:
		hdr[1] = 0x80 | 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		hl = 4
	default:
		hdr[1] = 0x80 | 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		hl = 10
	}
	copy(hdr[hl:], mask[:])
	hl += 4
	start := maxClientHeader - hl
	copy(buf[start:], hdr[:hl])
	ws.Cipher(payload, mask, 0)
	return buf[start:]
}

// Envelope body field numbers (protocol/tandem.proto).
const (
	kindConnected   protowire.Number = 11
	kindJoined      protowire.Number = 13
	kindLeave       protowire.Number = 14
	kindRoomMessage protowire.Number = 15
	kindPing        protowire.Number = 20
	kindPong        protowire.Number = 21
	kindAck         protowire.Number = 22
	kindError       protowire.Number = 23
	kindGap         protowire.Number = 25
	kindRoomEvent   protowire.Number = 26
	kindTicket      protowire.Number = 32 // ticket_status
)

// view is what the client needs from every frame: the envelope's header
// fields and which body it carries, found without decoding the body.
type view struct {
	kind          protowire.Number // body field number; 0: none
	cid, seq, ack uint64
	room          []byte // room stream id; empty: the session stream
	body          []byte // the body message (binary codec)
	payload       []byte // the whole frame payload
	env           *protocol.Envelope
	binary        bool
}

// peek fills v from a frame payload. The binary codec is walked field by
// field; a JSON frame is decoded in full into env (JSON is the slow codec
// anyway), which v then refers to.
func peek(codec protocol.CodecID, payload []byte, v *view, env *protocol.Envelope) error {
	*v = view{payload: payload, binary: codec == protocol.CodecBinary}
	if !v.binary {
		if err := codec.Codec().Unmarshal(payload, env); err != nil {
			return err
		}
		v.env, v.cid, v.seq, v.ack, v.room = env, env.Cid, env.Seq, env.Ack, []byte(env.Room)
		if env.Body != nil {
			v.kind = env.ProtoReflect().WhichOneof(env.ProtoReflect().Descriptor().Oneofs().ByName("body")).Number()
		}
		return nil
	}
	b := payload
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && (num == 1 || num == 2 || num == 4):
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			switch num {
			case 1:
				v.cid = x
			case 2:
				v.seq = x
			case 4:
				v.ack = x
			}
		case typ == protowire.BytesType && (num == 3 || num >= 10):
			x, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			if num == 3 {
				v.room = x
			} else {
				v.kind, v.body = num, x
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// decode decodes the whole envelope (for the replies the client waits for).
func (v *view) decode(codec protocol.CodecID) (*protocol.Envelope, error) {
	if v.env != nil {
		return v.env, nil
	}
	env := new(protocol.Envelope)
	if err := codec.Codec().Unmarshal(v.payload, env); err != nil {
		return nil, err
	}
	return env, nil
}

// messageData returns the data and sender of a room_message.
func (v *view) messageData() (data, from []byte) {
	if v.env != nil {
		m := v.env.GetRoomMessage()
		return m.GetData(), []byte(m.GetFrom())
	}
	walkFields(v.body, func(num protowire.Number, b []byte) {
		switch num {
		case 3:
			data = b
		case 6:
			from = b
		}
	})
	return data, from
}

// timeUs returns the time_us of a ping or pong.
func (v *view) timeUs() int64 {
	if v.env != nil {
		if p := v.env.GetPing(); p != nil {
			return p.GetTimeUs()
		}
		return v.env.GetPong().GetTimeUs()
	}
	return int64(field1Varint(v.body))
}

// field1Varint returns field 1 of a message when it is a varint (a ping's
// or pong's time, an error's code), or 0.
func field1Varint(b []byte) uint64 {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			x, _ := protowire.ConsumeVarint(b)
			return x
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0
		}
		b = b[n:]
	}
	return 0
}

// walkFields calls fn for every length-delimited field of a message.
func walkFields(b []byte, fn func(num protowire.Number, v []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return
			}
			fn(num, v)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return
		}
		b = b[n:]
	}
}

// closeFrameInfo parses a close frame's payload.
func closeFrameInfo(payload []byte) closedError {
	code, reason := ws.ParseCloseFrameData(payload)
	return closedError{code: protocol.CloseCode(code), reason: reason}
}
