package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tandemhq/tandem/faultproxy"
)

// TestBrowserPlayersMatchMoveAndOneResumesAfterACut plays /play in two
// browsers: both quick-match into one arena room, one player's move shows
// in the other's page, and the second player's connection, cut by a fault
// proxy in front of the node, resumes in place: the page says so and keeps
// its room.
func TestBrowserPlayersMatchMoveAndOneResumesAfterACut(t *testing.T) {
	t.Parallel()
	s := startDevArgs(t, bins.tandem, t.TempDir())
	node, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.New(faultproxy.Config{Target: node.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })

	browser := newBrowser(t)
	alice := newBrowserContext(t, browser)
	bob := newBrowserContext(t, browser)
	openPlay(t, alice, s.web+"/play")
	openPlay(t, bob, s.web+"/play?realtime="+url.QueryEscape("ws://"+proxy.Addr()+node.Path))
	if proxy.Accepted() != 1 {
		t.Fatalf("the proxy accepted %d connections, want bob's one", proxy.Accepted())
	}

	for _, p := range []context.Context{alice, bob} {
		do(t, p, "quick match", chromedp.Click(css(`#quick`)))
	}
	room := inArena(t, alice, 2)
	if bobs := inArena(t, bob, 2); bobs != room {
		t.Fatalf("alice is in room %s, bob in %s", room, bobs)
	}
	aliceID := get(t, alice, "read alice's id", chromedp.Evaluate[string](`document.getElementById("me").textContent`))
	// The page shows its round-trip time once the client has measured one.
	do(t, alice, "see the ping shown", chromedp.Poll[chromedp.Void](`/^ping \d+ ms$/.test(document.getElementById("ping").textContent)`))

	moveAndWatch(t, alice, bob, aliceID)

	// Cut bob's connection; reconnects fail until the proxy lets them through.
	proxy.SetDefaults(faultproxy.Faults{Upstream: faultproxy.DirectionFaults{ResetAfter: 1}})
	for _, c := range proxy.Conns() {
		c.Reset()
	}
	do(t, bob, "see the page reconnecting", chromedp.WaitVisible(css(`#conn[data-state="reconnecting"]`)))
	proxy.SetDefaults(faultproxy.Faults{})
	do(t, bob, "see the page connected again", chromedp.WaitVisible(css(`#conn[data-state="connected"]`)))
	if got := inArena(t, bob, 2); got != room {
		t.Fatalf("after the cut bob shows room %s, want %s", got, room)
	}
	if n := proxy.Accepted(); n < 2 {
		t.Fatalf("the proxy accepted %d connections: bob's page did not come back through it", n)
	}
	// The resumed session still gets the room's stream.
	moveAndWatch(t, alice, bob, aliceID)
}

// openPlay opens the page and waits until it is logged in and connected.
func openPlay(t *testing.T, ctx context.Context, pageURL string) {
	t.Helper()
	do(t, ctx, "open "+pageURL,
		chromedp.Navigate(pageURL),
		chromedp.WaitVisible(css(`#conn[data-state="connected"]`)),
		chromedp.WaitVisible(css(`#quick:not([disabled])`)),
	)
}

// inArena waits until the page shows an arena room with n players and
// returns the room's id.
func inArena(t *testing.T, ctx context.Context, n int) string {
	t.Helper()
	do(t, ctx, fmt.Sprintf("see the arena with %d players", n),
		chromedp.WaitVisible(css(`#field`)),
		chromedp.WaitReady(css(fmt.Sprintf(`#players li:nth-child(%d)`, n))),
	)
	room := get(t, ctx, "read the room id", chromedp.Text(css(`#room-id`)))
	if room == "" {
		t.Fatal("the arena shows no room id")
	}
	return room
}

// moveAndWatch holds an arrow key in mover's page, towards the middle,
// until watcher's page shows the player somewhere else, then lets go. The
// arena moves a player while its key is held: a press shorter than a tick
// may move it nowhere.
func moveAndWatch(t *testing.T, mover, watcher context.Context, player string) {
	t.Helper()
	x := position(t, watcher, player)
	key := kb.ArrowRight
	if x >= 500 {
		key = kb.ArrowLeft
	}
	do(t, mover, "press "+keyName(key), keyEvent(key, kb.KeyDown))
	do(t, watcher, "see the player move",
		chromedp.WaitReady(css(fmt.Sprintf(`#players li[data-player=%q]:not([data-x="%d"])`, player, x))))
	do(t, mover, "release "+keyName(key), keyEvent(key, kb.KeyUp))
}

// position is the x the page lists for player.
func position(t *testing.T, ctx context.Context, player string) int {
	t.Helper()
	v := get(t, ctx, "read "+player+"'s position",
		chromedp.AttributeValue(css(fmt.Sprintf(`#players li[data-player=%q]`, player)), "data-x"))
	x, err := strconv.Atoi(v.Value)
	if err != nil {
		t.Fatalf("%s's data-x %q: %v", player, v.Value, err)
	}
	return x
}

// keyEvent sends only the keyDown or the keyUp of key to the page.
func keyEvent(key string, typ input.DispatchKeyEventType) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, k := range kb.Encode([]rune(key)[0]) {
			if k.Type == typ {
				_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, *k)
				return err
			}
		}
		return fmt.Errorf("no %s event for %q", typ, key)
	})
}

func keyName(key string) string {
	if key == kb.ArrowLeft {
		return "ArrowLeft"
	}
	return "ArrowRight"
}
