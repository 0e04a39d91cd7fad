// Package client is the Go client SDK for Tandem's realtime protocol
// (docs/protocol.md). It owns one player's connection to a realtime node:
// the WebSocket and its codec, the connect/connected handshake, heartbeats
// and RTT, the client sequence numbers and resend buffer of reliable frames,
// the positions of the session stream and of every room stream (acked with
// ack_frame, deduplicated on receipt), and the reconnect loop that resumes a
// held session, starts a new one when the session is gone, or stops on a
// final close.
//
// Everything the application sees arrives on one ordered channel,
// [Client.Events], in stream order and exactly once. Requests (Join, RPC,
// ListRooms, Room.Leave) wait for their reply by correlation id and survive
// a resume. The application must keep reading Events: when it does not, the
// SDK stops reading the connection (TCP backpressure), so replies to
// requests wait too, and the server may eventually disconnect the session as
// a slow consumer.
//
// The package imports only the protocol package of Tandem; it keeps its own
// copy of the error-code names it needs.
package client
