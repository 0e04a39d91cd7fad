// Package realtimetest starts an in-process realtime node — a gateway
// served on 127.0.0.1:0 — for tests and benchmarks, and signs tokens it
// accepts. It is stopped by the test's cleanup.
package realtimetest

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/token"
)

// Node is a running in-process realtime node.
type Node struct {
	Gateway *gateway.Gateway
	Server  *httptest.Server
	Signer  *token.Signer
	// URL is the node's WebSocket URL.
	URL string
}

// Start serves a gateway with the built-in room types that trusts signer
// (a fresh key when nil). edit, if set, changes the configuration first.
func Start(tb testing.TB, signer *token.Signer, edit func(*gateway.Config)) *Node {
	tb.Helper()
	if signer == nil {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			tb.Fatal(err)
		}
		signer = token.NewSigner("test", priv)
	}
	cfg := gateway.Config{
		Node:      "n1",
		Verifier:  token.NewKeySet(map[string]ed25519.PublicKey{signer.KeyID(): signer.PublicKey()}),
		RoomTypes: room.BuiltinTypes(),
	}
	if edit != nil {
		edit(&cfg)
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := httptest.NewServer(mux)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Close(ctx); err != nil {
			tb.Errorf("close gateway: %v", err)
		}
		srv.Close()
	})
	return &Node{Gateway: gw, Server: srv, Signer: signer, URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}

// Token returns a realtime token for player, valid for a minute.
func (n *Node) Token(tb testing.TB, player string) string {
	tb.Helper()
	tok, err := n.Signer.Issue(tandem.Player{ID: player}, time.Now(), time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}
