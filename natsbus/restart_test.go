package natsbus_test

import (
	"context"
	"fmt"
	"net/url"
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
