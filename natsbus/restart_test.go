package natsbus_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
)

func TestBusRecoversFromAServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	web := connect(t, natsbus.Config{URL: srv.ClientURL(), Name: "web", RequestTimeout: time.Second})
	node := connect(t, natsbus.Config{URL: srv.ClientURL(), Name: "n1"})
	ctx := t.Context()

	var bans banRecorder
	stop, err := web.WatchBans(ctx, bans.record)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	serveCommands(t, node, "n1", func(_ context.Context, c tandem.Command) tandem.CommandResult {
		return tandem.CommandResult{OK: true, Error: c.Text}
	})
	sendUntilServed(t, web, tandem.Command{ID: "before", Node: "n1"})
	var l eventLog
	consume(t, web, "web", l.handle)
	publish(t, node, 0, 10)
	l.waitFor(t, 10)

	srv.Shutdown()
	startServer(t, dir, u.Host)

	r := tandem.RoomEntry{ID: "r1", Type: "relay", Node: "n1", MaxPlayers: 2}
	eventually(t, 20*time.Second, func() error { return node.PutRoom(ctx, r) })
	if got, err := web.Room(ctx, "r1"); err != nil || got.Node != "n1" {
		t.Fatalf("Room after restart = %+v, %v", got, err)
	}
	if res := sendUntilServed(t, web, tandem.Command{ID: "after", Node: "n1", Text: "hi"}); !res.OK || res.Error != "hi" {
		t.Errorf("command after restart: %+v", res)
	}
	ban := tandem.BanEntry{PlayerID: "mallory", Start: time.Unix(5, 0).UTC()}
	if err := web.PutBan(ctx, ban); err != nil {
		t.Fatal(err)
	}
	bans.waitFor(t, []banChange{{ban, false}})
	eventually(t, 20*time.Second, func() error {
		if err := node.PublishEvent(ctx, tandem.Event{ID: "late", Node: "n1"}); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		return nil
	})
	l.waitFor(t, 11)
	l.checkEachOnce(t, 11)
}

// A server restarted on an empty store starts its streams again at
// sequence 1: a watch must not wait for revisions after the ones it saw
// before, or the key set published next would never reach it.
func TestWatchSeesEntriesOfABucketRecreatedAfterTheStoreWasLost(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	web := connect(t, natsbus.Config{URL: srv.ClientURL(), Name: "web"})
	ctx := t.Context()
	var mu sync.Mutex
	var seen []map[string]ed25519.PublicKey
	stop, err := web.WatchKeys(ctx, func(k map[string]ed25519.PublicKey) {
		mu.Lock()
		seen = append(seen, k)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for i := range 5 {
		pub, _, _ := ed25519.GenerateKey(nil)
		if err := web.PutKeys(ctx, map[string]ed25519.PublicKey{fmt.Sprint("old", i): pub}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 || seen[len(seen)-1]["old4"] == nil {
			return fmt.Errorf("the fifth set (revision 5) not seen yet")
		}
		return nil
	})

	srv.Shutdown()
	srv = startServer(t, t.TempDir(), u.Host) // the store is lost
	// Another process connecting creates the buckets again.
	var other *natsbus.Bus
	eventually(t, 20*time.Second, func() error {
		b, err := natsbus.Connect(ctx, natsbus.Config{URL: srv.ClientURL(), Name: "web-2"})
		if err != nil {
			return err
		}
		other = b
		return nil
	})
	defer other.Close()
	pub, _, _ := ed25519.GenerateKey(nil)
	want := map[string]ed25519.PublicKey{"new": pub}
	// Put once: revision 1 of the new stream, below the watch's last.
	eventually(t, 20*time.Second, func() error { return other.PutKeys(ctx, want) })
	eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := seen[len(seen)-1]["new"]; !ok {
			return fmt.Errorf("the new key set has not reached the watch")
		}
		return nil
	})
}
