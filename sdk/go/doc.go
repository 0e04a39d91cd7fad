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
//	c, err := client.Dial(ctx, client.Config{URL: auth.RealtimeURL(), Token: auth.RealtimeTokenSource()})
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
