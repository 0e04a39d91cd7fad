package faultproxy

import (
	"fmt"
	"time"
)

// Direction names one half of a proxied connection.
type Direction int

const (
	// Upstream carries the bytes the client sends to the server.
	Upstream Direction = iota
	// Downstream carries the bytes the server sends to the client.
	Downstream
)

// Aliases for readers who think in terms of who sends.
const (
	ClientToServer = Upstream
	ServerToClient = Downstream
)

func (d Direction) String() string {
	switch d {
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	default:
		return fmt.Sprintf("Direction(%d)", int(d))
	}
}

// DirectionFaults are the faults applied to one direction of a connection.
// The zero value forwards bytes untouched.
type DirectionFaults struct {
	// Silenced holds the bytes back: the proxy stops reading from the sender,
	// so TCP backpressure builds, while the connection stays open.
	Silenced bool
	// Latency delays every chunk by this long, keeping order.
	Latency time.Duration
	// BytesPerSecond limits bandwidth; 0 means unlimited.
	BytesPerSecond int
	// ResetAfter, when positive, resets the connection once exactly this many
	// bytes have been forwarded in this direction; 0 means never.
	ResetAfter int64
}

// Faults are the faults applied to both directions of a connection.
type Faults struct {
	Upstream   DirectionFaults
	Downstream DirectionFaults
}
