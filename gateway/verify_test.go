package gateway_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/token"
)

// A node whose key set has not loaded yet cannot tell a good token from a
// forged one: it refuses the connect as temporary with a close that makes
// the client connect again, and takes the same token once the keys load.
func TestNodeWithoutKeysRefusesATokenAsRetryable(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := token.NewSigner("k1", priv)
	var webUp atomic.Bool
	keys := token.NewRemoteKeySet(token.RemoteConfig{
		Fetch: func(context.Context) (map[string]ed25519.PublicKey, error) {
			if !webUp.Load() {
				return nil, errors.New("connection refused")
			}
			return map[string]ed25519.PublicKey{signer.KeyID(): signer.PublicKey()}, nil
		},
		MinInterval: time.Nanosecond,
	})
	n := startNode(t, func(c *gateway.Config) { c.Verifier = keys })
	tok, err := signer.Issue(tandem.Player{ID: "p1"}, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	c := dialRaw(t, n.url, protocol.CodecJSON)
	c.send(&protocol.Envelope{Cid: 7, Body: &protocol.Envelope_Connect{Connect: &protocol.Connect{Token: tok}}})
	want := &protocol.Envelope{Cid: 7, Body: &protocol.Envelope_Error{Error: &protocol.Error{
		Code: uint32(tandem.EUnavailable), Message: token.KeysUnavailableMessage, Temporary: true,
	}}}
	if diff := cmp.Diff(want, c.recv(), protocmp.Transform()); diff != "" {
		t.Errorf("answer to connect (-want +got):\n%s", diff)
	}
	code := c.closeCode()
	if code != protocol.CloseNodeDraining || code.Class() == protocol.ClassFinal {
		t.Errorf("close %d (%s, %s), want %d (node_draining): the client must try again", code, code, code.Class(), protocol.CloseNodeDraining)
	}

	webUp.Store(true)
	c = dialRaw(t, n.url, protocol.CodecJSON)
	if got := c.connect(tok).GetPlayerId(); got != "p1" {
		t.Errorf("player %q once the keys load, want p1", got)
	}

	// With its keys current, the node knows a token of another key is
	// forged: final.
	_, other, _ := ed25519.GenerateKey(nil)
	forged, err := token.NewSigner("k2", other).Issue(tandem.Player{ID: "p2"}, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c = dialRaw(t, n.url, protocol.CodecJSON)
	c.send(connectEnv(forged))
	if code := c.closeCode(); code != protocol.CloseBadToken {
		t.Errorf("forged token: close %d (%s), want %d (bad_token)", code, code, protocol.CloseBadToken)
	}
}
