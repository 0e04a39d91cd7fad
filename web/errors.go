package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
)

// problem is an RFC 9457 problem document carrying a tandem.Error.
type problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail"`
	Code      tandem.ErrorCode    `json:"code"`
	Temporary bool                `json:"temporary"`
	Errors    []tandem.FieldError `json:"errors,omitempty"`
	// RetryAfter repeats the Retry-After header of a rate_limited answer.
	RetryAfter int64 `json:"retry_after,omitempty"`
	// Until is when the ban of a banned answer ends; absent for a
	// permanent one.
	Until *time.Time `json:"until,omitempty"`
}

// publicError is err as a client may see it: a *tandem.Error keeps its
// code and message, an over-long body is too_large, and anything else is
// "internal error" (its text goes to the log, never to the client).
func publicError(err error) *tandem.Error {
	var te *tandem.Error
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &te):
		return te
	case errors.As(err, &mb):
		return tandem.Errorf(tandem.ETooLarge, "the request body is larger than %d bytes", mb.Limit)
	}
	return tandem.Errorf(tandem.EInternal, "internal error")
}

// WriteError answers err as application/problem+json with the status of
// its code. Only a *tandem.Error's message reaches the client.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	noteError(r, err)
	e := publicError(err)
	writeProblem(w, e, e.Code.HTTPStatus())
}

func writeProblem(w http.ResponseWriter, e *tandem.Error, status int) {
	p := problem{Type: "about:blank", Title: e.Code.String(), Status: status, Detail: e.Message,
		Code: e.Code, Temporary: e.Code.Temporary()}
	if e.Code == tandem.EValidation {
		p.Errors = e.Fields
	}
	if e.Code == tandem.EBanned && !e.Until.IsZero() {
		until := e.Until.UTC()
		p.Until = &until
	}
	if e.RetryAfter > 0 {
		// Whole seconds, rounded up: a client that waits as told is not
		// refused again for having come back a fraction too early.
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		p.RetryAfter = secs
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	b, _ := json.Marshal(p) // plain strings and numbers: cannot fail
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, tandem.Errorf(tandem.EInternal, "internal error"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// DecodeJSON reads the request body, a single JSON value, into v. It
// refuses what the API does not speak: another Content-Type or malformed
// JSON (invalid), a body over the limit (too_large), and fields v does not
// have or of the wrong type (validation_failed, naming the field).
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return tandem.Errorf(tandem.EInvalid, "send the body as Content-Type: application/json")
	}
	limit := int64(DefaultMaxBodyBytes)
	if info := infoFrom(r.Context()); info != nil && info.maxBody > 0 {
		limit = info.maxBody
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			if e := decodeError(err); e.Code == tandem.ETooLarge {
				return e
			}
		}
		return tandem.Errorf(tandem.EInvalid, "the body has more after its JSON value")
	}
	return nil
}

// decodeError turns encoding/json's errors into ones a client can act on,
// without their Go type names.
func decodeError(err error) *tandem.Error {
	var mb *http.MaxBytesError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mb):
		return publicError(err)
	case errors.Is(err, io.EOF):
		return tandem.Errorf(tandem.EInvalid, "the body is empty; send a JSON object")
	case errors.As(err, &te) && te.Field != "":
		return &tandem.Error{Code: tandem.EValidation, Message: "some fields are invalid",
			Fields: []tandem.FieldError{{Field: te.Field, Message: "must be " + jsonKind(te.Type)}}}
	case errors.As(err, &te):
		return tandem.Errorf(tandem.EInvalid, "the body must be %s", jsonKind(te.Type))
	}
	// encoding/json has no typed error for an unknown field, only this text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, err := strconv.Unquote(name); err == nil {
			name = unq
		}
		return &tandem.Error{Code: tandem.EValidation, Message: "some fields are invalid",
			Fields: []tandem.FieldError{{Field: name, Message: "is not a field of this request"}}}
	}
	return tandem.Errorf(tandem.EInvalid, "the body is not valid JSON")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return fmt.Sprintf("a %s", t.Kind())
}
