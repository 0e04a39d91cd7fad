package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/faultproxy"
	client "github.com/tandemhq/tandem/sdk/go"
)

// tokenExpiry reads the exp claim of a realtime token (no verification:
// the test only needs to know when it runs out).
func tokenExpiry(t *testing.T, tok string) time.Time {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Exp int64 }
	if err := json.Unmarshal(b, &c); err != nil || c.Exp == 0 {
		t.Fatalf("claims %s: %v", b, err)
	}
	return time.Unix(c.Exp, 0)
}

// TestGoSDKReconnectsWithAFreshRealtimeTokenAfterItsTokenExpired: a guest
// logs in through the player API, connects through a fault proxy, and after
// its first realtime token has expired the proxy cuts the connection; the
// SDK resumes with a new token from the web server (the node refuses an
// expired one at every connect, resumes included).
func TestGoSDKReconnectsWithAFreshRealtimeTokenAfterItsTokenExpired(t *testing.T) {
	t.Parallel()
	dev := startDevArgs(t, bins.tandem, t.TempDir(), "--realtime-token-ttl", "2s", "--seat-hold", "30s")
	ctx := withDeadline(t)
	auth, err := client.LoginGuest(ctx, client.AuthConfig{BaseURL: dev.web}, "e2e-sdk-device", client.NewDeviceSecret())
	if err != nil {
		t.Fatal(err)
	}
	if auth.RealtimeURL() != dev.url {
		t.Fatalf("login names realtime URL %q, want the node's %q", auth.RealtimeURL(), dev.url)
	}
	first, err := auth.RealtimeToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node, err := url.Parse(dev.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.New(faultproxy.Config{Target: node.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })

	c, err := client.Dial(ctx, client.Config{
		URL:        "ws://" + proxy.Addr() + "/ws",
		Token:      auth.RealtimeTokenSource(),
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if c.PlayerID() != auth.PlayerID() {
		t.Fatalf("connected as %q, want the logged-in player %q", c.PlayerID(), auth.PlayerID())
	}
	room, err := c.Join(ctx, client.JoinOptions{RoomType: "relay"})
	if err != nil {
		t.Fatal(err)
	}

	// Wait out the first token, then cut the connection.
	expired := tokenExpiry(t, first).Add(time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(expired) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("deadline while waiting for the token to expire")
		}
	}
	conns, err := proxy.WaitConns(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	conns[0].Reset()
	next[*client.Resumed](t, c)

	// The resumed session still works: another guest in the room hears it.
	other, err := client.LoginGuest(ctx, client.AuthConfig{BaseURL: dev.web}, "e2e-sdk-other", client.NewDeviceSecret())
	if err != nil {
		t.Fatal(err)
	}
	bob, err := client.Dial(ctx, client.Config{URL: other.RealtimeURL(), Token: other.RealtimeTokenSource()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bob.Close() })
	if _, err := bob.Join(ctx, client.JoinOptions{RoomID: room.ID()}); err != nil {
		t.Fatal(err)
	}
	if err := room.Send(ctx, "chat", []byte("after the cut")); err != nil {
		t.Fatal(err)
	}
	if got := next[*client.RoomMessage](t, bob); string(got.Data) != "after the cut" || got.From != auth.PlayerID() {
		t.Fatalf("bob got %q from %q after the resume", got.Data, got.From)
	}
	latest, err := auth.RealtimeToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if latest == first {
		t.Fatal("the SDK still holds the first, expired, realtime token")
	}
}
