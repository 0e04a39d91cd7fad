package gateway_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// tokenAt issues a token as if at (its iat).
func (tc *testCluster) tokenAt(player string, at time.Time) string {
	tc.t.Helper()
	tok, err := tc.signer.Issue(tandem.Player{ID: player}, at, time.Minute)
	if err != nil {
		tc.t.Fatal(err)
	}
	return tok
}

func TestRevocationRefusesOldTokensAndEndsTheirSessions(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	a := tc.startNode("a", nil)
	cutoff := time.Now().Truncate(time.Second)
	old := cutoff.Add(-2 * time.Second)

	alice := a.dial(t)
	alice.connect(tc.tokenAt("alice", old))
	bob := a.dial(t)
	bob.connect(tc.tokenAt("bob", old))
	// carol logged in again after her cutoff: her session stays.
	carol := a.dial(t)
	carol.connect(tc.tokenAt("carol", cutoff))
	// bob's connection drops: his session is held for a resume.
	bob.conn.Close()
	waitFor(t, 10*time.Second, "bob's session to be held", func() bool {
		s, ok := a.gw.Sessions().ByPlayer("bob")
		return ok && !s.Connected()
	})

	ctx := context.Background()
	for _, p := range []string{"carol", "bob", "alice"} {
		r := tandem.Revocation{PlayerID: p, IssuedBefore: cutoff, ExpiresAt: cutoff.Add(tandem.MaxTokenLifetime)}
		if err := web.PutRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	env := alice.recvUntil(func(e *protocol.Envelope) bool { return e.GetError() != nil })
	if errorCode(env) != tandem.EUnauthenticated || env.GetError().GetMessage() != "the token was revoked: log in again" {
		t.Errorf("error before the close: %v, want unauthenticated, token revoked", env)
	}
	if got := alice.closeCode(); got != protocol.CloseBadToken {
		t.Errorf("revoked session closed with %d (%s), want bad_token", got, got)
	}
	waitFor(t, 10*time.Second, "bob's held session to end", func() bool {
		_, ok := a.gw.Sessions().ByPlayer("bob")
		return !ok
	})
	carol.alive()

	// A token from before the cutoff is refused at connect, on this node
	// and on one started after the revocation; a later one is taken.
	b := tc.startNode("b", nil)
	for _, n := range []*clusterNode{a, b} {
		again := n.dial(t)
		again.send(connectEnv(tc.tokenAt("alice", old)))
		if env := again.recv(); errorCode(env) != tandem.EUnauthenticated {
			t.Errorf("node %s: connect with a revoked token: %v, want unauthenticated", n.id, env)
		}
		if got := again.closeCode(); got != protocol.CloseBadToken {
			t.Errorf("node %s: closed with %d (%s), want bad_token", n.id, got, got)
		}
	}
	fresh := b.dial(t)
	fresh.connect(tc.tokenAt("alice", cutoff))
	fresh.alive()
}

func TestInspections(t *testing.T) {
	tc := newTestCluster(t)
	web := tc.bus("web")
	a := tc.startNode("a", nil)
	ctx := context.Background()

	alice := a.dial(t)
	aliceConn := alice.connect(tc.token("alice"))
	arena := alice.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "arena"}).GetRoomId()
	bob := a.dial(t)
	bob.connect(tc.token("bob"))
	bob.join(&protocol.Join{RoomId: arena})
	relay := bob.join(&protocol.Join{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"}).GetRoomId()
	bob.conn.Close()
	waitFor(t, 10*time.Second, "bob's session to be held", func() bool {
		s, ok := a.gw.Sessions().ByPlayer("bob")
		return ok && !s.Connected()
	})

	var ri tandem.RoomInspection
	waitFor(t, 10*time.Second, "the node to answer inspections", func() bool {
		var err error
		ri, err = web.InspectRoom(ctx, "a", arena)
		return err == nil
	})
	if ri.Room.ID != arena || ri.Room.Type != "arena" || ri.Room.Node != "a" || !slices.Equal(ri.Room.Players, []string{"alice", "bob"}) {
		t.Errorf("room entry %+v, want arena %s on a with alice and bob", ri.Room, arena)
	}
	type player struct {
		ID, Session string
		Connected   bool
		Rooms       []string
	}
	var got []player
	for _, p := range ri.Players {
		got = append(got, player{p.PlayerID, p.SessionID, p.Connected, p.Rooms})
		if p.Since.IsZero() {
			t.Errorf("player %s without a start", p.PlayerID)
		}
	}
	bobSession, _ := a.gw.Sessions().ByPlayer("bob")
	want := []player{
		{"alice", aliceConn.GetSessionId(), true, []string{arena}},
		{"bob", bobSession.ID(), false, []string{arena, relay}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("players (-want +got):\n%s", diff)
	}
	// The arena's snapshot as alice sees it: both players, bob
	// disconnected.
	var snap struct {
		Entities map[string]struct {
			Connected bool `json:"connected"`
		} `json:"entities"`
	}
	if err := json.Unmarshal(ri.Snapshot, &snap); err != nil {
		t.Fatalf("snapshot %q: %v", ri.Snapshot, err)
	}
	if len(snap.Entities) != 2 || !snap.Entities["p:alice"].Connected || snap.Entities["p:bob"].Connected {
		t.Errorf("snapshot %s, want alice connected and bob not", ri.Snapshot)
	}
	// A relay room keeps no state.
	if ri, err := web.InspectRoom(ctx, "a", relay); err != nil || ri.Snapshot != nil || len(ri.Players) != 1 {
		t.Errorf("relay room: %+v, %v; want bob and no snapshot", ri, err)
	}

	// alice's RTT comes with her first pong (the heartbeat is 1 s).
	waitFor(t, 10*time.Second, "alice's RTT", func() bool {
		alice.alive() // answers the pings that came meanwhile
		lp, err := web.InspectPlayer(ctx, "a", "alice")
		return err == nil && lp.RTTMillis > 0 && lp.Connected && lp.SessionID == aliceConn.GetSessionId()
	})

	_, err := web.InspectRoom(ctx, "a", "no-such-room")
	wantCode(t, err, tandem.ENotFound)
	_, err = web.InspectPlayer(ctx, "a", "carol")
	wantCode(t, err, tandem.ENotFound)
	_, err = web.InspectPlayer(ctx, "z", "alice")
	wantCode(t, err, tandem.EUnavailable)
}

func wantCode(t *testing.T, err error, code tandem.ErrorCode) {
	t.Helper()
	if got := tandem.ErrorCodeOf(err); got != code {
		t.Errorf("error %v: code %s, want %s", err, got, code)
	}
}
