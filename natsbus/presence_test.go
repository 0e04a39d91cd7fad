package natsbus_test

import (
	"testing"
	"time"

	"github.com/tandemhq/tandem"
)

func TestAnOlderSessionsClaimAfterANewerOneIsRefused(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	older := tandem.Presence{PlayerID: "p", Node: "n1", SessionID: "s1", Since: time.Unix(10, 0).UTC()}
	newer := tandem.Presence{PlayerID: "p", Node: "n2", SessionID: "s2", Moved: true, Since: time.Unix(20, 0).UTC()}
	if _, err := b.ClaimPresence(ctx, newer); err != nil {
		t.Fatal(err)
	}
	// The older session's claim arrives late: refused, with the entry that
	// stays.
	cur, err := b.ClaimPresence(ctx, older)
	wantCode(t, err, tandem.EConflict)
	if cur != newer {
		t.Errorf("refused claim returned %+v, want %+v", cur, newer)
	}
	if got, err := b.Presence(ctx, "p"); err != nil || got != newer {
		t.Fatalf("Presence = %+v, %v; want the newer session %+v", got, err, newer)
	}
	// The newer session claims again (after losing its entry, say): the
	// same session is never refused.
	if prev, err := b.ClaimPresence(ctx, newer); err != nil || prev != newer {
		t.Errorf("the newer session's claim again: %+v, %v", prev, err)
	}
	// A session started later still replaces it.
	newest := tandem.Presence{PlayerID: "p", Node: "n1", SessionID: "s3", Since: time.Unix(30, 0).UTC()}
	if prev, err := b.ClaimPresence(ctx, newest); err != nil || prev != newer {
		t.Errorf("the newest session's claim replaced %+v, %v; want %+v", prev, err, newer)
	}
	// Once the entry is released, an older session may claim (it is the
	// player's only one left).
	if err := b.ReleasePresence(ctx, "p", "s3"); err != nil {
		t.Fatal(err)
	}
	if prev, err := b.ClaimPresence(ctx, older); err != nil || prev != (tandem.Presence{}) {
		t.Errorf("claim after the release: %+v, %v", prev, err)
	}
}
