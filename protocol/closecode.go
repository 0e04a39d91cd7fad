package protocol

// CloseCode is a WebSocket close status sent by the server. Its range says
// what the client does next; see Class.
type CloseCode uint16

// CloseClass is what a client does after a close.
type CloseClass uint8

const (
	// ClassResume: the session is held; reconnect and resume with the
	// resume token (codes 4000–4299, and any close without a code).
	ClassResume CloseClass = iota + 1
	// ClassRejoin: the session is gone; log in again and rejoin rooms
	// (codes 4300–4499).
	ClassRejoin
	// ClassFinal: do not reconnect (codes 4500–4999).
	ClassFinal
)

func (c CloseClass) String() string {
	switch c {
	case ClassResume:
		return "resume"
	case ClassRejoin:
		return "rejoin"
	case ClassFinal:
		return "final"
	}
	return "unknown"
}

// The close codes. docs/protocol.md lists them; a test keeps it in step.
const (
	// Resume class.
	CloseAbnormal         CloseCode = 4000 // connection lost (client-side name for a close without a code)
	CloseHeartbeatTimeout CloseCode = 4001 // the peer missed its heartbeats
	CloseSlowConsumer     CloseCode = 4002 // the client did not read fast enough; its send queue overflowed
	CloseServerRestart    CloseCode = 4003 // the node restarts and hands the session over
	CloseReplaced         CloseCode = 4004 // the same session resumed on another connection

	// Rejoin class.
	CloseSessionExpired CloseCode = 4300 // the resume token names no held session (seat hold over, or unknown)
	CloseNodeDraining   CloseCode = 4301 // the node drained; connect to another node
	CloseNodeGone       CloseCode = 4302 // the node named in the resume token is gone

	// Final class.
	CloseBadToken          CloseCode = 4500 // the token is forged, expired or for another audience
	CloseBanned            CloseCode = 4501 // the player is banned
	CloseKicked            CloseCode = 4502 // an operator ended the session
	CloseProtocolViolation CloseCode = 4503 // a malformed frame or a frame out of order
	CloseDuplicateSession  CloseCode = 4504 // the player connected again elsewhere
	CloseMoved             CloseCode = 4505 // the session moved to another node (silent for the SDK)
	CloseConnectTimeout    CloseCode = 4506 // no valid connect frame within the connect timeout
	CloseTooLarge          CloseCode = 4507 // a frame larger than the maximum frame size
	ClosePolicyViolation   CloseCode = 4508 // limits broken repeatedly (flooding)
)

var closeNames = map[CloseCode]string{
	CloseAbnormal:          "abnormal",
	CloseHeartbeatTimeout:  "heartbeat_timeout",
	CloseSlowConsumer:      "slow_consumer",
	CloseServerRestart:     "server_restart",
	CloseReplaced:          "replaced",
	CloseSessionExpired:    "session_expired",
	CloseNodeDraining:      "node_draining",
	CloseNodeGone:          "node_gone",
	CloseBadToken:          "bad_token",
	CloseBanned:            "banned",
	CloseKicked:            "kicked",
	CloseProtocolViolation: "protocol_violation",
	CloseDuplicateSession:  "duplicate_session",
	CloseMoved:             "moved",
	CloseConnectTimeout:    "connect_timeout",
	CloseTooLarge:          "too_large",
	ClosePolicyViolation:   "policy_violation",
}

// CloseCodes returns every close code the server sends, in numeric order.
func CloseCodes() []CloseCode {
	return []CloseCode{
		CloseAbnormal, CloseHeartbeatTimeout, CloseSlowConsumer, CloseServerRestart, CloseReplaced,
		CloseSessionExpired, CloseNodeDraining, CloseNodeGone,
		CloseBadToken, CloseBanned, CloseKicked, CloseProtocolViolation, CloseDuplicateSession,
		CloseMoved, CloseConnectTimeout, CloseTooLarge, ClosePolicyViolation,
	}
}

// CloseCodeNamed returns the close code with this name (String's inverse).
func CloseCodeNamed(name string) (CloseCode, bool) {
	for c, n := range closeNames {
		if n == name {
			return c, true
		}
	}
	return 0, false
}

func (c CloseCode) String() string {
	if n, ok := closeNames[c]; ok {
		return n
	}
	return "unknown"
}

// Class returns what a client does after this close. Codes outside
// 4000–4999 (a reset, 1006, a server restart with 1001) are resume class:
// the client tries to resume and learns the rest from the server's answer.
func (c CloseCode) Class() CloseClass {
	switch {
	case c >= 4500 && c <= 4999:
		return ClassFinal
	case c >= 4300 && c <= 4499:
		return ClassRejoin
	default:
		return ClassResume
	}
}
