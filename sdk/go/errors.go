package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/protocol"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrClosed: the client was closed with Close; requests and sends fail
	// with it.
	ErrClosed = errors.New("tandem: client closed")
	// ErrSessionLost: the session ended (rejoin class) and the SDK started a
	// new one; requests pending at that moment fail with an error wrapping
	// it, and so do later sends to the rooms of the old session.
	ErrSessionLost = errors.New("tandem: session lost")
	// ErrRoomLeft: the room was left (leave frame in its stream); sends to
	// it fail.
	ErrRoomLeft = errors.New("tandem: room left")
	// ErrFrameTooLarge: the encoded frame is larger than the server's
	// max_frame_bytes; it was not sent (the server would close the
	// connection with too_large, a final close).
	ErrFrameTooLarge = errors.New("tandem: frame larger than max_frame_bytes")
	// ErrHeartbeatTimeout: nothing was read for HeartbeatTimeout; the
	// connection was treated as lost (Disconnected carries it).
	ErrHeartbeatTimeout = errors.New("tandem: no frame within the heartbeat timeout")
)

// Error codes of error frames (docs/protocol.md, "Error codes"); the same
// numbers are used by the HTTP API.
const (
	CodeInternal         uint32 = 1
	CodeInvalid          uint32 = 2
	CodeUnauthenticated  uint32 = 3
	CodePermissionDenied uint32 = 4
	CodeNotFound         uint32 = 5
	CodeConflict         uint32 = 6
	CodeRateLimited      uint32 = 7
	CodeUnavailable      uint32 = 8
	CodeTooLarge         uint32 = 9
	CodeUnknownMessage   uint32 = 10
	CodeNotInRoom        uint32 = 11
	CodeRoomFull         uint32 = 12
	CodeJoinRejected     uint32 = 13
	CodeQuotaExceeded    uint32 = 14
	CodeTokenExpired     uint32 = 15
	CodeUnknownRPC       uint32 = 16
	CodeTimeout          uint32 = 17
	// The web API's codes; the realtime server does not send them.
	CodeValidationFailed uint32 = 18
	CodeMFARequired      uint32 = 19
	CodeReauthRequired   uint32 = 20
	CodeBanned           uint32 = 21 // ServerError.Until says until when
)

var codeNames = [...]string{
	CodeInternal:         "internal",
	CodeInvalid:          "invalid",
	CodeUnauthenticated:  "unauthenticated",
	CodePermissionDenied: "permission_denied",
	CodeNotFound:         "not_found",
	CodeConflict:         "conflict",
	CodeRateLimited:      "rate_limited",
	CodeUnavailable:      "unavailable",
	CodeTooLarge:         "too_large",
	CodeUnknownMessage:   "unknown_message",
	CodeNotInRoom:        "not_in_room",
	CodeRoomFull:         "room_full",
	CodeJoinRejected:     "join_rejected",
	CodeQuotaExceeded:    "quota_exceeded",
	CodeTokenExpired:     "token_expired",
	CodeUnknownRPC:       "unknown_rpc",
	CodeTimeout:          "timeout",
	CodeValidationFailed: "validation_failed",
	CodeMFARequired:      "mfa_required",
	CodeReauthRequired:   "reauth_required",
	CodeBanned:           "banned",
}

// codeName returns the name of an error code, "unknown" for a code this SDK
// does not know (a newer server).
func codeName(code uint32) string {
	if int(code) < len(codeNames) && codeNames[code] != "" {
		return codeNames[code]
	}
	return "unknown"
}

// ServerError is an error frame from the server (the answer to a request
// by cid, or a session-level error), or a problem+json answer of the web
// server's HTTP API.
type ServerError struct {
	Code      uint32 // see the Code* constants
	Name      string // the code's name, such as "room_full"
	Message   string // safe to show; for join_rejected the room's reason
	Temporary bool   // retrying later may succeed

	// Fields names each invalid field of a validation_failed answer (from
	// the HTTP API and from error frames).
	Fields []FieldError
	// RetryAfter, when not zero, is how long to wait before trying again
	// (rate_limited: retry_after, or the Retry-After header).
	RetryAfter time.Duration
	// Until, for banned, is when the ban ends; zero for a permanent ban.
	Until time.Time
}

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func newServerError(e *protocol.Error) *ServerError {
	se := &ServerError{Code: e.GetCode(), Name: codeName(e.GetCode()), Message: e.GetMessage(), Temporary: e.GetTemporary()}
	for _, f := range e.GetFields() {
		se.Fields = append(se.Fields, FieldError{Field: f.GetField(), Message: f.GetMessage()})
	}
	return se
}

func (e *ServerError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("tandem: server error %s (%d)", e.Name, e.Code)
	}
	return fmt.Sprintf("tandem: server error %s (%d): %s", e.Name, e.Code, e.Message)
}

// Is reports whether target is a *ServerError with the same Code, so
// errors.Is(err, &ServerError{Code: CodeRoomFull}) works.
func (e *ServerError) Is(target error) bool {
	t, ok := target.(*ServerError)
	return ok && t != nil && t.Code == e.Code
}

// CloseError is a WebSocket close from the server. Its Class says what the
// SDK did next (resume, new session, stop).
type CloseError struct {
	Code   protocol.CloseCode
	Reason string
	// Server is the error frame the server sent just before closing (for
	// example unauthenticated before bad_token), or nil. Unwrap returns it.
	Server *ServerError
}

// Class returns the close code's class.
func (e *CloseError) Class() protocol.CloseClass { return e.Code.Class() }

func (e *CloseError) Error() string {
	s := fmt.Sprintf("tandem: connection closed: %d %s (%s)", uint16(e.Code), e.Code, e.Class())
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Server != nil {
		s += "; " + e.Server.Error()
	}
	return s
}

// Unwrap returns the server error that came with the close, if any.
func (e *CloseError) Unwrap() error {
	if e.Server == nil {
		return nil
	}
	return e.Server
}

// classOf returns what the reconnect loop does after err ended a connection
// or a connection attempt: a *CloseError by its code's class; a token
// source whose login is over (ErrLoggedOut: logged out, revoked, banned) is
// final, since no later attempt can get a token; anything else (reset, EOF,
// timeout, a failed dial or token, a close without a code) is resume class.
func classOf(err error) protocol.CloseClass {
	var ce *CloseError
	switch {
	case errors.As(err, &ce):
		return ce.Class()
	case errors.Is(err, ErrLoggedOut):
		return protocol.ClassFinal
	}
	return protocol.ClassResume
}

// isMoved reports whether err is the silent `moved` close.
func isMoved(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce) && ce.Code == protocol.CloseMoved
}

// lostError wraps cause so that errors.Is(err, ErrSessionLost) holds.
func lostError(cause error) error {
	if cause == nil {
		return ErrSessionLost
	}
	return fmt.Errorf("%w: %w", ErrSessionLost, cause)
}
