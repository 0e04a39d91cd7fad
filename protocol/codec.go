package protocol

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Subprotocol names, one per codec. A client offers one in
// Sec-WebSocket-Protocol; the server answers with the one it picked.
const (
	SubprotocolJSON   = "tandem.v1.json"
	SubprotocolBinary = "tandem.v1.proto"
)

// Codec turns envelopes into frame payloads and back. Implementations are
// safe for concurrent use.
type Codec interface {
	// Name is the WebSocket subprotocol that selects this codec.
	Name() string
	// Binary reports whether frames are binary (true) or text (false).
	Binary() bool
	// Marshal appends the encoding of env to b.
	Marshal(b []byte, env *Envelope) ([]byte, error)
	// Unmarshal decodes data into env, which it resets first. Unknown
	// fields are ignored.
	Unmarshal(data []byte, env *Envelope) error
}

// CodecID is a small index of a codec, used to keep one encoding per codec.
type CodecID uint8

// The codec ids: CodecJSON and CodecBinary index Codecs.
const (
	CodecJSON CodecID = iota
	CodecBinary
	NumCodecs
)

// Codec returns the codec with this id.
func (id CodecID) Codec() Codec {
	if id == CodecBinary {
		return binaryCodec{}
	}
	return jsonCodec{}
}

// CodecBySubprotocol returns the id of the codec a subprotocol names.
func CodecBySubprotocol(name string) (CodecID, bool) {
	switch name {
	case SubprotocolJSON:
		return CodecJSON, true
	case SubprotocolBinary:
		return CodecBinary, true
	}
	return 0, false
}

type binaryCodec struct{}

var (
	binaryMarshal   = proto.MarshalOptions{}
	binaryUnmarshal = proto.UnmarshalOptions{DiscardUnknown: true}
)

func (binaryCodec) Name() string { return SubprotocolBinary }
func (binaryCodec) Binary() bool { return true }

func (binaryCodec) Marshal(b []byte, env *Envelope) ([]byte, error) {
	return binaryMarshal.MarshalAppend(b, env)
}

func (binaryCodec) Unmarshal(data []byte, env *Envelope) error {
	env.Reset()
	if err := binaryUnmarshal.Unmarshal(data, env); err != nil {
		return fmt.Errorf("protocol: bad binary frame: %w", err)
	}
	return nil
}

type jsonCodec struct{}

var (
	jsonMarshal   = protojson.MarshalOptions{UseProtoNames: true}
	jsonUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

func (jsonCodec) Name() string { return SubprotocolJSON }
func (jsonCodec) Binary() bool { return false }

func (jsonCodec) Marshal(b []byte, env *Envelope) ([]byte, error) {
	return jsonMarshal.MarshalAppend(b, env)
}

func (jsonCodec) Unmarshal(data []byte, env *Envelope) error {
	env.Reset()
	if err := jsonUnmarshal.Unmarshal(data, env); err != nil {
		return fmt.Errorf("protocol: bad JSON frame: %w", err)
	}
	return nil
}
