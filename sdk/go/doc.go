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
// # A cluster of nodes
//
// A Join for a room that lives on another node is answered with a seat
// reservation; Join follows it by itself: it connects to the node the
// reservation names with the seat token (a new session there, with a fresh
// realtime token), joins the room and returns it. The client then uses that
// connection and that node's URL; the old node ends the old session: its
// rooms end with a Left event with LEAVE_REASON_MOVED, and the old
// connection closes with the silent `moved` (no Disconnected, no Closed, no
// resume). If the new node refuses the seat, Join returns the error and the
// old connection goes on untouched. One Join moves the session at a time: a
// Join answered with a reservation while another Join moves the session, or
// after it did, asks again on the session current once that move is over.
// A `moved` close that no Join of the client caused is treated like
// node_gone: the session is lost, and a new one starts where Config.Locate
// says.
//
// When a node dies the client cannot reach it again. Before the next
// reconnect attempt after one whose dial failed (no answer, or a refused
// upgrade, as from a draining node), or after a node_draining or node_gone
// close, the client asks Config.Locate for the realtime URL to use now, and
// tries there; it asks at most once per second (or per backoff delay, when
// longer) during one disconnection, and keeps the URL it has when Locate
// fails. While the session lives on a node, Locate must name that node: the
// client resumes wherever Locate says, so another node's URL means the
// session's node is gone. That node does not hold the session (node_gone),
// so the client starts a new session there and emits SessionLost; the
// application joins its rooms again. Give [Auth.RealtimeURLSource] as
// Config.Locate: it asks the web server, whose answer names the node
// holding the session while that node is registered (otherwise a live,
// lightly loaded node), and the realtime token of the same answer serves
// the next connect.
//
// # Matchmaking
//
// [Client.Matchmake] puts the player in a queue and follows the ticket to
// its room: it reports every status to TicketRequest.Progress (searching,
// claimed, matched…), and on a match takes the seat by itself — on the
// session's own node it joins the room with the seat token; on another node
// it moves the session there exactly as Join follows a seat reservation,
// then joins — and returns the room. A seat that cannot be taken for a
// transient reason is tried again until it expires; a seat that is gone
// leaves the ticket to the server (back in the queue, or ended). The ticket
// outlives a session that moves or is lost: Matchmake follows it to the
// new session. An ended ticket returns a [*TicketEndedError]; ending the
// context cancels the ticket.
// [Client.CreateTicket], [Client.CancelTicket] and [Client.Ticket] are the
// single requests; every status the server pushes is also a [TicketUpdate]
// event.
//
// # Logging in
//
// A player logs in at the web server's player API (/api/v1) with
// [LoginGuest] (a device id and a [NewDeviceSecret] the device keeps),
// [Register] or [LoginEmail]. The [Auth] they return keeps the tokens
// fresh a margin before they expire: it renews the realtime token through
// the realtime-token route while the access token is fresh, and refreshes
// (the refresh token is single-use and rotated each time) only when the
// access token itself is stale; concurrent callers share one request.
// Give [Auth.RealtimeTokenSource] to the Client as Config.Token, so every
// connect and reconnect gets a fresh realtime token:
//
//	auth, err := client.LoginGuest(ctx, client.AuthConfig{BaseURL: "http://127.0.0.1:7700"}, deviceID, secret)
//	...
//	c, err := client.Dial(ctx, client.Config{
//		URL:    auth.RealtimeURL(),
//		Token:  auth.RealtimeTokenSource(),
//		Locate: auth.RealtimeURLSource(),
//	})
//
// When the server refuses a refresh for good (the session was revoked, or
// the player is banned), token calls fail with an error wrapping
// [ErrLoggedOut] and the [*ServerError] saying why (for banned, Until says
// until when), and the Client stops with it in its Closed event. Errors of
// the HTTP API are *ServerError (problem+json: code, message, RetryAfter,
// Fields, Until) or, for an answer that is not problem+json, [*HTTPError].
// Neither tokens nor secrets are ever logged or put in an error.
//
// The package imports only the protocol package of Tandem; it keeps its own
// copy of the error-code names it needs.
package client
