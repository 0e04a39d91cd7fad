package tandem

import (
	"errors"
	"fmt"
	"time"
)

// ErrorCode identifies a kind of failure. The numbers are part of the wire
// protocol and of the HTTP API (problem+json "code"): never renumber one.
type ErrorCode uint32

// The error codes. docs/protocol.md lists them with their meaning; a test
// keeps that list and this table in step.
const (
	EInternal        ErrorCode = 1  // a bug or an unexpected failure on the server
	EInvalid         ErrorCode = 2  // the request is malformed or a field is invalid
	EUnauthenticated ErrorCode = 3  // no valid credentials
	EPermission      ErrorCode = 4  // authenticated, but not allowed
	ENotFound        ErrorCode = 5  // the named thing does not exist
	EConflict        ErrorCode = 6  // the request conflicts with the current state
	ERateLimited     ErrorCode = 7  // too many requests; retry later
	EUnavailable     ErrorCode = 8  // the server cannot serve this now (draining, overloaded)
	ETooLarge        ErrorCode = 9  // a frame or a field is larger than allowed
	EUnknownMessage  ErrorCode = 10 // a frame whose body the server does not know
	ENotInRoom       ErrorCode = 11 // the player is not a member of the named room
	ERoomFull        ErrorCode = 12 // the room has no free seat
	EJoinRejected    ErrorCode = 13 // the room refused the join (message says why)
	EQuotaExceeded   ErrorCode = 14 // a per-session quota (rooms created, rooms joined) is used up
	ETokenExpired    ErrorCode = 15 // the token's lifetime is over; get a new one
	EUnknownRPC      ErrorCode = 16 // no handler for the RPC method
	ETimeout         ErrorCode = 17 // the operation did not finish in time
	EValidation      ErrorCode = 18 // fields of the request are invalid; Fields names each one
	EMFARequired     ErrorCode = 19 // the admin must enrol in or pass TOTP MFA first
	EReauthRequired  ErrorCode = 20 // the admin must confirm their password again first
	EBanned          ErrorCode = 21 // the player is banned; Until says until when
)

type errorInfo struct {
	name       string
	httpStatus int
	temporary  bool
}

// errorTable is the one table from codes to names, HTTP statuses and whether
// a retry may succeed.
var errorTable = [...]errorInfo{
	EInternal:        {"internal", 500, false},
	EInvalid:         {"invalid", 400, false},
	EUnauthenticated: {"unauthenticated", 401, false},
	EPermission:      {"permission_denied", 403, false},
	ENotFound:        {"not_found", 404, false},
	EConflict:        {"conflict", 409, false},
	ERateLimited:     {"rate_limited", 429, true},
	EUnavailable:     {"unavailable", 503, true},
	ETooLarge:        {"too_large", 413, false},
	EUnknownMessage:  {"unknown_message", 400, false},
	ENotInRoom:       {"not_in_room", 409, false},
	ERoomFull:        {"room_full", 409, true},
	EJoinRejected:    {"join_rejected", 403, false},
	EQuotaExceeded:   {"quota_exceeded", 429, false},
	ETokenExpired:    {"token_expired", 401, false},
	EUnknownRPC:      {"unknown_rpc", 404, false},
	ETimeout:         {"timeout", 504, true},
	EValidation:      {"validation_failed", 422, false},
	EMFARequired:     {"mfa_required", 403, false},
	EReauthRequired:  {"reauth_required", 403, false},
	EBanned:          {"banned", 403, false},
}

// ErrorCodes returns every defined code in numeric order.
func ErrorCodes() []ErrorCode {
	codes := make([]ErrorCode, 0, len(errorTable))
	for c := range errorTable {
		if errorTable[c].name != "" {
			codes = append(codes, ErrorCode(c))
		}
	}
	return codes
}

func (c ErrorCode) info() errorInfo {
	if int(c) < len(errorTable) && errorTable[c].name != "" {
		return errorTable[c]
	}
	return errorTable[EInternal]
}

// String returns the code's name, such as "room_full".
func (c ErrorCode) String() string { return c.info().name }

// HTTPStatus returns the HTTP status that carries this code.
func (c ErrorCode) HTTPStatus() int { return c.info().httpStatus }

// Temporary reports whether a retry of the same request may succeed.
func (c ErrorCode) Temporary() bool { return c.info().temporary }

// Error is the one error type of Tandem. Its Message is safe to show to the
// client; internal details belong in logs, not here.
type Error struct {
	Code    ErrorCode
	Message string
	// Fields lists every invalid field of an EValidation error.
	Fields []FieldError
	// RetryAfter, when not zero, is how long a rate_limited caller should
	// wait (HTTP: the Retry-After header).
	RetryAfter time.Duration
	// Until, for EBanned, is when the ban ends; zero means never.
	Until time.Time
}

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Invalid returns an EValidation error naming every invalid field, or nil
// when fields is empty, so validators can collect and return in one step.
func Invalid(fields []FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	return &Error{Code: EValidation, Message: "some fields are invalid", Fields: fields}
}

func (e *Error) Error() string { return fmt.Sprintf("tandem: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCodeOf returns the code of err's *Error, or EInternal for any other
// error, and 0 for nil.
func ErrorCodeOf(err error) ErrorCode {
	var e *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Code
	default:
		return EInternal
	}
}

// ErrorMessageOf returns the client-safe message of err: the *Error's message,
// or "internal error" for any other error.
func ErrorMessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
