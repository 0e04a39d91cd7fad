// Package protocol owns Tandem's realtime wire format: the Envelope defined
// in tandem.proto (generated code in tandem.pb.go), the two codecs chosen by
// WebSocket subprotocol, and the close-code table with its three reconnect
// classes. docs/protocol.md is its prose companion.
//
// Regenerate tandem.pb.go with (Debian's protobuf-compiler and
// google.golang.org/protobuf/cmd/protoc-gen-go on PATH):
//
//	protoc --go_out=. --go_opt=paths=source_relative protocol/tandem.proto
package protocol

//go:generate protoc --go_out=. --go_opt=paths=source_relative tandem.proto
