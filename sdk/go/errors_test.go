package client

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem/protocol"
)

func TestCloseCodesMapToTheirClass(t *testing.T) {
	want := func(c protocol.CloseCode) protocol.CloseClass {
		switch {
		case c >= 4000 && c <= 4299:
			return protocol.ClassResume
		case c >= 4300 && c <= 4499:
			return protocol.ClassRejoin
		case c >= 4500 && c <= 4999:
			return protocol.ClassFinal
		}
		return protocol.ClassResume // any close without a Tandem code
	}
	codes := append(protocol.CloseCodes(), 1000, 1001, 1005, 1006, 1011, 4299, 4300, 4499, 4500, 4999, 4100, 4400, 4600)
	for _, code := range codes {
		err := fmt.Errorf("wrapped: %w", &CloseError{Code: code})
		if got := classOf(err); got != want(code) {
			t.Errorf(
				"close %d (%s): class %s, want %s",
				code, code, got, want(code))
		}
	}
	for _, err := range []error{io.EOF, io.ErrUnexpectedEOF, os.ErrDeadlineExceeded, ErrHeartbeatTimeout, errors.New("dial tcp: connection refused")} {
		if got := classOf(err); got != protocol.ClassResume {
			t.Errorf(
				"%v: class %s, want resume",
				err, got)
		}
	}
	if !isMoved(&CloseError{Code: protocol.CloseMoved}) || isMoved(&CloseError{Code: protocol.CloseKicked}) {
		t.Errorf("isMoved wrong")
	}
}

func TestCloseErrorCarriesTheServerError(t *testing.T) {
	se := newServerError(&protocol.Error{Code: CodeUnauthenticated, Message: "bad signature"})
	var err error = fmt.Errorf("dial: %w", &CloseError{Code: protocol.CloseBadToken, Reason: "bad token", Server: se})

	var ce *CloseError
	if !errors.As(err, &ce) || ce.Class() != protocol.ClassFinal {
		t.Fatalf(
			"errors.As CloseError: %v",
			err)
	}
	var got *ServerError
	if !errors.As(err, &got) || got.Code != CodeUnauthenticated || got.Name != "unauthenticated" {
		t.Fatalf(
			"errors.As ServerError: %v",
			err)
	}
	if !errors.Is(err, &ServerError{Code: CodeUnauthenticated}) || errors.Is(err, &ServerError{Code: CodeRoomFull}) {
		t.Errorf("errors.Is by code wrong")
	}
	if errors.As(&CloseError{Code: protocol.CloseKicked}, &got) {
		t.Errorf("a close without a server error unwraps to one")
	}
	if lost := lostError(err); !errors.Is(lost, ErrSessionLost) || !errors.As(lost, &ce) {
		t.Errorf(
			"lostError loses its parts: %v",
			lost)
	}
}

// The SDK's copy of the error-code names must match the table in
// docs/protocol.md, which every SDK and the HTTP API share.
func TestErrorCodeNamesMatchTheProtocolDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| (\d+) \| ([a-z_]+) \|`)
	want := map[uint32]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		n, _ := strconv.Atoi(m[1])
		if n < 4000 { // the close-code table has the same shape
			want[uint32(n)] = m[2]
		}
	}
	if len(want) == 0 {
		t.Fatal("no error codes found in docs/protocol.md")
	}
	got := map[uint32]string{}
	for code, name := range codeNames {
		if name != "" {
			got[uint32(code)] = name
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf(
			"error codes (-doc +sdk):\n%s",
			diff)
	}
	if codeName(999) != "unknown" {
		t.Errorf("unknown code not named unknown")
	}
}
